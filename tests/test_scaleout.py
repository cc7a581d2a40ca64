"""Many workers on one study: real processes, real servers, real SIGKILL/SIGSTOP.

Each storage test starts 4 worker processes on one study of 40 trials, SIGKILLs (or SIGSTOPs) one
of them in the middle of a trial and checks that the study still ends with exactly 40 finished
trials, the lost trial failed as ``crashed`` and its lr retried exactly once, nothing RUNNING,
no trial number or lr doubled. PostgreSQL, MariaDB and Redis on 127.0.0.1 are needed by the tests
marked ``services`` (they fail, not skip, when the servers are missing: CI starts them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState

import autolr
from autolr import _liveness, _loop, _record, _sampling, _scaleout, _schema, _study

ROOT = Path(__file__).resolve().parents[1]
N = 40
K = 4

# The train function: a few ms of sleep and arithmetic. Every worker waits until all K workers
# have started (so they really run concurrently); the worker that runs trial HANG_AT first prints
# its pid and blocks, so the test can kill it mid-trial.
SCRIPT = textwrap.dedent(
    """
    import math, os, sys, time
    import autolr

    HERE = os.path.dirname(os.path.abspath(__file__))
    STARTED = set()

    @autolr.tune(n_trials=%(n)d, seed=0, sampler="random", show_progress_bar=False)
    def train(lr: float, trial) -> float:
        if not STARTED:
            STARTED.add(1)
            open(os.path.join(HERE, "ready", str(os.getpid())), "w").close()
            deadline = time.monotonic() + 60
            while len(os.listdir(os.path.join(HERE, "ready"))) < %(k)d and time.monotonic() < deadline:
                time.sleep(0.02)
        if trial.number == int(os.environ.get("HANG_AT", "-1")):
            try:
                fd = os.open(os.path.join(HERE, "hung"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                autolr.report(1.0, step=0)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                time.sleep(600)
        x = sum(i * i for i in range(3000))
        time.sleep(0.02)
        return (math.log10(lr) + 2.5) ** 2 + x * 0.0

    if __name__ == "__main__":
        train.run(workers=int(sys.argv[1]))
    """
) % {"n": N, "k": K}


def _env(storage: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), AUTOLR_STORAGE=storage)
    env.update(extra)
    return env


def _script(tmp_path: Path) -> Path:
    (tmp_path / "ready").mkdir()
    path = tmp_path / "train_script.py"
    path.write_text(SCRIPT)
    return path


def _cli_workers(script: Path, storage: str, k: int, **env: str) -> list[subprocess.Popen[str]]:
    """k independent ``autolr worker`` processes, as on k machines."""
    return [
        subprocess.Popen(
            [sys.executable, "-m", "autolr", "worker", f"{script}:train", "--worker-index", str(i)],
            env=_env(storage, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(k)
    ]


def _wait_hung(tmp_path: Path, procs: list[subprocess.Popen[str]], timeout: float = 60) -> int:
    marker = tmp_path / "hung"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text():
            return int(marker.read_text())
        dead = [p for p in procs if p.poll() is not None and p.returncode != 0]
        if dead:
            raise AssertionError(f"a worker failed early: {dead[0].communicate()[1]}")
        time.sleep(0.05)
    raise AssertionError("no worker reached the trial to hang in")


def _finish(procs: list[subprocess.Popen[str]], killed: int | None = None) -> None:
    for p in procs:
        out, err = p.communicate(timeout=120)
        if p.pid == killed:
            assert p.returncode == -signal.SIGKILL
        else:
            assert p.returncode == 0, err


def _check_study(storage: str, *, lost: int | None) -> None:
    """Exactly N counted trials, nothing RUNNING, no number or lr doubled, the lost lr retried once."""
    trials = autolr.load("train", storage=storage).study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) and sorted(numbers) == list(range(len(trials)))
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == N, [(t.number, t.state.name, t.user_attrs) for t in trials]
    assert sum(1 for t in _schema.views(trials) if _schema.counted(t)) == N
    lrs = [t.params["lr"] for t in complete]
    assert len(set(lrs)) == N  # a retry re-runs a FAILed trial's lr, so COMPLETE lrs are unique
    assert lrs.count(1e-3) == 1  # the default is measured once
    assert len({t.user_attrs["autolr.worker"] for t in complete}) == K  # all took part
    other = [t for t in trials if t.state == TrialState.FAIL]
    if lost is None:
        assert [t.user_attrs.get("autolr.stop_reason") for t in other] == ["surplus"] * len(other)
        return
    crashed = [t for t in trials if t.user_attrs.get("autolr.stop_reason") == "crashed"]
    assert [t.number for t in crashed] == [lost]
    assert 0 in crashed[0].intermediate_values  # it really was killed mid-trial
    retries = [t for t in trials if t.user_attrs.get("autolr.retry_of") == lost]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params["lr"] == crashed[0].params["lr"]
    assert all(t.user_attrs.get("autolr.stop_reason") in ("crashed", "surplus") for t in other)


def _kill_one_and_finish(
    tmp_path: Path, storage: str, *, cli: bool, sig: int = signal.SIGKILL, **env: str
) -> None:
    script = _script(tmp_path)
    hang_at = str(N - 2)  # near the end: the other workers must wait for it, not leave
    if cli:
        procs = _cli_workers(script, storage, K, HANG_AT=hang_at, **env)
    else:
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), str(K)], env=_env(storage, HANG_AT=hang_at, **env),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        ]
    pid = _wait_hung(tmp_path, procs)
    _wait_complete(storage, N - 1, procs)  # everyone else is done and waiting on the hung trial
    os.kill(pid, sig)
    if sig == signal.SIGSTOP:
        # A hung node: its pid lives on, only the heartbeat can tell. Wait for the study to end
        # without it, then kill it for good.
        try:
            _wait_done(storage, [p for p in procs if p.pid != pid])
        finally:
            os.kill(pid, signal.SIGKILL)
    _finish(procs, killed=pid if cli else None)
    _check_study(storage, lost=int(hang_at))


def _wait_complete(storage: str, n: int, procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        trials = autolr.load("train", storage=storage).study.get_trials(deepcopy=False)
        if sum(t.state == TrialState.COMPLETE for t in trials) >= n:
            time.sleep(0.5)  # a few polls of the waiting workers
            assert all(p.poll() is None for p in procs), "a worker left while a trial was running"
            return
        time.sleep(0.1)
    raise AssertionError(f"the study never reached {n} complete trials")


def _wait_done(storage: str, procs: list[subprocess.Popen[str]], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.1)


# ----------------------------------------------------------------------------- one machine


def test_workers_on_default_sqlite_survive_sigkill(tmp_path: Path) -> None:
    """train.run(workers=4) on the default storage (SQLite): one child SIGKILLed mid-trial."""
    _kill_one_and_finish(tmp_path, f"sqlite:///{tmp_path / 'studies.db'}", cli=False)


def test_workers_on_journal_file_survive_sigkill(tmp_path: Path) -> None:
    _kill_one_and_finish(tmp_path, f"journal:///{tmp_path / 'studies.log'}", cli=True)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_n_jobs_threads_hold_the_total(tmp_path: Path, kind: str) -> None:
    """Many threads, trials of ~1 ms: they race for the last slots again and again."""
    storage = f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite" else f"journal:///{tmp_path / 's.log'}"
    seen: set[str] = set()

    @autolr.tune(n_trials=30, seed=0, sampler="random", storage=storage, show_progress_bar=False)
    def train(lr: float) -> float:
        import threading

        seen.add(threading.current_thread().name)
        time.sleep(0.001)
        return lr

    for total in (10, 20, 30):  # resuming with a larger total: each run ends exactly there
        result = train.run(n_jobs=6, n_trials=total)
        trials = result.study.trials
        assert sum(t.state == TrialState.COMPLETE for t in trials) == total
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len(seen) == 6
    assert [t.params["lr"] for t in trials if "lr" in t.params].count(1e-3) == 1


def test_surplus_ranks_by_number_and_counts_queued_trials(tmp_path: Path) -> None:
    """The rule every worker applies to a trial it just got: within the total or surplus."""
    @autolr.tune(n_trials=3, storage=f"sqlite:///{tmp_path / 's.db'}", sampler="tpe",
                 show_progress_bar=False)
    def train(lr: float) -> float:
        return lr

    import optuna

    study = _study.open_study(train.config, train.study_name).study
    storage = study._storage

    def fresh() -> optuna.Trial:  # a trial another worker just created (RUNNING)
        return optuna.Trial(study, storage.create_new_trial(study._study_id))

    study.enqueue_trial({"lr": 0.01})  # 0: WAITING (a queued retry) holds a slot
    b, c, d = fresh(), fresh(), fresh()  # 1, 2 within the total; 3 one too many
    assert [t.number for t in (b, c, d)] == [1, 2, 3]
    assert not _loop.is_surplus(study, c, 3) and _loop.is_surplus(study, d, 3)
    a = study.ask()  # the queued trial is popped later: it ranks by its number
    assert a.number == 0 and not _loop.is_surplus(study, a, 3)
    _record.release(study, d)
    assert study.trials[3].state == TrialState.FAIL
    assert study.trials[3].user_attrs["autolr.stop_reason"] == "surplus"
    study.tell(b, state=TrialState.FAIL)  # an exception: counted, still holds its slot
    study.enqueue_trial({"lr": 0.02})  # 4: queued while all slots are held
    e = study.ask()
    assert e.number == 4 and _loop.is_surplus(study, e, 3)


def test_worker_seeds_differ_and_worker_zero_keeps_the_seed() -> None:
    assert _sampling.worker_seed(7, 0) == 7
    assert _sampling.worker_seed(None, 3) is None
    seeds = {_sampling.worker_seed(7, i) for i in range(8)}
    assert len(seeds) == 8
    assert _sampling.worker_seed(7, 2) == _sampling.worker_seed(7, 2)  # deterministic


def _closure_tuned() -> autolr.Tuned:  # type: ignore[type-arg]
    @autolr.tune(n_trials=2, storage="sqlite:///unused.db", show_progress_bar=False)
    def inner(lr: float) -> float:
        return lr

    return inner


def test_workers_refuse_closures_and_objects_with_clear_errors() -> None:
    with pytest.raises(TypeError, match="defined inside another function.*n_jobs"):
        _closure_tuned().run(workers=2)
    lam = autolr.tune(lambda lr: lr)
    with pytest.raises(TypeError, match="lambda"):
        lam.run(workers=2)
    with pytest.raises(autolr.StorageError, match="memory"):
        _scaleout.shareable_url("sqlite:///:memory:")
    with pytest.raises(ValueError, match="workers: expected an int >= 1"):
        autolr.tune(lambda lr: lr).run(workers=-1)


def test_worker_cli_never_prints_the_password(tmp_path: Path) -> None:
    script = _script(tmp_path)
    url = "postgresql://autolr:S3cretPw@127.0.0.1:1/nowhere?password=S3cretPw"
    proc = subprocess.run(
        [sys.executable, "-m", "autolr", "worker", f"{script}:train", "--storage", url],
        env=_env("sqlite:///unused.db"), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert "S3cretPw" not in proc.stdout + proc.stderr
    assert "autolr:***@127.0.0.1" in proc.stderr


def test_a_stale_heartbeat_is_stale_and_a_fresh_one_is_not() -> None:
    from datetime import datetime

    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    def running(attrs: dict[str, object]) -> object:
        t = create_trial(
            state=TrialState.RUNNING, params={"lr": 0.01},
            distributions={"lr": FloatDistribution(1e-5, 1e-1, log=True)}, user_attrs=attrs,
        )
        t.datetime_start = datetime.now()
        return t

    now = time.time()
    other = "some-other-host:123:456"
    assert _liveness.is_stale(running({"autolr.worker": other, "autolr.heartbeat": now - 61}), grace=60)
    assert not _liveness.is_stale(running({"autolr.worker": other, "autolr.heartbeat": now - 5}), grace=60)
    assert not _liveness.is_stale(running({"autolr.worker": other}), grace=60)  # just started


# ----------------------------------------------------------------------------- servers



@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    prefix = f"autolr_test_{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    client.ping()
    yield f"redis://127.0.0.1:6379/0?prefix={prefix}"
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    import pymysql

    name = f"autolr_test_{uuid.uuid4().hex[:10]}"
    con = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    con.cursor().execute(f"CREATE DATABASE `{name}`")
    yield f"mysql+pymysql://root@127.0.0.1:3306/{name}"
    con.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    con.close()


@pytest.mark.services
def test_postgres_four_workers_survive_sigkill(tmp_path: Path, postgres_url: str) -> None:
    _kill_one_and_finish(tmp_path, postgres_url, cli=True)


@pytest.mark.services
def test_redis_four_workers_survive_sigkill(tmp_path: Path, redis_url: str) -> None:
    _kill_one_and_finish(tmp_path, redis_url, cli=True)


@pytest.mark.services
def test_mariadb_four_workers_hold_the_total(tmp_path: Path, mariadb_url: str) -> None:
    script = _script(tmp_path)
    procs = _cli_workers(script, mariadb_url, K)
    _finish(procs)
    _check_study(mariadb_url, lost=None)


@pytest.mark.services
def test_hung_worker_on_postgres_is_recovered_by_heartbeat(tmp_path: Path, postgres_url: str) -> None:
    """SIGSTOP: the pid stays alive (as on another host); only the missing heartbeat tells."""
    _kill_one_and_finish(
        tmp_path, postgres_url, cli=True, sig=signal.SIGSTOP,
        AUTOLR_HEARTBEAT_INTERVAL="0.5", AUTOLR_HEARTBEAT_GRACE="3",
    )


def test_workers_example_runs(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("AUTOLR_STORAGE", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "workers.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("threads:    ") and "by 1 processes" in lines[0]
    assert lines[1].startswith("processes:  ") and "by 2 processes" in lines[1]
    assert lines[2].startswith("worker cmd: ") and "by 2 processes" in lines[2]
    assert all(line.endswith("best lr 3.16e-03") for line in lines)


RECOVER = textwrap.dedent(
    """
    import sys, time
    import autolr
    from autolr import _record, _schema, _study

    @autolr.tune(n_trials=5, storage=sys.argv[1], sampler="tpe", show_progress_bar=False)
    def train(lr: float) -> float:
        return lr

    study = _study.open_study(train.config, train.study_name).study
    while time.time() < float(sys.argv[2]):  # all detectors start together
        pass
    _record.recover_stale(study, _schema.views(study.get_trials(deepcopy=False)), sys.argv[1])
    """
)


def _dead_worker_id() -> str:
    """The identity of a worker on this host that has exited (and been reaped)."""
    import socket

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return f"{socket.gethostname()}:{p.pid}:12345"


def _stale_trial_then_race(storage: str) -> None:
    @autolr.tune(n_trials=5, storage=storage, sampler="tpe", show_progress_bar=False)
    def train(lr: float) -> float:
        return lr

    study = _study.open_study(train.config, train.study_name).study
    trial = study.ask()
    trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    study._storage.set_trial_user_attr(trial._trial_id, "autolr.worker", _dead_worker_id())
    start = time.time() + 4
    procs = [
        subprocess.Popen([sys.executable, "-c", RECOVER, storage, str(start)], env=_env(storage),
                         stderr=subprocess.PIPE, text=True)
        for _ in range(K)
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    trials = autolr.load("train", storage=storage).study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.FAIL
    assert trials[0].user_attrs["autolr.stop_reason"] == "crashed"
    retries = [t for t in trials if t.user_attrs.get("autolr.retry_of") == 0]
    assert len(retries) == 1, f"{len(retries)} retries queued for one lost trial"
    assert retries[0].state == TrialState.WAITING
    assert retries[0].system_attrs["fixed_params"]["lr"] == trials[0].params["lr"]


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_four_workers_detecting_one_stale_trial_at_once_retry_it_once(tmp_path: Path, kind: str) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite" else f"journal:///{tmp_path / 's.log'}"
    _stale_trial_then_race(storage)


@pytest.mark.services
def test_four_workers_detecting_one_stale_trial_on_postgres_retry_it_once(postgres_url: str) -> None:
    _stale_trial_then_race(postgres_url)
