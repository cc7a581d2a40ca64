"""Worker processes under signals and in odd places, for real (issue 18).

* SIGTERM to the parent of ``run(workers=2)``: the children die with it and the job (the
  storage URL, maybe with a password) was never written to a file;
* Ctrl-C as a terminal sends it (SIGINT to the whole process group): no trial is left RUNNING,
  they are ``interrupted``, and the resume message is printed once;
* a worker SIGSTOPped mid-trial and failed as stale by the others, then woken: it drops its
  result with one line and goes on;
* workers in separate PID namespaces (``unshare --pid``) with one hostname do not fail each
  other's live trials;
* a train function defined under ``if __name__ == "__main__":`` is refused in the parent.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

import autolr
from autolr import _schema

ROOT = Path(__file__).resolve().parents[1]

# Each trial reports every 0.1 s for STEPS steps; the first report of each process marks it live.
SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import autolr

    HERE = os.path.dirname(os.path.abspath(__file__))
    STEPS = int(os.environ.get("STEPS", "30"))

    @autolr.tune(n_trials=int(os.environ.get("N", "8")), sampler=os.environ.get("SAMPLER", "auto"),
                 show_progress_bar=False)
    def train(lr: float) -> float:
        open(os.path.join(HERE, "live-%d" % os.getpid()), "w").close()
        for step in range(STEPS):
            time.sleep(float(os.environ.get("PAUSE", "0.1")))
            autolr.report(abs(lr - 0.01) + 1.0 / (step + 1), step=step)
        if os.environ.get("TAIL"):  # the reports are in: a last pause before returning
            open(os.path.join(HERE, "tail-%d" % os.getpid()), "w").close()
            time.sleep(float(os.environ["TAIL"]))
        return abs(lr - 0.01)

    if __name__ == "__main__":
        train.run(workers=int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    """
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path / "tmp"),
               AUTOLR_STORAGE=f"sqlite:///{tmp_path / 'studies.db'}")
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env.update(extra)
    return env


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "train_script.py"
    path.write_text(SCRIPT)
    return path


def _wait_live(
    tmp_path: Path, n: int, proc: subprocess.Popen[str], timeout: float = 60, marker: str = "live"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list(tmp_path.glob(f"{marker}-*"))) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    raise AssertionError("the workers never started a trial")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(c) for c in text)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _trials(tmp_path: Path) -> list[object]:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    return autolr.load("train", storage=storage).study.get_trials(deepcopy=False)


def test_sigterm_to_the_parent_ends_its_workers_and_leaves_no_job_file(tmp_path: Path) -> None:
    script = _script(tmp_path)
    proc = subprocess.Popen([sys.executable, str(script)], env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_live(tmp_path, 2, proc)
    children = _children(proc.pid)
    assert len(children) == 2
    assert not list((tmp_path / "tmp").iterdir())  # the job never touched the disk
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(c) for c in children):
        time.sleep(0.1)
    left = [c for c in children if _alive(c)]
    for c in left:
        os.kill(c, signal.SIGKILL)
    assert not left, "worker processes outlived their parent"
    assert not list((tmp_path / "tmp").iterdir())
    # They unwound as on Ctrl-C: their trials are recorded, none is left RUNNING.
    states = [t.state for t in _trials(tmp_path)]  # type: ignore[attr-defined]
    assert TrialState.RUNNING not in states


@pytest.mark.parametrize("sampler", ["auto", "random"])
def test_ctrl_c_with_workers_leaves_no_trial_running_and_says_so_once(
    tmp_path: Path, sampler: str
) -> None:
    script = _script(tmp_path)
    proc = subprocess.Popen([sys.executable, str(script)], env=_env(tmp_path, SAMPLER=sampler),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _wait_live(tmp_path, 2, proc)
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    trials = _trials(tmp_path)
    states = [t.state for t in trials]  # type: ignore[attr-defined]
    assert TrialState.RUNNING not in states, err[-3000:]
    reasons = [t.user_attrs.get("autolr.stop_reason") for t in trials]  # type: ignore[attr-defined]
    assert "interrupted" in reasons
    assert err.count("Run again") == 1, err[-3000:]
    assert "Traceback" not in err.split("autolr: interrupted")[0], err[-3000:]


@pytest.mark.parametrize("sampler", ["auto", "random"])
def test_a_worker_woken_after_its_trial_was_failed_drops_its_result_and_goes_on(
    tmp_path: Path, sampler: str
) -> None:
    """SIGSTOP one worker as its trial is about to return; the other fails the trial by
    heartbeat and finishes the study; SIGCONT it: its return finds the trial failed."""
    script = _script(tmp_path)
    n = 4 if sampler == "random" else 16  # the search's n_trials caps the trials it creates
    steps = "0" if sampler == "random" else "2"  # no reports to flush: the return meets tell()
    env = _env(tmp_path, SAMPLER=sampler, N=str(n), STEPS=steps, TAIL="0.5", PAUSE="0.01",
               AUTOLR_HEARTBEAT_INTERVAL="0.3", AUTOLR_HEARTBEAT_GRACE="1.5")
    cmd = [sys.executable, "-m", "autolr", "worker", f"{script}:train"]
    first = subprocess.Popen(cmd + ["--worker-index", "0"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    _wait_live(tmp_path, 1, first, marker="tail")
    os.kill(first.pid, signal.SIGSTOP)
    try:
        second = subprocess.run(cmd + ["--worker-index", "1"], env=env, capture_output=True,
                                text=True, timeout=90)
        assert second.returncode == 0, second.stderr[-3000:]
        trials = _trials(tmp_path)
        reasons = [t.user_attrs.get("autolr.stop_reason") for t in trials]  # type: ignore[attr-defined]
        crashed = [r for r in reasons if r == "crashed"]
        assert crashed
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err[-3000:]
    assert "Cannot tell" not in err and "Traceback" not in err, err[-3000:]
    lost = err.count("failed as stale by another worker")
    assert 1 <= lost <= len(crashed), err
    trials = _trials(tmp_path)
    assert TrialState.RUNNING not in [t.state for t in trials]  # type: ignore[attr-defined]
    if sampler == "random":
        assert sum(_schema.counted(t) for t in _schema.views(trials)) == n  # type: ignore[arg-type]
    else:
        assert autolr.load("train", storage=env["AUTOLR_STORAGE"]).best_lr is not None


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_workers_in_separate_pid_namespaces_do_not_fail_each_other(tmp_path: Path) -> None:
    """Containers with host networking: one hostname, each its own pids (unshare --pid)."""
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare --pid is not permitted here")
    script = _script(tmp_path)
    env = _env(tmp_path, SAMPLER="random", N="6", STEPS="5", PAUSE="0.05")
    worker = f"{sys.executable} -m autolr worker {script}:train --worker-index"
    # Python is pid 1 in one namespace and pid 2 in the other: each sees the other's trials
    # under a pid that, in its own namespace, is not that process.
    procs = [
        subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c",
                          f"{worker} {i}; exit $?" if i else f"exec {worker} {i}"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
    trials = _trials(tmp_path)
    reasons = [t.user_attrs.get("autolr.stop_reason") for t in trials]  # type: ignore[attr-defined]
    assert "crashed" not in reasons
    assert sum(_schema.counted(t) for t in _schema.views(trials)) == 6  # type: ignore[arg-type]
    assert len({t.user_attrs["autolr.worker"] for t in trials}) == 2  # type: ignore[attr-defined]


def test_a_function_made_under_the_main_guard_is_refused_in_the_parent(tmp_path: Path) -> None:
    script = tmp_path / "guarded.py"
    script.write_text(textwrap.dedent(
        """
        import autolr

        def loss(lr: float) -> float:
            return lr

        if __name__ == "__main__":
            tuned = autolr.tune(n_trials=2, show_progress_bar=False)(loss)
            tuned.run(workers=2)
        """
    ))
    proc = subprocess.run([sys.executable, str(script)], env=_env(tmp_path), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("TypeError: workers: 'tuned' is not defined at module level"), last
    assert "has no attribute" not in proc.stderr
    assert not (tmp_path / "studies.db").exists()  # nothing started
