"""Faults users meet on shared machines: random SIGKILLs, readers on the file, full disks,
foreign or outdated files. Real processes, real files."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import autolr

ROOT = Path(__file__).resolve().parents[1]
N_TRIALS = 60
KILLS = 30

# Each trial reports 5 steps ~8 ms apart, so a kill lands inside the train function, during a
# report write or during the final write of a trial, or while the study is being opened.
CHILD = textwrap.dedent(
    """
    import sys, time, autolr

    @autolr.tune(n_trials=int(sys.argv[2]), seed=0, storage=sys.argv[1], pruner=False,
                 show_progress_bar=False)
    def train(lr: float) -> float:
        loss = 1.0
        for step in range(5):
            time.sleep(0.008)
            loss = 0.5 * loss + lr
            autolr.report(loss, step=step)
        return loss

    train.run()
    """
)


def _finished(db_file: Path) -> dict[int, tuple[str, float | None]]:
    con = sqlite3.connect(db_file, timeout=60)
    try:
        rows = con.execute(
            "select t.number, t.state, v.value from trials t "
            "left join trial_values v on v.trial_id = t.trial_id "
            "where t.state in ('COMPLETE', 'PRUNED', 'FAIL')"
        ).fetchall()
    except sqlite3.OperationalError:  # killed before the tables were created
        return {}
    finally:
        con.close()
    return {n: (s, v) for n, s, v in rows}


@pytest.mark.slow
def test_random_sigkills_lose_nothing_and_double_nothing(tmp_path: Path) -> None:
    db_file = tmp_path / "s.db"
    url = f"sqlite:///{db_file}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rng = random.Random(1234)
    seen: dict[int, tuple[str, float | None]] = {}
    kills = 0
    for _ in range(KILLS):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, url, str(N_TRIALS)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.2, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        now = _finished(db_file)
        for number, record in seen.items():  # every finished trial is still there, unchanged
            assert now.get(number) == record, f"trial {number} changed after a kill"
        seen = now
    # Finish without kills: the study reaches exactly its total.
    proc = subprocess.run([sys.executable, "-c", CHILD, url, str(N_TRIALS)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = autolr.load("train", storage=url).study
    trials = study.trials
    counted = [t for t in trials if t.user_attrs.get("autolr.stop_reason") not in
               ("crashed", "interrupted", "surplus") and t.state.is_finished()]
    assert len(counted) == N_TRIALS
    assert not [t for t in trials if t.state.name == "RUNNING"]
    retries = [t.user_attrs["autolr.retry_of"] for t in trials if "autolr.retry_of" in t.user_attrs]
    assert len(retries) == len(set(retries))  # each lost lr re-run at most once
    crashed = [t for t in trials if t.user_attrs.get("autolr.stop_reason") == "crashed"]
    assert kills >= KILLS // 2 and crashed, (kills, len(crashed))
    print(f"\n{kills} SIGKILLs, {len(crashed)} trials caught mid-run, {len(retries)} re-run; "
          f"{N_TRIALS} finished trials kept")


def test_a_reader_holding_the_file_does_not_break_the_study(tmp_path: Path) -> None:
    """optuna-dashboard#545: a second reader on the SQLite file while a study writes."""
    db_file = tmp_path / "s.db"
    url = f"sqlite:///{db_file}"
    autolr.tune(n_trials=1, storage=url, study_name="warm", show_progress_bar=False)(lambda lr: lr).run()
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        con = sqlite3.connect(db_file, timeout=60, isolation_level=None)
        try:
            while not stop.is_set():
                con.execute("begin")
                con.execute("select count(*) from trial_intermediate_values").fetchall()
                con.execute("select * from trials").fetchall()
                time.sleep(0.05)  # hold the read transaction like a slow dashboard poll
                con.execute("commit")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            con.close()

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        @autolr.tune(n_trials=8, storage=url, pruner=False, show_progress_bar=False)
        def train(lr: float) -> float:
            for step in range(30):
                autolr.report(1.0 / (step + 1), step=step)
            return lr

        result = train.run()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert len(result.study.trials) == 8
    assert all(len(t.intermediate_values) == 30 for t in result.study.trials)
