"""Reports: the trials table, the learning-rate comparison (pure and from studies), exports."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

import autolr
from autolr import _reports
from autolr._reports import Outcome, compare_ranges, lr_bins, verdict

DIST = {"lr": FloatDistribution(1e-5, 1.0, log=True)}
T0 = dt.datetime(2025, 1, 1, 12, 0, 0)


def make_trial(
    lr: float,
    *,
    state: TrialState = TrialState.COMPLETE,
    curve: list[float] = (),  # type: ignore[assignment]
    value: float | None = None,
    reason: str | None = None,
    seconds: float = 2.0,
) -> optuna.trial.FrozenTrial:
    """A finished trial as autolr's runner would have stored it."""
    attrs = {}
    if reason is not None:
        attrs["autolr.stop_reason"] = reason
        if curve:
            attrs["autolr.stop_step"] = len(curve) - 1
    if state == TrialState.COMPLETE and value is None:
        value = curve[-1]
    return optuna.trial.create_trial(
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        params={"lr": lr},
        distributions=DIST,
        intermediate_values=dict(enumerate(curve)),
        user_attrs=attrs,
        system_attrs={},
    )


def decay(start: float, floor: float, rate: float, n: int = 10) -> list[float]:
    return [floor + (start - floor) * (1 - rate) ** i for i in range(n)]


def lr_study(storage: optuna.storages.BaseStorage | str | None = None) -> optuna.Study:
    """Fast, unstable 1e-1; moderate, stable 1e-2 (the best); slow (not converged), stable 1e-3."""
    study = optuna.create_study(study_name="lr", storage=storage)
    study.add_trials(
        [
            make_trial(0.1, state=TrialState.PRUNED, curve=[1.0, 0.5, 3.0], reason="diverged"),
            make_trial(0.12, state=TrialState.FAIL, curve=[1.0, float("nan")], reason="nan"),
            make_trial(0.09, curve=decay(1.0, 0.4, 0.9)),
            make_trial(0.01, curve=decay(1.0, 0.2, 0.5)),
            make_trial(0.012, curve=decay(1.0, 0.21, 0.5)),
            make_trial(0.001, curve=decay(1.0, 0.3, 0.15)),
            make_trial(0.0011, curve=decay(1.0, 0.31, 0.15)),
        ]
    )
    return study


# ----------------------------------------------------------------------------- pure logic


def test_decade_bins_are_centred_on_powers_of_ten() -> None:
    bins = lr_bins([0.1, 0.2, 0.012, 0.0009, 0.0035])
    assert [b[2] for b in bins] == ["1e-3", "1e-2", "1e-1"]
    lo, hi, _ = bins[1]
    assert lo == pytest.approx(10**-2.5) and hi == pytest.approx(10**-1.5)
    assert lr_bins([]) == []


def test_int_and_edge_bins() -> None:
    bins = lr_bins([1e-4, 1e-2], bins=2)
    assert len(bins) == 2 and bins[0][0] == pytest.approx(1e-4) and bins[1][1] >= 1e-2
    assert [b[2] for b in lr_bins([1e-3], bins=[1e-4, 1e-3, 1e-2])] == ["1e-4 to 1e-3", "1e-3 to 1e-2"]
    assert len(lr_bins([0.5, 0.5], bins=3)) == 3  # one lr: a range around it


@pytest.mark.parametrize("bad", [0, -1, True, [1e-3], [1e-2, 1e-3], [0.0, 1.0], "decade"])
def test_bad_bins_name_the_parameter(bad: object) -> None:
    with pytest.raises(ValueError, match=r"^bins: "):
        lr_bins([1e-3], bins=bad)  # type: ignore[arg-type]


def test_converge_step_is_measured_against_the_span() -> None:
    assert _reports.converge_step([(0, 1.0), (1, 0.6), (2, 0.25), (3, 0.21), (4, 0.2)]) == 3
    assert _reports.converge_step([(0, 1.0), (1, 0.2), (2, 0.9), (3, 0.2)]) == 3  # must stay
    assert _reports.converge_step([(0, 0.5), (1, float("nan"))]) == 0
    assert _reports.converge_step([(5, float("inf"))]) is None
    assert _reports.converge_step([(2, 1.0), (3, 1.0)]) == 2  # flat from the start


def test_verdicts() -> None:
    assert verdict(trials=4, completed=1, unstable=0.75, steps=2, typical_steps=6) == "fast, unstable"
    assert verdict(trials=3, completed=3, unstable=0.0, steps=12, typical_steps=6) == "slow, stable"
    assert verdict(trials=3, completed=2, unstable=1 / 3, steps=6, typical_steps=6) == (
        "moderate, sometimes unstable"
    )
    assert verdict(trials=2, completed=2, unstable=0, steps=5, typical_steps=None, best=True) == (
        "best range: stable"
    )
    assert verdict(trials=2, completed=0, unstable=1.0, steps=None, typical_steps=3) == "diverges"
    assert verdict(trials=2, completed=0, unstable=0.0, steps=None, typical_steps=3,
                   underperforming=1.0) == "underperforming (all stopped early)"
    assert verdict(trials=0, completed=0, unstable=0, steps=None, typical_steps=None) == "no trials"


def test_compare_ranges_reproduces_the_folklore_table_from_numbers() -> None:
    rows = compare_ranges(
        [
            Outcome(0.1, "PRUNED", stop_reason="diverged"),
            Outcome(0.12, "FAIL", stop_reason="nan"),
            Outcome(0.09, "COMPLETE", 0.40, steps_to_converge=2, spread=0.0),
            Outcome(0.01, "COMPLETE", 0.20, steps_to_converge=5, spread=0.01),
            Outcome(0.012, "COMPLETE", 0.22, steps_to_converge=6, spread=0.02),
            Outcome(0.001, "COMPLETE", 0.30, steps_to_converge=15),
            Outcome(0.0011, "RUNNING"),  # says nothing yet
            Outcome(0.0012, "FAIL", stop_reason="crashed"),  # says nothing about its lr
        ],
        recommended_lr=0.01,
    )
    got = {r.lr_range: r for r in rows}
    assert [r.lr_range for r in rows] == ["1e-1", "1e-2", "1e-3"]  # high lr first
    assert got["1e-1"].verdict == "fast, unstable"
    assert got["1e-1"].trials == 3 and got["1e-1"].unstable == pytest.approx(2 / 3)
    assert got["1e-2"].verdict == "best range: moderate, stable"
    assert got["1e-2"].best_value == 0.20 and got["1e-2"].median_value == pytest.approx(0.21)
    assert got["1e-2"].median_steps_to_converge == 5.5 and got["1e-2"].median_spread == 0.015
    assert got["1e-3"].verdict == "slow, stable" and got["1e-3"].trials == 1


def test_compare_ranges_maximize_picks_the_highest_best_value() -> None:
    rows = compare_ranges(
        [Outcome(0.01, "COMPLETE", 0.8), Outcome(0.011, "COMPLETE", 0.9)], direction="maximize"
    )
    assert rows[0].best_value == 0.9
    with pytest.raises(ValueError, match="^direction: "):
        compare_ranges([], direction="up")


def test_compare_ranges_of_nothing_is_empty() -> None:
    assert compare_ranges([]) == []
    assert compare_ranges([Outcome(0.01, "RUNNING")]) == []


# ----------------------------------------------------------------------------- trials table


def test_trials_table_columns_and_figures(db: str) -> None:
    study = lr_study(db)
    result = autolr.load("lr", storage=db)
    df = result.trials()
    assert list(df.columns) == list(autolr.TRIAL_COLUMNS)
    assert len(df) == 7
    row = df.set_index("number").loc[3]  # lr 0.01, halves its distance to 0.2 each step
    assert row["state"] == "COMPLETE" and row["lr"] == 0.01 and row["steps"] == 10
    assert row["value"] == pytest.approx(0.2 + 0.8 * 0.5**9)
    # within 5% of the span (0.798 -> band 0.0399) of 0.2016 from step 5 (0.225) on; step 4 is not
    assert row["steps_to_converge"] == 5
    assert 0 < row["spread"] < 0.05 and row["swings"] == 0 and row["duration_s"] == 0.0
    diverged = df.set_index("number").loc[0]
    assert diverged["stop_reason"] == "diverged" and diverged["stop_step"] == 2
    assert diverged["best_reported"] == 0.5 and diverged["final_reported"] == 3.0
    assert diverged["swings"] == 1
    assert math.isnan(diverged["value"]) and diverged["steps_to_converge"] is __import__("pandas").NA
    nan_trial = df.set_index("number").loc[1]
    assert nan_trial["state"] == "FAIL" and nan_trial["final_reported"] == 1.0
    assert study.trials[0].number == 0


def test_trials_table_has_every_other_parameter() -> None:
    study = optuna.create_study()
    study.add_trial(
        optuna.trial.create_trial(
            value=1.0,
            params={"lr": 0.01, "width": 64},
            distributions={**DIST, "width": optuna.distributions.IntDistribution(8, 128)},
        )
    )
    df = autolr.Result(study).trials()
    assert df.loc[0, "param_width"] == 64 and "param_lr" not in df.columns


@pytest.mark.parametrize("kind", ["empty", "failed", "pruned"])
def test_reports_of_degenerate_studies(kind: str, tmp_path: Path) -> None:
    study = optuna.create_study(study_name=kind)
    if kind == "failed":
        study.add_trials([make_trial(lr, state=TrialState.FAIL, curve=[float("nan")], reason="nan")
                          for lr in (0.1, 0.2)])
    elif kind == "pruned":
        study.add_trials([make_trial(lr, state=TrialState.PRUNED, curve=[1.0, 2.0], reason="diverged")
                          for lr in (0.1, 0.01)])
    result = autolr.Result(study)
    df = result.trials()
    assert list(df.columns) == list(autolr.TRIAL_COLUMNS)
    comp = result.comparison()
    assert list(comp.columns) == list(autolr.COMPARISON_COLUMNS)
    if kind == "empty":
        assert len(df) == 0 and len(comp) == 0
    else:
        assert set(comp["verdict"]) == {"diverges"}
        assert comp["completed"].sum() == 0
    for fmt in ("table", "md", "csv", "json", "html"):
        text = result.report(fmt)
        assert text.strip()
    doc = json.loads(result.report("json"))
    assert doc["recommendation"]["lr"] is None and len(doc["trials"]) == len(df)


# ----------------------------------------------------------------------------- comparison


def test_comparison_from_a_study(db: str) -> None:
    lr_study(db)
    comp = autolr.load("lr", storage=db).comparison()
    assert list(comp["lr_range"]) == ["1e-1", "1e-2", "1e-3"]
    verdicts = dict(zip(comp["lr_range"], comp["verdict"]))
    assert verdicts["1e-1"] == "fast, unstable"
    assert verdicts["1e-2"].startswith("best range: ") and verdicts["1e-2"].endswith("stable")
    assert verdicts["1e-3"] == "not converged, stable"  # still falling at the last step: slow
    assert list(comp["trials"]) == [3, 2, 2]
    custom = autolr.load("lr", storage=db).comparison(bins=[1e-4, 5e-3, 1.0])
    assert list(custom["trials"]) == [5, 2]
    with pytest.raises(ValueError, match="^bins: "):
        autolr.load("lr", storage=db).comparison(bins=[1.0])


# ----------------------------------------------------------------------------- exports


def test_exports_round_trip(db: str, tmp_path: Path) -> None:
    import pandas as pd

    lr_study(db)
    result = autolr.load("lr", storage=db)
    csv = result.export(tmp_path / "t.csv")
    back = pd.read_csv(csv)
    assert list(back.columns) == list(autolr.TRIAL_COLUMNS) and len(back) == 7

    doc = json.loads(result.export(tmp_path / "r.json").read_text())
    assert doc["study"] == "lr" and doc["direction"] == "minimize"
    assert doc["recommendation"]["lr"] == result.best_lr
    assert [r["lr_range"] for r in doc["comparison"]] == ["1e-1", "1e-2", "1e-3"]
    assert doc["counts"] == {"COMPLETE": 5, "FAIL": 1, "PRUNED": 1}
    assert doc["trials"][1]["value"] is None  # NaN is not JSON

    md = result.export(tmp_path / "r.md").read_text()
    assert md.startswith("# autolr report: lr")
    assert "| lr_range | lr_low |" in md and "| 1e-2 |" in md and "best range" in md
    table_lines = [line for line in md.splitlines() if line.startswith("|")]
    assert len({line.count(" | ") for line in table_lines if "lr_range" in line or "1e-" in line[:8]}) == 1

    txt = result.export(tmp_path / "r.out", format="table").read_text()
    assert "Learning-rate comparison" in txt and "recommended lr" in txt


def test_html_is_self_contained(db: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    lr_study(db)
    page = autolr.load("lr", storage=db).export(tmp_path / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    assert page.count('src="data:image/png;base64,') == 3
    # nothing fetched from anywhere: no external scripts, styles, fonts or images
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "best range" in page and "Recommended learning rate" in page


def test_html_escapes_study_names(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="<b>x&y</b>")
    page = autolr.Result(study).report("html")
    assert "&lt;b&gt;x&amp;y&lt;/b&gt;" in page and "<b>x&y</b>" not in page


def test_export_errors_name_the_parameter(db: str, tmp_path: Path) -> None:
    lr_study(db)
    result = autolr.load("lr", storage=db)
    with pytest.raises(ValueError, match=r"^format: cannot tell"):
        result.export(tmp_path / "report.xyz")
    with pytest.raises(ValueError, match=r"^format: expected one of"):
        result.export(tmp_path / "r.csv", format="xlsx")
    with pytest.raises(ValueError, match=r"^path: the directory"):
        result.export(tmp_path / "missing" / "r.csv")
    with pytest.raises(ValueError, match=r"^path: .* is a directory"):
        result.export(tmp_path, format="csv")


def test_parquet(db: str, tmp_path: Path) -> None:
    lr_study(db)
    result = autolr.load("lr", storage=db)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install pyarrow"):
            result.export(tmp_path / "t.parquet")
        assert not (tmp_path / "t.parquet").exists()
        return
    import pandas as pd

    back = pd.read_parquet(result.export(tmp_path / "t.parquet"))
    assert len(back) == 7 and list(back.columns) == list(autolr.TRIAL_COLUMNS)


def test_ten_thousand_trials_report() -> None:
    """Tables of a 10,000-trial study (time printed, not asserted; docs/reports.md has figures).

    The recommendation is left out here: its cost belongs to autolr._recommend.
    """
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), study_name="big")
    trials = []
    for i in range(10_000):
        lr = 10 ** (-5 + 4 * ((i * 7919) % 10_000) / 10_000)
        if lr > 0.05 and i % 3 == 0:
            trials.append(make_trial(lr, state=TrialState.PRUNED, curve=[1.0, 2.0, 5.0], reason="diverged"))
        else:
            trials.append(make_trial(lr, curve=decay(1.0, 0.2 + abs(math.log10(lr) + 2) * 0.05, min(0.9, lr * 40))))
    study.add_trials(trials)
    start = time.perf_counter()
    df = _reports.trials_table(study)
    comp = _reports.comparison_table(study, table=df, recommended_lr=0.01)
    text = _reports.markdown_table(df)
    elapsed = time.perf_counter() - start
    print(f"\n10,000 trials: trials table + comparison + markdown: {elapsed:.2f} s")
    assert len(df) == 10_000 and comp["trials"].sum() == 10_000
    assert len(text.splitlines()) == 10_002
    verdicts = dict(zip(comp["lr_range"], comp["verdict"]))
    assert verdicts["1e-1"].endswith("unstable") and verdicts["1e-2"].startswith("best range")
