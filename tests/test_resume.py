"""Resume after a hard kill and after Ctrl-C, with real child processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

import autolr

ROOT = Path(__file__).resolve().parents[1]

# A study whose trial 2 blocks (sleeps) so the parent can kill the process in the middle of it.
CHILD = textwrap.dedent(
    """
    import sys, time, autolr

    @autolr.tune(n_trials=5, seed=0, storage=sys.argv[1], sampler="tpe", pruner=False,
                 show_progress_bar=False)
    def train(lr: float) -> float:
        for epoch in range(3):
            autolr.report(1.0 / (epoch + 1) + lr, step=epoch)
        if sys.argv[2] == "hang" and len(open(sys.argv[3]).read()) == 2:
            print("hanging", flush=True)
            time.sleep(60)
        open(sys.argv[3], "a").write("x")
        return lr

    train.run()
    """
)


def _running_trials(db_file: Path) -> int:
    if not db_file.exists():
        return 0
    con = sqlite3.connect(db_file, timeout=30)
    try:
        return con.execute("select count(*) from trials where state = 'RUNNING'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def _start(url: str, mode: str, marks: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, mode, str(marks)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_line(proc: subprocess.Popen[str], text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if text in line:
            return
        if proc.poll() is not None:
            raise AssertionError(f"child exited early: {proc.stderr.read() if proc.stderr else ''}")
    raise AssertionError(f"child never printed {text!r}")


def test_sigkill_mid_trial_then_resume(tmp_path: Path) -> None:
    db_file = tmp_path / "s.db"
    url = f"sqlite:///{db_file}"
    marks = tmp_path / "marks"
    marks.write_text("")
    proc = _start(url, "hang", marks)
    _wait_for_line(proc, "hanging")
    assert _running_trials(db_file) == 1
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    before = autolr.load("train", storage=url).study.trials
    assert [t.state for t in before] == [TrialState.COMPLETE] * 2 + [TrialState.RUNNING]
    lost_lr = before[2].params["lr"]

    # Resume in a fresh process: it must neither hang on the zombie nor count it.
    proc = _start(url, "finish", marks)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err

    trials = autolr.load("train", storage=url).study.trials
    crashed = trials[2]
    assert crashed.state == TrialState.FAIL
    assert crashed.user_attrs["autolr.stop_reason"] == "crashed"
    assert 0 in crashed.intermediate_values  # its first report reached storage at once
    retried = [t for t in trials if t.user_attrs.get("autolr.retry_of") == 2]
    assert len(retried) == 1 and retried[0].params["lr"] == lost_lr
    assert retried[0].state == TrialState.COMPLETE
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(finished) == 5  # exactly the study's total, nothing doubled
    assert len({t.number for t in trials}) == len(trials)
    assert _running_trials(db_file) == 0
    assert marks.read_text() == "x" * 5


def test_ctrl_c_leaves_the_study_resumable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    marks = tmp_path / "marks"
    marks.write_text("")
    proc = _start(url, "hang", marks)
    _wait_for_line(proc, "hanging")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "interrupted" in err and "keeps 2 of 5 trials" in err and "resume" in err
    trials = autolr.load("train", storage=url).study.trials
    assert trials[2].state == TrialState.FAIL
    assert trials[2].user_attrs["autolr.stop_reason"] == "interrupted"
    assert not [t for t in trials if t.state == TrialState.RUNNING]

    proc = _start(url, "finish", marks)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    trials = autolr.load("train", storage=url).study.trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 5
    assert [t.params["lr"] for t in trials if t.user_attrs.get("autolr.retry_of") == 2] == [
        trials[2].params["lr"]
    ]


USERLIB = textwrap.dedent(
    """
    import time

    def deep_training_step(n):
        if n:
            return deep_training_step(n - 1)
        for _ in range(600):  # a long step made of short C calls, as a torch epoch is
            time.sleep(0.1)
    """
)

CTRL_C = textwrap.dedent(
    """
    import sys, autolr, userlib

    @autolr.tune(n_trials=3, storage=sys.argv[1], sampler=sys.argv[2], show_progress_bar=False)
    def train(lr: float) -> float:
        for epoch in range(4):
            autolr.report(1.0 + lr, step=epoch)
            if epoch == 1:
                print("training", flush=True)
                userlib.deep_training_step(5)
        return lr

    train.run()
    """
)


@pytest.mark.parametrize("sampler", ["auto", "tpe"])
def test_ctrl_c_ends_with_the_resume_message_and_one_short_traceback(
    tmp_path: Path, sampler: str
) -> None:
    (tmp_path / "userlib.py").write_text(USERLIB)
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}")
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C, f"sqlite:///{tmp_path / 's.db'}", sampler],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    _wait_for_line(proc, "training")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "Run again (train.run()) to resume." in err
    assert err.rstrip().endswith("\nKeyboardInterrupt"), err
    traceback = err[err.index("Traceback"):]
    assert "userlib.py" not in traceback and "deep_training_step" not in traceback, traceback
    assert traceback.count('  File "') <= 2, traceback  # the script's line and autolr's raise
