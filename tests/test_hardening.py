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

    @autolr.tune(n_trials=int(sys.argv[2]), seed=0, storage=sys.argv[1], sampler="tpe",
                 pruner=False, show_progress_bar=False)
    def train(lr: float) -> float:
        loss = 1.0
        for step in range(5):
            time.sleep(0.008)
            loss = 0.5 * loss + lr
            autolr.report(loss, step=step)
        return loss

    print("go", flush=True)
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
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        proc.stdout.readline()  # "go": imports done, the study is about to open
        time.sleep(rng.uniform(0.0, 0.8))  # then anywhere: opening, training, reporting, writing
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


def test_an_outdated_schema_says_how_to_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    autolr.tune(n_trials=1, storage=url, study_name="old", show_progress_bar=False)(lambda lr: lr).run()
    con = sqlite3.connect(tmp_path / "old.db")
    con.execute("update alembic_version set version_num = 'v2.4.0.a'")  # as Optuna 2.4 left it
    con.commit()
    con.close()
    before = (tmp_path / "old.db").read_bytes()
    for attempt in (
        lambda: autolr.load("old", storage=url),
        lambda: autolr.tune(n_trials=2, storage=url, study_name="old")(lambda lr: lr).run(),
    ):
        with pytest.raises(autolr.StorageError, match=r"older Optuna; .*optuna storage upgrade --storage"):
            attempt()
    assert (tmp_path / "old.db").read_bytes() == before  # never "repaired" behind the user's back


FULL_DISK_CHILD = textwrap.dedent(
    """
    import os, resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    import autolr
    path = sys.argv[1]
    limit = os.path.getsize(path) + 8192
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # the disk is "full" beyond this

    @autolr.tune(n_trials=50, storage="sqlite:///" + path, study_name="full", sampler="tpe",
                 pruner=False, show_progress_bar=False)
    def train(lr):
        for step in range(40):
            autolr.report(1.0 / (step + 1) + lr, step=step)
        return lr

    train.run()
    """
)


def test_a_full_disk_is_a_clear_error_and_the_study_resumes(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    url = f"sqlite:///{path}"
    autolr.tune(n_trials=1, storage=url, study_name="full", sampler="tpe",
                show_progress_bar=False)(lambda lr: lr).run()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", FULL_DISK_CHILD, str(path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("autolr.StorageError: storage: cannot write to") or \
        last.startswith("autolr._storage.StorageError: storage: cannot write to"), proc.stderr[-1500:]
    assert "full" in last
    study = autolr.load("full", storage=url).study
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) < 50  # not reported as done
    # With room again, the same study finishes at exactly its total.
    @autolr.tune(n_trials=50, storage=url, study_name="full", sampler="tpe", pruner=False,
                 show_progress_bar=False)
    def train(lr: float) -> float:
        return lr

    result = train.run()
    counted = [t for t in result.study.trials if t.state.is_finished()
               and t.user_attrs.get("autolr.stop_reason") not in ("crashed", "interrupted", "surplus")]
    assert len(counted) == 50


def test_report_fuzz_never_crashes_and_never_calls_non_finite_stable() -> None:
    import math

    import optuna
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from autolr._context import TrialContext
    from autolr._stability import Stability, StabilityMonitor
    from autolr._stopping import StopJudge

    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    values = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.sampled_from([1e308, -1e308, 5e-324, 0.0, -0.0]),
        st.text(max_size=3), st.none(), st.booleans(), st.lists(st.floats(), max_size=2),
    )

    @settings(max_examples=300, deadline=None)
    @given(st.lists(values, min_size=1, max_size=30))
    def check(seq: list[object]) -> None:
        trial = study.ask()
        ctx = TrialContext(trial, judge=StopJudge(StabilityMonitor(Stability())), flush_interval=1e9)
        try:
            for v in seq:
                is_number = isinstance(v, (int, float)) and not isinstance(v, bool)
                try:
                    ctx.report(v, None)
                except TypeError:
                    assert not is_number
                    continue
                except autolr.TrialPruned as stop:
                    assert stop.reason in ("nan", "inf", "diverged", "oscillating")
                    if not math.isfinite(float(v)):  # type: ignore[arg-type]
                        assert stop.reason in ("nan", "inf")
                    return
                assert is_number and math.isfinite(float(v))  # type: ignore[arg-type]
        finally:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)

    check()
