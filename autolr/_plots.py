"""Pictures of a study (matplotlib, imported lazily; ``pip install 'autolr[plot]'``).

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, not on pyplot, so
they work headless, in threads and in servers, and never open a window; pass ``ax=`` to draw
into an axes of your own (then your backend applies).

Example:
    .. code-block:: python

        fig = result.plot("lr")            # final value vs learning rate
        fig.savefig("lr.png")
        result.plot("curves", path="curves.svg")
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

import optuna

from autolr._recommend import Recommendation
from autolr._schema import TrialView, counted, views

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


class Plottable(Protocol):
    """What a plot reads of a study (an :class:`autolr.Result` is one); the trials are read
    from ``study`` (Optuna caches them)."""

    @property
    def study(self) -> optuna.Study: ...

    @property
    def direction(self) -> str: ...

    @property
    def recommendation(self) -> Recommendation: ...


#: What :meth:`autolr.Result.plot` can draw, with the title of each figure.
KINDS = {
    "lr": "Final value vs learning rate",
    "curves": "Curves of all trials, coloured by learning rate",
    "history": "Best value so far over trials",
}
#: File formats :func:`save_all` writes.
IMAGE_FORMATS = ("png", "svg")

# Colour and marker per outcome: completed trials blue dots, unstable ones warm colours.
_STYLE: dict[str, tuple[str, str, str]] = {
    "completed": ("#1f77b4", "o", "completed"),
    "diverged": ("#d62728", "X", "diverged"),
    "oscillating": ("#ff7f0e", "D", "oscillating"),
    "nan": ("#8c0000", "^", "nan/inf"),
    "inf": ("#8c0000", "^", "nan/inf"),
    "underperforming": ("#7f7f7f", "v", "underperforming"),
    "exception": ("#000000", "s", "exception"),
    "other": ("#bcbd22", "P", "other"),
}


def _mpl() -> ModuleType:
    try:
        import matplotlib  # optional: pip install 'autolr[plot]'
    except ImportError:
        raise ImportError(
            "autolr's plots need matplotlib: pip install 'autolr[plot]'"
        ) from None
    return matplotlib


def _new_axes(ax: Axes | None, *, size: tuple[float, float] = (7.5, 4.5)) -> tuple[Figure, Axes]:
    _mpl()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if ax is not None:
        owner = ax.figure  # a Figure, or a SubFigure of one
        return (owner if isinstance(owner, Figure) else owner.figure), ax

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _outcome(t: TrialView) -> str:
    if t.state == "COMPLETE":
        return "completed"
    reason = t.stop_reason
    return reason if reason is not None and reason in _STYLE else "other"


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _trials(result: Plottable) -> list[tuple[float, TrialView]]:
    """``(lr, trial)`` of the trials a plot shows: those that count (:func:`autolr._schema.counted`)."""
    return [
        (t.lr, t) for t in views(result.study.get_trials(deepcopy=False))
        if t.lr is not None and counted(t)
    ]


def _maybe_log_y(ax: Axes, values: list[float]) -> None:
    pos = [v for v in values if v > 0]
    if pos and len(pos) == len(values) and max(pos) / min(pos) > 30:
        ax.set_yscale("log")


def plot_lr(result: Plottable, *, ax: Axes | None = None) -> Figure:
    """Final value of every trial against its learning rate (log axis), coloured by outcome.

    Completed trials show their final value; stopped ones the last value they reported (a
    trial with no finite report sits on the top edge). The recommended lr is a dashed line.
    """
    fig, ax = _new_axes(ax)
    trials = _trials(result)
    points: dict[str, list[tuple[float, float | None]]] = {}
    ys: list[float] = []
    for lr, t in trials:
        kind = _outcome(t)
        if kind == "completed":
            y = t.value
        else:
            finite = [v for _, v in t.curve if _finite(v)]
            y = finite[-1] if finite else None
        y = y if y is not None and _finite(y) else None
        points.setdefault(kind, []).append((lr, y))
        if y is not None:
            ys.append(float(y))
    _maybe_log_y(ax, ys)
    top = max(ys) if ys else 1.0
    shown: set[str] = set()
    order = sorted(points, key=lambda k: list(_STYLE).index(k))
    for kind in order:
        colour, marker, label = _STYLE[kind]
        xs = [x for x, _ in points[kind]]
        yv = [top if y is None else y for _, y in points[kind]]
        ax.scatter(
            xs, yv, c=colour, marker=marker, s=36, alpha=0.85, edgecolors="none",
            label=None if label in shown else f"{label} ({len(xs)})", zorder=3,
        )
        shown.add(label)
    rec = result.recommendation
    if rec.lr is not None:
        ax.axvline(rec.lr, color="#2ca02c", linestyle="--", linewidth=1.5,
                   label=f"recommended lr = {rec.lr:.3g}", zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final value" + (" (higher is better)" if result.direction == "maximize" else ""))
    ax.set_title(f"{result.study.study_name}: final value vs learning rate")
    ax.grid(True, which="major", alpha=0.3)
    if trials:
        ax.legend(loc="best", fontsize="small", framealpha=0.85)
    else:
        ax.text(0.5, 0.5, "no finished trials yet", ha="center", va="center", transform=ax.transAxes)
    return fig


def plot_curves(result: Plottable, *, ax: Axes | None = None) -> Figure:
    """The reported curve of every trial over steps, coloured by learning rate (log scale).

    The value axis is clipped at the highest starting value so that a diverging trial does not
    flatten all the others.
    """
    fig, ax = _new_axes(ax)
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.colors import LogNorm

    segs: list[list[tuple[int, float]]] = []
    lrs: list[float] = []
    starts: list[float] = []
    lows: list[float] = []
    all_y: list[float] = []
    for lr, t in _trials(result):
        pts = [(s, v) for s, v in t.curve if _finite(v)]
        if not pts:
            continue
        segs.append(pts)
        lrs.append(lr)
        starts.append(pts[0][1])
        lows.append(min(v for _, v in pts))
        all_y.extend(v for _, v in pts)
    ax.set_xlabel("step")
    from matplotlib.ticker import MaxNLocator  # matplotlib is imported lazily, with the figure

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.set_ylabel("reported value")
    ax.set_title(f"{result.study.study_name}: curves by learning rate")
    if not segs:
        ax.text(0.5, 0.5, "no reported values yet", ha="center", va="center", transform=ax.transAxes)
        return fig
    lo_lr, hi_lr = min(lrs), max(lrs)
    if hi_lr <= lo_lr:
        lo_lr, hi_lr = lo_lr / 1.5, hi_lr * 1.5
    norm = LogNorm(vmin=lo_lr, vmax=hi_lr)
    lines = LineCollection(segs, array=lrs, cmap="viridis", norm=norm, linewidths=1.2, alpha=0.8)
    ax.add_collection(lines)
    ax.set_xlim(min(p[0][0] for p in segs), max(p[-1][0] for p in segs) or 1)
    top, bottom = max(starts), min(lows)
    if result.direction == "maximize":
        top = max(all_y)
    _maybe_log_y(ax, [bottom, top])
    if ax.get_yscale() == "log":
        ax.set_ylim(bottom / 1.2, top * 1.2)
    else:
        pad = (top - bottom) * 0.05 or abs(top) * 0.05 or 1.0
        ax.set_ylim(bottom - pad, top + pad)
    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=ax)
    cbar.set_label("learning rate")
    ax.grid(True, alpha=0.3)
    return fig


def plot_history(result: Plottable, *, ax: Axes | None = None) -> Figure:
    """Each completed trial's value by trial number, and the best value so far as a step line."""
    fig, ax = _new_axes(ax)
    done = sorted(
        (t.number, t.value) for _, t in _trials(result)
        if t.state == "COMPLETE" and t.value is not None and _finite(t.value)
    )
    ax.set_xlabel("trial number")
    ax.set_ylabel("value")
    ax.set_title(f"{result.study.study_name}: best value so far")
    if not done:
        ax.text(0.5, 0.5, "no completed trials yet", ha="center", va="center", transform=ax.transAxes)
        return fig
    xs = [n for n, _ in done]
    ys = [v for _, v in done]
    pick = min if result.direction == "minimize" else max
    best, running = [], ys[0]
    for v in ys:
        running = pick(running, v)
        best.append(running)
    _maybe_log_y(ax, ys)
    ax.scatter(xs, ys, s=14, color="#1f77b4", alpha=0.6, label="completed trial", zorder=3)
    ax.step(xs, best, where="post", color="#d62728", linewidth=1.6, label="best so far", zorder=4)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return fig


_PLOTTERS = {"lr": plot_lr, "curves": plot_curves, "history": plot_history}


def figure(result: Plottable, kind: str = "lr", *, ax: Axes | None = None) -> Figure:
    """Draw one of :data:`KINDS` for ``result`` (an :class:`autolr.Result`)."""
    if kind not in _PLOTTERS:
        raise ValueError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    return _PLOTTERS[kind](result, ax=ax)


def to_bytes(fig: Figure, format: str = "png") -> bytes:
    """The figure as PNG or SVG bytes."""
    if format not in IMAGE_FORMATS:
        raise ValueError(f"format: expected one of {', '.join(IMAGE_FORMATS)}, got {format!r}")
    buf = io.BytesIO()
    fig.savefig(buf, format=format, dpi=100)
    return buf.getvalue()


def save(fig: Figure, path: str | Path) -> Path:
    """Save ``fig`` to ``path``; the format comes from the suffix (``.png`` or ``.svg``)."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"path: expected a .png or .svg file name, got {str(path)!r}")
    path.write_bytes(to_bytes(fig, fmt))
    return path


def safe_name(name: str) -> str:
    """A study name made safe as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "study"


def save_all(
    result: Plottable, directory: str | Path, *, formats: tuple[str, ...] = IMAGE_FORMATS
) -> list[Path]:
    """Write every plot of ``result`` into ``directory`` as ``<study>-<kind>.<format>``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"directory: {str(directory)!r} is not an existing directory")
    for f in formats:
        if f not in IMAGE_FORMATS:
            raise ValueError(f"formats: expected png and/or svg, got {f!r}")
    out = []
    stem = safe_name(result.study.study_name)
    for kind in KINDS:
        fig = figure(result, kind)
        for f in formats:
            path = directory / f"{stem}-{kind}.{f}"
            path.write_bytes(to_bytes(fig, f))
            out.append(path)
    return out
