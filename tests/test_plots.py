"""Plots: each kind draws from a real study, saves PNG and SVG, and survives empty studies."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import autolr
from autolr import _plots

pytest.importorskip("matplotlib")

from test_reports import decay, lr_study, make_trial  # noqa: E402


@pytest.fixture
def result() -> autolr.Result:
    return autolr.Result(lr_study())


def test_lr_plot_marks_outcomes_and_the_recommendation(result: autolr.Result) -> None:
    fig = result.plot("lr")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "learning rate"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "completed (5)" in labels and "diverged (1)" in labels and "nan/inf (1)" in labels
    assert f"recommended lr = {result.best_lr:.3g}" in labels
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("recommended")]
    assert line.get_xdata()[0] == result.best_lr


def test_curves_plot_colours_by_lr_on_a_log_scale(result: autolr.Result) -> None:
    from matplotlib.collections import LineCollection
    from matplotlib.colors import LogNorm

    fig = result.plot("curves")
    ax = fig.axes[0]
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines.get_segments()) == 7
    assert isinstance(lines.norm, LogNorm) and lines.norm.vmin == 0.001 and lines.norm.vmax == 0.12
    assert fig.axes[1].get_ylabel() == "learning rate"  # the colour bar
    assert ax.get_ylim()[1] < 3.0  # the diverged trial's 3.0 does not flatten the others


def test_history_plot_steps_down_to_the_best(result: autolr.Result) -> None:
    ax = result.plot("history").axes[0]
    (best,) = [ln for ln in ax.get_lines() if ln.get_label() == "best so far"]
    ys = list(best.get_ydata())
    assert ys == sorted(ys, reverse=True) and ys[-1] == pytest.approx(min(
        t.value for t in result.study.trials if t.state == TrialState.COMPLETE))


def test_save_png_and_svg(result: autolr.Result, tmp_path: Path) -> None:
    png = result.plot("lr", path=tmp_path / "lr.png")
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png is not None
    result.plot("curves", path=tmp_path / "c.svg")
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()[:500]
    paths = _plots.save_all(result, tmp_path)
    assert sorted(p.name for p in paths) == sorted(
        f"lr-{k}.{f}" for k in _plots.KINDS for f in ("png", "svg"))
    with pytest.raises(ValueError, match=r"^path: expected a \.png or \.svg"):
        result.plot("lr", path=tmp_path / "lr.jpg")
    with pytest.raises(ValueError, match=r"^kind: expected one of lr, curves, history"):
        result.plot("pie")


def test_draws_into_your_own_axes(result: autolr.Result) -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert result.plot("history", ax=ax) is fig and ax.get_title().endswith("best value so far")


@pytest.mark.parametrize("kind", ["empty", "failed", "pruned"])
def test_plots_of_degenerate_studies(kind: str) -> None:
    study = optuna.create_study()
    if kind == "failed":
        study.add_trials([make_trial(0.1, state=TrialState.FAIL, curve=[float("nan")], reason="nan")])
    elif kind == "pruned":
        study.add_trials([make_trial(lr, state=TrialState.PRUNED, curve=decay(1.0, 0.5, 0.1, 3),
                                     reason="underperforming") for lr in (1e-4, 1e-4)])
    result = autolr.Result(study)
    for k in _plots.KINDS:
        assert _plots.to_bytes(result.plot(k), "png")[:4] == b"\x89PNG"


def test_missing_matplotlib_names_the_extra(result: autolr.Result, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an uninstalled package looks like
    with pytest.raises(ImportError, match=r"pip install 'autolr\[plot\]'"):
        result.plot("lr")
