"""Tables people read, built from storage only: the trials table, the lr comparison, exports.

Two layers, as everywhere in autolr:

* pure functions over numbers (:func:`trial_figures`, :func:`lr_bins`, :func:`compare_ranges`,
  :func:`verdict`), testable without Optuna or pandas;
* thin edges that read an Optuna study (:func:`trials_table`, :func:`comparison_table`) and write
  files (:func:`render`, :func:`export`).

Reports read storage; they never reach back into the runner.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import optuna

from autolr import _plots
from autolr._plots import Plottable
from autolr._recommend import Recommendation, curve_stats
from autolr._peers import made_no_progress
from autolr._schema import PARAM, UNSTABLE, TrialView, counted, views
from autolr._storage import mask

if TYPE_CHECKING:
    import pandas as pd

#: Relative tolerance of ``steps_to_converge``: within 5% of the trial's final reported value.
CONVERGE_TOL = 0.05
#: How many last reports ``spread`` looks at.
SPREAD_TAIL = 3

#: Columns of :func:`trials_table`, in order, with what they mean.
TRIAL_COLUMNS = {
    "number": "Optuna's trial number",
    "state": "COMPLETE, PRUNED (stopped by autolr), FAIL, RUNNING or WAITING",
    "lr": "the learning rate the trial ran",
    "value": "the final objective the train function returned (empty unless COMPLETE)",
    "first_reported": "the first intermediate value the trial reported",
    "best_reported": "the best finite intermediate value the trial reported",
    "final_reported": "the last finite intermediate value the trial reported",
    "steps": "how many intermediate values the trial reported",
    "last_step": "the last step it reported",
    "stop_reason": "why autolr stopped or failed it (nan, inf, diverged, oscillating, "
    "no_progress, underperforming, exception, crashed, interrupted, surplus); empty if it ran "
    "to the end",
    "stop_step": "the step of the report that stopped it",
    "steps_to_converge": "COMPLETE trials: the first step from which every report stays within "
    f"{CONVERGE_TOL:.0%} of the curve's span (max - min) of the last report; lower = sooner; "
    "empty when the curve was still falling at its last step (see converged)",
    "converged": "COMPLETE trials with 3 reports or more: False when the curve was still falling "
    "at its last step (a longer run would have gone further)",
    "learned": "False when the trial ended within 1% of its first report (no progress): the "
    "model learned nothing at this lr",
    "finite": "False when a report was NaN or infinite",
    "spread": f"(max - min) / |mean| of the last {SPREAD_TAIL} reports: 0 = flat at the end, "
    "large = still moving or noisy",
    "swings": "how many times the curve changed direction (down then up, or up then down)",
    "exception": "type and message of the exception the train function raised",
    "retry_of": "the crashed trial whose lr this one re-runs",
    "duration_s": "wall time in seconds",
    "started": "start time",
}

#: Columns of :func:`comparison_table`, in order, with what they mean.
COMPARISON_COLUMNS = {
    "lr_range": "the learning-rate range of the row (decades centred on 1e-1, 1e-2, ... by default)",
    "lr_low": "lowest lr of the range (inclusive)",
    "lr_high": "highest lr of the range (exclusive)",
    "trials": "trials whose lr falls in the range (crashed/interrupted ones left out)",
    "completed": "of them, trials that ran to the end",
    "unstable": "share of trials stopped or failed as nan, inf, diverged or oscillating",
    "no_progress": "share of trials that learned nothing (ended within 1% of their first report, "
    "or above the untrained level)",
    "median_steps_to_converge": "convergence speed: median steps_to_converge of completed trials",
    "median_spread": "median spread of the last reports of completed trials",
    "best_value": "best final value of the range",
    "median_value": "median final value of completed trials",
    "verdict": "speed and stability compared with the other ranges, from what the trials did "
    "('stable' only when no trial blew up, rose above its start or learned nothing; 'not "
    "converged' when the curves still fell at their last step); 'best range' holds the "
    "recommended lr",
}


# ============================================================================ pure: one trial


@dataclass(frozen=True)
class TrialFigures:
    """Per-curve figures of one trial (see :data:`TRIAL_COLUMNS`)."""

    best_reported: float | None
    final_reported: float | None
    steps: int
    last_step: int | None
    steps_to_converge: int | None
    spread: float | None
    swings: int
    converged: bool | None = None
    learned: bool | None = None
    rose: bool = False
    non_finite: bool = False


def trial_figures(
    curve: Sequence[tuple[int, float]], *, complete: bool, direction: str = "minimize"
) -> TrialFigures:
    """Figures of one intermediate curve, from :func:`autolr._recommend.curve_stats`.

    ``steps_to_converge`` is only given for a trial that ran to its end (``complete``): the
    "final value" of a stopped trial is where it was cut, not where it converged. It is
    :func:`converge_step`, whose tolerance is a share of the curve's span rather than of
    ``|final|`` (as ``curve_stats.steps_to_converge`` uses): with a loss that levels off at
    0.2 after starting at 1.0, "5% of 0.2" asks for the last few steps of every run whatever the
    learning rate, while "5% of the 0.8 drop" separates fast from slow.

    Example:
        >>> f = trial_figures([(0, 2.0), (1, 1.0), (2, 0.51), (3, 0.5)], complete=True)
        >>> f.steps_to_converge, f.best_reported, f.steps
        (2, 0.5, 4)
    """
    s = curve_stats(curve, direction=direction, tail=SPREAD_TAIL, tol=CONVERGE_TOL)
    step = converge_step(curve) if complete else None
    converged = None
    if complete and s.n_reports >= 3:
        converged = not (step == s.last_step and _still_falling(curve, direction))
        if not converged:
            step = None
    values = [float(v) for _, v in curve]
    finite = [v for v in values if math.isfinite(v)]
    sign = 1.0 if direction == "minimize" else -1.0
    rose = len(finite) >= 2 and sign * (finite[-1] - finite[0]) > 0.1 * abs(finite[0])
    return TrialFigures(
        best_reported=s.best,
        final_reported=s.final,
        steps=len(curve),
        last_step=s.last_step,
        steps_to_converge=step,
        spread=s.tail_spread if s.n_reports >= 2 else None,
        swings=s.swings,
        converged=converged,
        learned=None if len(finite) < 2 else not made_no_progress(values, direction=direction),
        rose=rose,
        non_finite=s.non_finite,
    )


def _still_falling(curve: Sequence[tuple[int, float]], direction: str) -> bool:
    """Whether the last report improved on everything before it by more than the tolerance."""
    sign = 1.0 if direction == "minimize" else -1.0
    values = [sign * float(v) for _, v in curve if math.isfinite(v)]
    if len(values) < 3:
        return False
    span = max(values) - min(values)
    return min(values[:-1]) - values[-1] > CONVERGE_TOL * span


def converge_step(curve: Sequence[tuple[int, float]], *, tol: float = CONVERGE_TOL) -> int | None:
    """The first step from which every finite report stays within ``tol`` x span of the last one.

    The span is ``max - min`` of the finite reports; ``None`` for a curve with no finite report.

    Example:
        >>> converge_step([(0, 1.0), (1, 0.6), (2, 0.25), (3, 0.21), (4, 0.2)])
        3
    """
    pts = [(s, float(v)) for s, v in curve if math.isfinite(v)]
    if not pts:
        return None
    values = [v for _, v in pts]
    final = values[-1]
    band = tol * (max(values) - min(values))
    step = pts[-1][0]
    for s, v in reversed(pts):
        if abs(v - final) > band:
            break
        step = s
    return step


# ============================================================================ pure: comparison


@dataclass(frozen=True)
class Outcome:
    """What the comparison table needs of one trial: numbers only."""

    lr: float
    state: str
    value: float | None = None
    stop_reason: str | None = None
    steps_to_converge: int | None = None
    spread: float | None = None
    converged: bool | None = None
    learned: bool | None = None
    rose: bool = False
    non_finite: bool = False

    @property
    def unstable(self) -> bool:
        """Stopped or failed as unstable, or its curve went non-finite or rose above its start."""
        return self.stop_reason in UNSTABLE or self.non_finite or self.rose

    @property
    def no_progress(self) -> bool:
        return not self.unstable and (
            self.stop_reason == "no_progress" or (self.state == "COMPLETE" and self.learned is False)
        )


@dataclass(frozen=True)
class RangeRow:
    """One row of the learning-rate comparison (see :data:`COMPARISON_COLUMNS`)."""

    lr_range: str
    lr_low: float
    lr_high: float
    trials: int
    completed: int
    unstable: float
    no_progress: float
    median_steps_to_converge: float | None
    median_spread: float | None
    best_value: float | None
    median_value: float | None
    verdict: str


def _label(x: float) -> str:
    """``0.01 -> '1e-2'``, ``0.003 -> '3e-3'``, ``0.0025 -> '2.5e-3'``."""
    e = math.floor(math.log10(x) + 1e-9)
    m = float(f"{x / 10**e:.2g}")
    if m >= 10:
        m, e = m / 10, e + 1
    return f"{m:g}e{e}"


def lr_bins(lrs: Sequence[float], *, bins: int | Sequence[float] | None = None) -> list[tuple[float, float, str]]:
    """The ``(low, high, label)`` learning-rate ranges a comparison uses, low to high.

    Args:
        lrs: the learning rates of the trials (positive).
        bins: ``None`` for one range per decade centred on a power of ten (``1e-2`` covers
            ``[10**-2.5, 10**-1.5)``, about 3.2e-3 to 3.2e-2); an int ``n`` for ``n`` ranges of
            equal width in log scale spanning the trials' lrs; or a sorted sequence of edges
            (trials outside them are left out).

    Example:
        >>> [label for _, _, label in lr_bins([0.1, 0.012, 0.0009])]
        ['1e-3', '1e-2', '1e-1']
        >>> lr_bins([1e-3], bins=[1e-4, 1e-3, 1e-2])[1][2]
        '1e-3 to 1e-2'
    """
    good = [float(x) for x in lrs if isinstance(x, Real) and math.isfinite(x) and x > 0]
    if bins is None:
        decades = sorted({math.floor(math.log10(x) + 0.5) for x in good})
        return [(10 ** (d - 0.5), 10 ** (d + 0.5), f"1e{d}") for d in decades]
    if isinstance(bins, bool):
        raise ValueError(f"bins: expected None, an int >= 1 or a sequence of edges, got {bins!r}")
    if isinstance(bins, int):
        if bins < 1:
            raise ValueError(f"bins: expected an int >= 1, got {bins!r}")
        if not good:
            return []
        lo, hi = math.log10(min(good)), math.log10(max(good))
        if hi == lo:
            lo, hi = lo - 0.5, hi + 0.5
        width = (hi - lo) / bins
        edges = [10 ** (lo + i * width) for i in range(bins)] + [10 ** hi * (1 + 1e-12)]
    else:
        try:
            edges = [float(e) for e in bins]
        except (TypeError, ValueError):
            raise ValueError(
                f"bins: expected None, an int >= 1 or a sequence of lr edges, got {bins!r}"
            ) from None
        if len(edges) < 2 or any(not (e > 0 and math.isfinite(e)) for e in edges) or any(
            b <= a for a, b in zip(edges, edges[1:])
        ):
            raise ValueError(
                f"bins: expected at least two increasing positive lr edges, got {list(bins)!r}"
            )
    return [(a, b, f"{_label(a)} to {_label(b)}") for a, b in zip(edges, edges[1:])]


def _median(xs: Sequence[float]) -> float | None:
    return float(statistics.median(xs)) if xs else None


def verdict(
    *,
    trials: int,
    completed: int,
    unstable: float,
    steps: float | None,
    typical_steps: float | None,
    best: bool = False,
    underperforming: float = 0.0,
    no_progress: float = 0.0,
    not_converged: float = 0.0,
    below_best: bool = False,
) -> str:
    """A few words for one range, from what its trials did.

    Speed (when trials completed): ``steps`` is the range's median steps to converge and
    ``typical_steps`` the median over all ranges: at most 2/3 of it is "fast", at least 3/2
    "slow"; when most completed curves still fell at their last step it is "not converged".
    Stability: half or more trials unstable (stopped as nan/inf/diverged/oscillating, or a curve
    that went non-finite or rose above its start) is "unstable", some "sometimes unstable"; any
    trial that learned nothing is "no progress"; "stable" only when none of that happened. A
    range where nothing completed "diverges" (all unstable), learns nothing, or is
    "underperforming (all stopped early)" only when every trial was stopped as merely behind.

    Example:
        >>> verdict(trials=4, completed=1, unstable=0.75, steps=2, typical_steps=6)
        'fast, unstable'
        >>> verdict(trials=3, completed=3, unstable=0.0, steps=6, typical_steps=6, best=True)
        'best range: moderate, stable'
        >>> verdict(trials=2, completed=0, unstable=1.0, steps=None, typical_steps=6)
        'diverges'
        >>> verdict(trials=2, completed=0, unstable=0.0, steps=None, typical_steps=6,
        ...         no_progress=0.5, underperforming=0.5)
        'no progress, none completed'
    """
    if trials == 0:
        return "no trials"
    trouble = []
    if unstable >= 0.5:
        trouble.append("unstable")
    elif unstable > 0:
        trouble.append("sometimes unstable")
    if no_progress >= 1.0:
        trouble.append("learns nothing")
    elif no_progress > 0:
        trouble.append("no progress")
    if completed == 0:
        if unstable >= 1.0:
            return "diverges"
        if trouble:
            return ", ".join(trouble) + ", none completed"
        if underperforming >= 1.0:
            slow = "slow, " if below_best else ""
            return f"{slow}underperforming (all stopped early)"
        return "no completed trial"
    words = []
    if not_converged > 0.5:
        words.append("not converged")
    elif steps is not None and typical_steps is not None and typical_steps > 0:
        ratio = steps / typical_steps
        words.append("fast" if ratio <= 2 / 3 else "slow" if ratio >= 1.5 else "moderate")
    words += trouble or ["stable"]
    text = ", ".join(words)
    return f"best range: {text}" if best else text


def compare_ranges(
    outcomes: Sequence[Outcome],
    *,
    bins: int | Sequence[float] | None = None,
    direction: str = "minimize",
    recommended_lr: float | None = None,
) -> list[RangeRow]:
    """The learning-rate comparison: one :class:`RangeRow` per range holding trials, high lr first.

    Only the trials that count are compared (:func:`autolr._schema.counted`: not RUNNING,
    WAITING, crashed, interrupted or surplus).

    Example:
        >>> rows = compare_ranges([
        ...     Outcome(0.1, "PRUNED", stop_reason="diverged"),
        ...     Outcome(0.08, "COMPLETE", 0.9, steps_to_converge=2),
        ...     Outcome(0.01, "COMPLETE", 0.3, steps_to_converge=5),
        ...     Outcome(0.001, "COMPLETE", 0.5, steps_to_converge=9),
        ... ], recommended_lr=0.01)
        >>> [(r.lr_range, r.verdict) for r in rows]
        [('1e-1', 'fast, unstable'), ('1e-2', 'best range: moderate, stable'), ('1e-3', 'slow, stable')]
    """
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction: expected 'minimize' or 'maximize', got {direction!r}")
    used = [
        o
        for o in outcomes
        if counted(o)
        and isinstance(o.lr, Real)
        and math.isfinite(o.lr)
        and o.lr > 0
    ]
    ranges = lr_bins([o.lr for o in used], bins=bins)
    groups: list[tuple[float, float, str, list[Outcome]]] = []
    for lo, hi, label in ranges:
        members = [o for o in used if lo <= o.lr < hi]
        if members:
            groups.append((lo, hi, label, members))

    def done(ms: list[Outcome]) -> list[Outcome]:
        return [o for o in ms if o.state == "COMPLETE" and o.value is not None and math.isfinite(o.value)]

    per_range_steps = []
    for _, _, _, ms in groups:
        st = [o.steps_to_converge for o in done(ms) if o.steps_to_converge is not None]
        per_range_steps.append(_median(st))
    typical = _median([s for s in per_range_steps if s is not None])
    if sum(s is not None for s in per_range_steps) < 2:
        typical = None  # one range alone is neither fast nor slow
    pick = min if direction == "minimize" else max
    rows = []
    for (lo, hi, label, ms), steps in zip(groups, per_range_steps):
        ok = done(ms)
        values = [float(o.value) for o in ok]  # type: ignore[arg-type]
        spreads = [o.spread for o in ok if o.spread is not None and math.isfinite(o.spread)]
        share = sum(o.unstable for o in ms) / len(ms)
        idle = sum(o.no_progress for o in ms) / len(ms)
        best = recommended_lr is not None and lo <= recommended_lr < hi
        rows.append(
            RangeRow(
                lr_range=label,
                lr_low=lo,
                lr_high=hi,
                trials=len(ms),
                completed=len(ok),
                unstable=share,
                no_progress=idle,
                median_steps_to_converge=steps,
                median_spread=_median(spreads),
                best_value=pick(values) if values else None,
                median_value=_median(values),
                verdict=verdict(
                    trials=len(ms),
                    completed=len(ok),
                    unstable=share,
                    steps=steps,
                    typical_steps=typical,
                    best=best,
                    underperforming=sum(o.stop_reason == "underperforming" for o in ms) / len(ms),
                    no_progress=idle,
                    not_converged=(sum(o.converged is False for o in ok) / len(ok)) if ok else 0.0,
                    below_best=recommended_lr is not None and hi <= recommended_lr,
                ),
            )
        )
    rows.reverse()
    return rows


# ============================================================================ edges: Optuna


def _row(t: TrialView, *, direction: str) -> dict[str, object]:
    """One row of :func:`trials_table`: each column of :data:`TRIAL_COLUMNS` made here, once."""
    fig = trial_figures(t.curve, complete=t.state == "COMPLETE", direction=direction)
    dur = (t.completed - t.started).total_seconds() if t.completed and t.started else None
    row: dict[str, object] = {
        "number": t.number,
        "state": t.state,
        "lr": t.lr,
        "value": t.value,
        "first_reported": float(t.curve[0][1]) if t.curve else None,
        "best_reported": fig.best_reported,
        "final_reported": fig.final_reported,
        "steps": fig.steps,
        "last_step": fig.last_step,
        "stop_reason": t.stop_reason,
        "stop_step": t.stop_step,
        "steps_to_converge": fig.steps_to_converge,
        "converged": fig.converged,
        "learned": fig.learned,
        "finite": not fig.non_finite,
        "spread": fig.spread,
        "swings": fig.swings,
        "exception": t.exception,
        "retry_of": t.retry_of,
        "duration_s": dur,
        "started": t.started,
    }
    for k, v in t.params.items():
        if k != PARAM:
            row[f"param_{k}"] = v
    return row


def _direction(study: optuna.Study) -> str:
    return "maximize" if study.direction.name == "MAXIMIZE" else "minimize"


def trials_table(study: optuna.Study, *, trials: Sequence[TrialView] | None = None) -> pd.DataFrame:
    """One row per trial of ``study`` with the columns of :data:`TRIAL_COLUMNS`.

    Other parameters the train function suggested follow as ``param_<name>`` columns.

    Args:
        study: an Optuna study (``result.study``).
        trials: the study's trials when the caller already read them.

    Example:
        >>> import optuna
        >>> study = optuna.create_study()
        >>> list(trials_table(study).columns)[:4]
        ['number', 'state', 'lr', 'value']
    """
    import pandas as pd  # pandas costs import time: only reports need it

    if trials is None:
        trials = views(study.get_trials(deepcopy=False))
    direction = _direction(study)
    rows = [_row(t, direction=direction) for t in trials]
    extra = sorted({k for row in rows for k in row if k not in TRIAL_COLUMNS})
    df = pd.DataFrame(rows, columns=list(TRIAL_COLUMNS) + extra)
    for col in ("lr", "value", "first_reported", "best_reported", "final_reported", "spread",
                "duration_s"):
        df[col] = df[col].astype("float64")
    df.attrs["direction"] = direction
    for col in ("last_step", "stop_step", "steps_to_converge", "retry_of"):
        df[col] = df[col].astype("Int64")
    df["started"] = pd.to_datetime(df["started"])
    return df


def outcomes(table: pd.DataFrame) -> list[Outcome]:
    """The comparison's view of a :func:`trials_table`."""

    def num(x: object) -> float | None:
        try:
            v = float(x)  # type: ignore[arg-type]  # numpy and pandas scalars, None, NA
        except (TypeError, ValueError):
            return None
        return None if v != v else v

    def flag(x: object) -> bool | None:
        return None if x is None or x is pd.NA or x != x else bool(x)

    import pandas as pd  # pandas costs import time: only reports need it

    sign = 1.0 if table.attrs.get("direction", "minimize") == "minimize" else -1.0
    out = []
    for rec in table.to_dict("records"):
        lr = num(rec["lr"])
        if lr is None:
            continue
        first, final = num(rec["first_reported"]), num(rec["final_reported"])
        rose = first is not None and final is not None and sign * (final - first) > 0.1 * abs(first)
        steps = num(rec["steps_to_converge"])
        reason = rec["stop_reason"]
        out.append(
            Outcome(
                lr=lr,
                state=str(rec["state"]),
                value=num(rec["value"]),
                stop_reason=reason if isinstance(reason, str) else None,
                steps_to_converge=None if steps is None else int(steps),
                spread=num(rec["spread"]),
                converged=flag(rec["converged"]),
                learned=flag(rec["learned"]),
                rose=rose,
                non_finite=rec["finite"] is False or rec["finite"] == False,  # noqa: E712
            )
        )
    return out


def comparison_table(
    study: optuna.Study,
    *,
    bins: int | Sequence[float] | None = None,
    table: pd.DataFrame | None = None,
    recommended_lr: float | None = None,
) -> pd.DataFrame:
    """The learning-rate comparison of ``study`` with the columns of :data:`COMPARISON_COLUMNS`.

    Args:
        study: an Optuna study (``result.study``).
        bins: the lr ranges, see :func:`lr_bins`.
        table: the study's :func:`trials_table` when the caller already built it.
        recommended_lr: the range holding it is the "best range".
    """
    import pandas as pd  # pandas costs import time: only reports need it

    if table is None:
        table = trials_table(study)
    rows = compare_ranges(
        outcomes(table), bins=bins, direction=_direction(study), recommended_lr=recommended_lr
    )
    df = pd.DataFrame([asdict(r) for r in rows], columns=list(COMPARISON_COLUMNS))
    for col in ("lr_low", "lr_high", "unstable", "no_progress", "median_steps_to_converge",
                "median_spread", "best_value", "median_value"):
        df[col] = df[col].astype("float64")
    for col in ("trials", "completed"):
        df[col] = df[col].astype("int64")
    return df


# ============================================================================ rendering

#: Formats :func:`render` and :func:`export` write; ``parquet`` needs pyarrow and a file.
FORMATS = ("table", "md", "csv", "json", "html", "parquet")
_SUFFIXES = {
    ".md": "md", ".markdown": "md", ".csv": "csv", ".json": "json", ".html": "html",
    ".htm": "html", ".parquet": "parquet", ".txt": "table",
}


def format_for(path: str | Path, format: str | None) -> str:
    """The export format: ``format`` if given, else from the file suffix."""
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {format!r}")
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(
            f"format: cannot tell the format from {str(path)!r}; pass format= one of "
            f"{', '.join(FORMATS)} or use a suffix {', '.join(sorted(_SUFFIXES))}"
        )
    return _SUFFIXES[suffix]


_INT_COLUMNS = frozenset(
    {"number", "steps", "last_step", "stop_step", "steps_to_converge", "swings", "retry_of",
     "trials", "completed"}
)


def _fmt(x: object, *, col: str = "") -> str:
    """One cell for people: lr and values to 4 significant digits, shares as percentages."""
    if x is None or (isinstance(x, float) and x != x):
        return ""
    if str(x) in ("<NA>", "NaT"):
        return ""
    if isinstance(x, bool) or isinstance(x, str):
        return str(x)
    if isinstance(x, datetime):
        return x.isoformat(sep=" ", timespec="seconds")
    if isinstance(x, Real):
        f = float(x)
        if col == "unstable":
            return f"{f:.0%}"
        if col == "duration_s":
            return f"{f:.2f}"
        if col in _INT_COLUMNS and f.is_integer():
            return str(int(f))
        return f"{f:.4g}"
    return str(x)


def _cells(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    cols = [str(c) for c in df.columns]
    body = [[_fmt(v, col=c) for c, v in zip(cols, row)] for row in df.itertuples(index=False)]
    return cols, body


def _md_text(text: str) -> str:
    """Text for Markdown: raw HTML (``<script>``) shown as text, never run by a renderer."""
    return html.escape(text, quote=False)


#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?inf|nan", re.I)


def csv_safe(cell: object) -> object:
    r"""A CSV cell that a spreadsheet cannot run: text starting with ``=``, ``+``, ``-``, ``@``, a
    tab or a carriage return gets a ``'`` in front (OWASP); numbers, and text that is a plain
    number, stay as they are.

    Example:
        >>> csv_safe("=HYPERLINK(\"http://x\")"), csv_safe(-2.5), csv_safe("-2.5")
        ('\'=HYPERLINK("http://x")', -2.5, '-2.5')
    """
    if isinstance(cell, str) and cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def csv_text(df: pd.DataFrame) -> str:
    """``df`` as CSV with every text cell made safe for spreadsheets (:func:`csv_safe`)."""
    import pandas as pd  # pandas costs import time: only reports need it

    safe = df.copy()
    for col in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[col]):  # object, str and category columns
            safe[col] = safe[col].astype(object).map(csv_safe)
    safe.columns = [csv_safe(str(c)) for c in safe.columns]
    return str(safe.to_csv(index=False))


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no ``tabulate`` needed); ``|`` and raw HTML in cells
    are escaped."""
    cols, body = _cells(df)

    def esc(cell: str) -> str:
        return _md_text(cell).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(c) for c in cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def text_table(df: pd.DataFrame) -> str:
    """Aligned plain text for a terminal."""
    cols, body = _cells(df)
    if not body:
        return "  ".join(cols) + "\n(none)"
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(cols)]

    def line(cells: list[str]) -> str:
        return "  ".join(s.ljust(w) for s, w in zip(cells, widths)).rstrip()

    return "\n".join([line(cols)] + [line(r) for r in body])


def _jsonable(x: object) -> object:
    import pandas as pd  # pandas costs import time: only reports need it

    if x is None or x is pd.NA or x is pd.NaT:
        return None
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, np.generic):  # numpy scalars
        return _jsonable(x.item())
    if isinstance(x, datetime):
        return x.isoformat()
    return x


def _records(df: pd.DataFrame) -> list[dict[str, object]]:
    cols = [str(c) for c in df.columns]
    return [{c: _jsonable(v) for c, v in zip(cols, row)} for row in df.itertuples(index=False)]


class Reportable(Plottable, Protocol):
    """What a report reads of a study (an :class:`autolr.Result` is one): its plots' inputs and
    its trials table."""

    def trials(self) -> pd.DataFrame: ...


@dataclass
class Report:
    """Everything a report shows, read once from storage."""

    study_name: str
    direction: str
    recommendation: Recommendation
    trials: pd.DataFrame
    comparison: pd.DataFrame

    @property
    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.trials["state"].value_counts().sort_index().items()}

    def headline(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts.items()) or "no trials"
        rec = self.recommendation
        lr = "none" if rec.lr is None else f"{rec.lr:.4g}"
        return f"study {self.study_name!r} ({self.direction}): {counts}; recommended lr: {lr}"


def build(result: Reportable, *, bins: int | Sequence[float] | None = None) -> Report:
    """Read a :class:`autolr.Result` into a :class:`Report`."""
    rec = result.recommendation
    table = result.trials()
    comp = comparison_table(result.study, bins=bins, table=table, recommended_lr=rec.lr)
    return Report(result.study.study_name, result.direction, rec, table, comp)


def _text(rep: Report) -> str:
    return "\n\n".join(
        [
            rep.headline(),
            rep.recommendation.reason,
            "Learning-rate comparison\n" + text_table(rep.comparison),
            "Trials\n" + text_table(rep.trials),
        ]
    ) + "\n"


def _markdown(rep: Report) -> str:
    rec = rep.recommendation
    lr = "none" if rec.lr is None else f"`{rec.lr:.4g}`"
    return (
        f"# autolr report: {_md_text(rep.study_name)}\n\n"
        f"{_md_text(rep.headline())}\n\n"
        f"**Recommended learning rate:** {lr}\n\n{_md_text(rec.reason)}\n\n"
        f"## Learning-rate comparison\n\n{markdown_table(rep.comparison)}\n\n"
        f"## Trials\n\n{markdown_table(rep.trials)}\n"
    )


def _json(rep: Report) -> str:
    rec = rep.recommendation
    doc = {
        "study": rep.study_name,
        "direction": rep.direction,
        "counts": rep.counts,
        "recommendation": {
            "lr": _jsonable(rec.lr),
            "trial_number": rec.trial_number,
            "value": _jsonable(rec.value),
            "reason": rec.reason,
        },
        "comparison": _records(rep.comparison),
        "trials": _records(rep.trials),
    }
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.8em;max-width:100%}
th,td{border:1px solid #ccc;padding:.2em .4em;text-align:right;overflow-wrap:anywhere}
th{white-space:normal}
th{background:#f2f2f2}td.t{text-align:left}
.rec{background:#eef7ee;border-left:4px solid #2a2;padding:.6em 1em;max-width:60em}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}
.note{color:#666}
"""


def html_table(df: pd.DataFrame) -> str:
    """An escaped HTML table (no external CSS needed)."""
    cols, body = _cells(df)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = []
    for r in body:
        tds = "".join(
            f'<td class="t">{html.escape(v)}</td>' if v and not _looks_numeric(v) else f"<td>{html.escape(v)}</td>"
            for v in r
        )
        rows.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


#: The trials table of the HTML page: what a person reads in a 1400 px window (the exports keep
#: every column).
_HTML_TRIAL_COLUMNS = [
    "number", "state", "lr", "value", "first_reported", "final_reported", "steps",
    "stop_reason", "stop_step", "steps_to_converge", "converged", "spread", "duration_s",
]


def _looks_numeric(s: str) -> bool:
    try:
        float(s.rstrip("%"))
    except ValueError:
        return False
    return True


def _html(rep: Report, result: Plottable) -> str:
    rec = rep.recommendation
    lr = "none" if rec.lr is None else f"{rec.lr:.4g}"
    figures = []
    try:
        for kind, title in _plots.KINDS.items():
            fig = _plots.figure(result, kind)
            png = _plots.to_bytes(fig, "png")
            data = base64.b64encode(png).decode("ascii")
            figures.append(
                f'<h3>{html.escape(title)}</h3><img alt="{html.escape(title)}" '
                f'src="data:image/png;base64,{data}">'
            )
    except ImportError as exc:
        figures.append(f'<p class="note">{html.escape(str(exc))}</p>')
    name = html.escape(rep.study_name)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>autolr report: {name}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>autolr report: {name}</h1>\n<p>{html.escape(rep.headline())}</p>\n"
        f'<div class="rec"><p><b>Recommended learning rate: {html.escape(lr)}</b></p>'
        f"<p>{html.escape(rec.reason)}</p></div>\n"
        f"<h2>Learning-rate comparison</h2>\n{html_table(rep.comparison)}\n"
        f"<h2>Plots</h2>\n{''.join(figures)}\n"
        f"<h2>Trials</h2>\n{html_table(rep.trials[_HTML_TRIAL_COLUMNS])}\n"
        '<p class="note">Every column of every trial: the CSV, JSON or Parquet export.</p>\n'
        "</body></html>\n"
    )


def render(result: Reportable, format: str = "table", *, bins: int | Sequence[float] | None = None) -> str:
    """The report of ``result`` as text: ``table``, ``md``, ``csv``, ``json`` or ``html``.

    ``csv`` is the trials table; the others hold the recommendation, the comparison and the
    trials (``html`` also the plots, embedded, when matplotlib is installed).
    """
    if format not in FORMATS or format == "parquet":
        raise ValueError(
            f"format: expected one of table, md, csv, json, html, got {format!r}"
            + (" (parquet is written to a file: use export())" if format == "parquet" else "")
        )
    rep = build(result, bins=bins)
    if format == "csv":
        text = csv_text(rep.trials)
    elif format == "md":
        text = _markdown(rep)
    elif format == "json":
        text = _json(rep)
    elif format == "html":
        text = _html(rep, result)
    else:
        text = _text(rep)
    return mask(text)  # a password in a stored message (from an older autolr, or the user's own)


def export(
    result: Reportable,
    path: str | Path,
    *,
    format: str | None = None,
    bins: int | Sequence[float] | None = None,
) -> Path:
    """Write the report of ``result`` to ``path`` (the user's explicit choice; it is replaced).

    The format comes from ``format`` or the suffix (``.csv``, ``.md``, ``.json``, ``.html``,
    ``.parquet``, ``.txt``). Parquet holds the trials table and needs pyarrow.
    """
    fmt = format_for(path, format)
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path: {str(path)!r} is a directory; expected a file name")
    if not path.parent.exists():
        raise ValueError(f"path: the directory {str(path.parent)!r} does not exist")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError(
                "format='parquet' needs pyarrow: pip install pyarrow (or export csv/json)"
            ) from None
        table = build(result, bins=bins).trials
        table.to_parquet(path, index=False)
        return path
    text = render(result, fmt, bins=bins)
    path.write_text(text, encoding="utf-8")
    return path
