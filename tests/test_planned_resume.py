"""Ctrl-C and kill -9 at random moments of a study's first trials, then resume: every planned
lr runs exactly once (a lost trial's retry is extra, never in a planned point's place).

Real processes, real SQLite files and a real PostgreSQL database; 1 worker (in-process), 2 and 4
worker processes; autolr's own search and ``sampler="tpe"``. Each case: start, SIGINT to the
process group (as a terminal's Ctrl-C) once a random number of trials has started, resume, SIGKILL
to the group at another random moment, resume to the end, then check the study.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import optuna
import pytest

from autolr._config import TuneConfig
from autolr._sampling import planned_lrs
from autolr._schema import NOT_ABOUT_LR, counted, views
from autolr._search import FIRST_BUDGET, SearchSpec, key

ROOT = Path(__file__).resolve().parents[1]
LR = (1e-4, 1e-1)

SCRIPT = textwrap.dedent(
    """
    import math, os, time
    import autolr

    url, name, sampler, workers, marks = os.environ["PLAN_ARGS"].split("|")

    @autolr.tune(storage=url, study_name=name, sampler=sampler, lr=(1e-4, 1e-1),
                 n_trials=None if sampler == "auto" else 7, seed=0, show_progress_bar=False)
    def train(lr: float) -> float:
        with open(marks, "a") as f:
            f.write(f"{lr}\\n")
        loss = 1.0
        for epoch in range(4):
            time.sleep(0.03)
            loss = (math.log10(lr) + 2.5) ** 2 + 1.0 / (epoch + 1)
            autolr.report(loss, step=epoch)
        return loss

    if __name__ == "__main__":
        n = int(workers)
        train.run(workers=n if n > 1 else None)
    """
)



def _launch(script: Path, url: str, name: str, sampler: str, workers: int,
            marks: Path) -> subprocess.Popen[str]:
    args = "|".join([url, name, sampler, str(workers), str(marks)])
    env = dict(os.environ, PYTHONPATH=str(ROOT), PLAN_ARGS=args)
    return subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,  # its own process group: the signal reaches every worker
    )


def _interrupt(proc: subprocess.Popen[str], marks: Path, sig: signal.Signals,
               rng: random.Random) -> None:
    """Send ``sig`` to the group once 1-4 more trials have started, plus up to 0.15 s."""
    before = len(marks.read_text().splitlines()) if marks.exists() else 0
    target = before + rng.randint(1, 4)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if marks.exists() and len(marks.read_text().splitlines()) >= target:
            break
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 0.15))
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.communicate(timeout=60)
    if sig == signal.SIGKILL:
        return
    with_group = time.monotonic() + 30  # Ctrl-C: the workers wind down by themselves
    while time.monotonic() < with_group:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)


def _check(url: str, name: str, sampler: str, seed: int) -> None:
    study = optuna.load_study(study_name=name, storage=url)
    trials = views(study.get_trials(deepcopy=False))
    shown = [(t.number, t.lr, t.state, t.stop_reason, len(t.intermediate)) for t in trials]
    where = f"(seed {seed}; trials: {shown})"
    assert not [t for t in trials if t.state in ("RUNNING", "WAITING")], where
    assert all(counted(t) or t.stop_reason in NOT_ABOUT_LR for t in trials), where
    if sampler == "auto":
        spec = SearchSpec.build(default_lr=None, lr_range=LR)
        for x in spec.grid():  # each point of the first grid is measured, by one trial
            at = [t for t in trials if t.lr is not None and key(math.log10(t.lr)) == x]
            runs = [t for t in at if counted(t)]
            lost = [t for t in at if not counted(t)]
            assert len(runs) <= 1, f"lr 1e{x}: {len(runs)} counted trials {where}"
            # by the search's design a lost trial speaks for the reports it made, and an lr
            # whose trials died twice before reporting is left alone
            spoken = any(len(t.intermediate) >= FIRST_BUDGET for t in lost)
            twice = sum(1 for t in lost if not t.intermediate) >= 2
            assert runs or spoken or twice, f"lr 1e{x} never measured {where}"
        return
    plan = planned_lrs(TuneConfig.build(sampler="tpe", lr=LR))
    assert len(plan) == 4
    for p in plan:
        at = [t for t in trials if t.lr is not None and math.isclose(t.lr, p, rel_tol=1e-9)]
        runs = [t for t in at if counted(t)]
        assert len(runs) == 1, f"planned lr {p}: {len(runs)} counted runs {where}"
    assert sum(1 for t in trials if counted(t)) == 7, where


def _case(tmp_path: Path, url: str, sampler: str, workers: int) -> None:
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    script = tmp_path / "plan_train.py"
    script.write_text(SCRIPT)
    marks = tmp_path / "marks"
    name = f"plan-{uuid.uuid4().hex[:8]}"
    for sig in (signal.SIGINT, signal.SIGKILL):
        _interrupt(_launch(script, url, name, sampler, workers, marks), marks, sig, rng)
    last = _launch(script, url, name, sampler, workers, marks)
    out, err = last.communicate(timeout=180)
    assert last.returncode == 0, f"seed {seed}: {err[-3000:]}"
    _check(url, name, sampler, seed)


WORKERS = [1, 2, pytest.param(4, marks=pytest.mark.slow)]


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("sampler", ["auto", "tpe"])
def test_interrupted_then_resumed_sqlite(tmp_path: Path, sampler: str, workers: int) -> None:
    _case(tmp_path, f"sqlite:///{tmp_path / 's.db'}", sampler, workers)


@pytest.mark.services
@pytest.mark.parametrize(  # 1 and 4 workers on PostgreSQL: the slow run (-m slow)
    "workers", [pytest.param(1, marks=pytest.mark.slow), 2, pytest.param(4, marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("sampler", ["auto", "tpe"])
def test_interrupted_then_resumed_postgres(
    tmp_path: Path, pg_url: str, sampler: str, workers: int
) -> None:
    _case(tmp_path, pg_url, sampler, workers)
