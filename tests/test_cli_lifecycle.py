"""``autolr delete``, ``autolr rename`` and ``autolr studies`` on SQLite, a journal file and
PostgreSQL: nothing lost, unknown names and taken names refused in one line, foreign studies
listed without breaking the listing."""

from __future__ import annotations

import io
import sqlite3
from datetime import datetime
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

import autolr
from autolr._schema import STUDY_RECOMMENDED_LR
from autolr._storage import open_storage
from autolr.cli import LIST_RECOMPUTE_MAX, main



def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _tuned(url: str, name: str = "train") -> None:
    @autolr.tune(n_trials=3, sampler="random", seed=0, storage=url, study_name=name,
                 show_progress_bar=False)
    def train(lr: float, epochs: int = 1) -> float:
        return (lr - 0.01) ** 2 * epochs

    train.run(epochs=2)


def _lrs(url: str, name: str) -> list[float]:
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    return [t.params["lr"] for t in study.trials]


def _lifecycle(url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _tuned(url, "a")
    _tuned(url, "b")
    before = _lrs(url, "a")
    # rename: trials kept; a taken name or an unknown one refused in one line
    code, _, err = run(capsys, "rename", "a", "c", "--storage", url)
    assert code == 0 and "renamed study 'a' to 'c'" in err
    assert _lrs(url, "c") == before
    code, _, err = run(capsys, "rename", "c", "b", "--storage", url)
    assert code == 1 and err.count("\n") == 1 and "'b' exists already" in err
    assert _lrs(url, "c") == before and len(_lrs(url, "b")) == 3
    code, _, err = run(capsys, "rename", "nope", "x", "--storage", url)
    assert code == 1 and err.count("\n") == 1 and "no study 'nope'" in err and "'c'" in err
    # delete: asks; "n" (or no answer) keeps it; --yes does not ask
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, _, err = run(capsys, "delete", "c", "--storage", url)
    assert code == 1 and "kept" in err and _lrs(url, "c") == before
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(capsys, "delete", "c", "--storage", url)
    assert code == 1 and _lrs(url, "c") == before
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, err = run(capsys, "delete", "c", "--storage", url)
    assert code == 0 and "deleted study 'c' (3 trials)" in err and "[y/N]" in out
    code, _, _ = run(capsys, "delete", "b", "--storage", url, "--yes")
    assert code == 0 and optuna.get_all_study_names(open_storage(url)) == []
    code, _, err = run(capsys, "delete", "b", "--storage", url, "--yes")
    assert code == 1 and err.count("\n") == 1 and "no study 'b'" in err


def test_rename_and_delete_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _lifecycle(f"sqlite:///{tmp_path / 's.db'}", capsys, monkeypatch)


def test_rename_and_delete_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _lifecycle(f"journal:///{tmp_path / 's.log'}", capsys, monkeypatch)  # copy, check, delete


@pytest.mark.services
def test_rename_and_delete_postgres(
    pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _lifecycle(pg_url, capsys, monkeypatch)


def _studies(url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    code, out, err = run(capsys, "studies", "--storage", url)
    assert code == 0 and err == "", err
    lines = out.splitlines()
    assert lines[0].split()[:10] == ["study", "direction", "trials", "complete", "pruned",
                                     "failed", "best", "lr", "created", "updated"]
    return {line.split()[0]: line for line in lines[1:]}


def _foreign(url: str) -> None:
    storage = open_storage(url)
    multi = optuna.create_study(storage=storage, study_name="multi", directions=["minimize"] * 2)
    multi.add_trial(create_trial(values=[1.0, 2.0], params={"lr": 0.1},
                                 distributions={"lr": FloatDistribution(1e-5, 1.0)}))
    cat = optuna.create_study(storage=storage, study_name="categorical")
    cat.add_trial(create_trial(value=1.0, params={"lr": "high"},
                               distributions={"lr": CategoricalDistribution(["low", "high"])}))
    odd = optuna.create_study(storage=storage, study_name="odd")
    odd.add_trial(create_trial(state=TrialState.FAIL, params={"lr": 0.1},
                               distributions={"lr": FloatDistribution(1e-5, 1.0)},
                               user_attrs={"autolr.stop_reason": ["nan", "x"]}))


def _listing(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _tuned(url, "train")
    _foreign(url)
    rows = _studies(url, capsys)
    assert set(rows) == {"train", "multi", "categorical", "odd"}
    train = rows["train"].split()
    assert train[1:6] == ["minimize", "3", "3", "0", "0"]
    assert train[6] == f"{autolr.load('train', storage=url).best_lr:.4g}"
    today = datetime.now().strftime("%Y-%m-%d")
    assert train[7].startswith(today) and train[8].startswith(today)
    assert "optuna: train@" in rows["train"] and "epochs=2" in rows["train"]
    assert "not autolr's (2 objectives)" in rows["multi"] and "multi" in rows["multi"].split()[1]
    assert "not autolr's" in rows["categorical"] and "not autolr's" in rows["odd"]


def test_studies_lists_times_fingerprint_and_foreign_studies_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _listing(f"sqlite:///{tmp_path / 's.db'}", capsys)


def test_studies_journal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _listing(f"journal:///{tmp_path / 's.log'}", capsys)


@pytest.mark.services
def test_studies_postgres(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _listing(pg_url, capsys)


def add_trials_fast(db_file: Path, study: str, n: int, reports: int = 0) -> None:
    """``n`` COMPLETE trials (lr, value, ``reports`` reports) by bulk SQL: seconds for 20,000,
    where Optuna's API takes minutes. The study must exist and hold one trial with ``lr``."""
    con = sqlite3.connect(db_file)
    with con:
        sid, = con.execute("SELECT study_id FROM studies WHERE study_name = ?", (study,)).fetchone()
        dist, = con.execute("SELECT distribution_json FROM trial_params LIMIT 1").fetchone()
        first, = con.execute("SELECT COALESCE(MAX(trial_id), 0) + 1 FROM trials").fetchone()
        base, = con.execute("SELECT COUNT(*) FROM trials WHERE study_id = ?", (sid,)).fetchone()
        now = "2026-01-01 00:00:00.000000"
        ids = range(first, first + n)
        con.executemany("INSERT INTO trials VALUES (?, ?, ?, 'COMPLETE', ?, ?)",
                        [(i, base + i - first, sid, now, now) for i in ids])
        con.executemany("INSERT INTO trial_values (trial_id, objective, value, value_type) "
                        "VALUES (?, 0, ?, 'FINITE')", [(i, 1.0 + (i % 97) / 97) for i in ids])
        con.executemany("INSERT INTO trial_params (trial_id, param_name, param_value, "
                        "distribution_json) VALUES (?, 'lr', ?, ?)",
                        [(i, 10 ** (-5 + 4 * (i % 101) / 101), dist) for i in ids])
        if reports:
            con.executemany(
                "INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, "
                "intermediate_value_type) VALUES (?, ?, ?, 'FINITE')",
                [(i, s, 1.0 / (s + 1)) for i in ids for s in range(reports)])
    con.close()


def test_studies_on_a_large_study_reads_counts_not_trials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past LIST_RECOMPUTE_MAX trials the listing shows the recommendation stored by the last
    run instead of reading every trial (benchmarks/studies_listing.py times 20,000)."""
    db_file = tmp_path / "s.db"
    url = f"sqlite:///{db_file}"
    _tuned(url, "big")
    add_trials_fast(db_file, "big", LIST_RECOMPUTE_MAX + 10)
    optuna.load_study(study_name="big", storage=url).set_user_attr(STUDY_RECOMMENDED_LR, 0.0123)
    row = _studies(url, capsys)["big"].split()
    assert row[2:4] == [str(LIST_RECOMPUTE_MAX + 13)] * 2 and row[6] == "0.0123"
