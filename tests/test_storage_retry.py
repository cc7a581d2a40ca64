"""Workers survive a dropped connection and a locked database, within a bound (issue 18).

Real servers and files: PostgreSQL's ``pg_terminate_backend`` on every connection of the study's
database while two workers run; a SQLite writer holding ``BEGIN EXCLUSIVE`` for a while (the
others wait and retry, saying so once) and for longer than the bound (one line, exit 1).
"""

from __future__ import annotations

import os
import sqlite3
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
N = 12

SCRIPT = textwrap.dedent(
    """
    import os, time
    import autolr

    HERE = os.path.dirname(os.path.abspath(__file__))

    @autolr.tune(n_trials=%d, sampler="random", seed=0, show_progress_bar=False)
    def train(lr: float) -> float:
        open(os.path.join(HERE, "live-%%d" %% os.getpid()), "w").close()
        for step in range(5):
            time.sleep(0.05)
            autolr.report(abs(lr - 0.01) + 1.0 / (step + 1), step=step)
        return abs(lr - 0.01)
    """
) % N


def _workers(tmp_path: Path, storage: str, k: int, **env: str) -> list[subprocess.Popen[str]]:
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    full = dict(os.environ, PYTHONPATH=str(ROOT), AUTOLR_STORAGE=storage, **env)
    return [
        subprocess.Popen(
            [sys.executable, "-m", "autolr", "worker", f"{script}:train", "--worker-index", str(i)],
            env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(k)
    ]


def _wait_live(tmp_path: Path, procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(tmp_path.glob("live-*"))) < len(procs):
        assert all(p.poll() is None for p in procs), procs[0].communicate()[1][-2000:]
        time.sleep(0.05)


def _check_done(storage: str) -> None:
    trials = autolr.load("train", storage=storage).study.get_trials(deepcopy=False)
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert sum(_schema.counted(t) for t in _schema.views(trials)) == N



@pytest.mark.services
def test_workers_survive_pg_terminate_backend_on_all_their_connections(
    tmp_path: Path, postgres_url: str
) -> None:
    import psycopg

    procs = _workers(tmp_path, postgres_url, 2)
    _wait_live(tmp_path, procs)
    name = postgres_url.rsplit("/", 1)[1]
    killed = 0
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as con:
        for _ in range(4):
            rows = con.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()", (name,),
            ).fetchall()
            killed += len(rows)
            time.sleep(0.4)
    assert killed >= 2
    errs = []
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        assert err.count("reconnecting and retrying") <= 1, err
        assert "Traceback" not in err, err[-3000:]
        errs.append(err)
    _check_done(postgres_url)


def _hold_lock(db: Path, seconds: float) -> None:
    con = sqlite3.connect(db, timeout=30, isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    time.sleep(seconds)
    con.execute("ROLLBACK")
    con.close()


def test_a_sqlite_writer_holding_the_lock_makes_workers_wait_and_retry(tmp_path: Path) -> None:
    db = tmp_path / "studies.db"
    storage = f"sqlite:///{db}"
    procs = _workers(tmp_path, storage, 2, AUTOLR_SQLITE_TIMEOUT="0.3", AUTOLR_STORAGE_RETRY="30")
    _wait_live(tmp_path, procs)
    _hold_lock(db, 2.5)  # eight times longer than the workers' SQLite timeout
    said = 0
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        assert err.count("reconnecting and retrying") <= 1, err
        said += err.count("database is locked")
    assert said >= 1
    _check_done(storage)


def test_a_sqlite_lock_held_past_the_bound_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "studies.db"
    storage = f"sqlite:///{db}"
    procs = _workers(tmp_path, storage, 1, AUTOLR_SQLITE_TIMEOUT="0.2", AUTOLR_STORAGE_RETRY="1.5")
    _wait_live(tmp_path, procs)
    _hold_lock(db, 6)
    _, err = procs[0].communicate(timeout=60)
    assert procs[0].returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("autolr worker: StorageError: storage: still failing after 1.5 s"), err
    assert "database is locked" in last and "Traceback" not in err
    # Nothing is lost: the next worker finishes the study.
    for p in _workers(tmp_path, storage, 1):
        assert p.wait(timeout=120) == 0
    _check_done(storage)
