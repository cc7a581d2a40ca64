"""Stability-aware recommendation of a learning rate, and per-curve figures for reports.

Two ways, by how the study was run:

* a study of autolr's own search (:mod:`autolr._search`): :func:`recommend_search`, the
  finished trial with the best median of its last three reports, with a reason that says what
  the search measured, how far its range grew, and whether the pick sits on an edge;
* a study of an Optuna sampler (TPE, random, grid, and every study of autolr 0.1):
  :func:`recommend`, the kernel-smoothed rank below.

Both are pure; ``Result.best_lr`` is the recommendation's ``lr`` and ``Result.explain()``
prints its ``reason``.

Why not the argmin of one run: near the edge of stability a single run at a high learning rate
can land low by luck while the same lr is much worse on average. So the choice is made on the
*shape* of the objective over ``log10(lr)``:

1. Every ``COMPLETE`` trial gets an effective value: its final value, or the median of its last
   three reports when that is worse (a curve that swung and happened to end low is judged by
   where it usually was).
2. Trials stopped as ``nan``, ``inf``, ``diverged`` or ``oscillating`` (or failed with a
   non-finite value) count as worse than every finished trial at their lr.
3. All of them are turned into ranks in ``[0, 1]`` (0 = best) and the ranks are averaged with a
   Gaussian kernel over ``log10(lr)`` (``bandwidth`` decades). A lone low value whose
   neighbours diverged gets a poor smoothed rank; a broad basin of good values a good one.
4. The completed trial with the best smoothed rank is recommended (ties: better effective
   value, then the lower lr, then the lower trial number).

Trials pruned as ``underperforming`` carry no final value and are left out of the fit.
`curve_stats` computes the per-curve figures (swings, late rise, steps to converge...) that
reports show.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from autolr import _search
from autolr._schema import UNSTABLE, counted, pending

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from autolr._schema import TrialView

_DEFAULT_BANDWIDTH = 0.1


@dataclass(frozen=True)
class TrialSummary:
    """What `recommend` needs to know about one trial.

    Args:
        number: The Optuna trial number.
        lr: The learning rate the trial ran with.
        state: ``"COMPLETE"``, ``"PRUNED"``, ``"FAIL"``, ``"RUNNING"`` or ``"WAITING"``.
        value: The final objective (``None`` unless ``COMPLETE``).
        stop_reason: ``autolr.stop_reason`` (``None`` when the trial was not stopped).
        curve: ``(step, value)`` intermediate reports, sorted by step.
    """

    number: int
    lr: float
    state: str
    value: float | None
    stop_reason: str | None = None
    curve: tuple[tuple[int, float], ...] = ()


def summaries(trials: Iterable[TrialView]) -> list[TrialSummary]:
    """What `recommend` reads of a study: the trials with an lr that count (see
    :func:`autolr._schema.counted`), and the unfinished ones, which only show in the reason.

    Example:
        >>> from autolr._schema import TrialView
        >>> lost = TrialView(number=1, trial_id=1, state="FAIL", lr=0.1, stop_reason="crashed")
        >>> [s.number for s in summaries([TrialView(number=0, trial_id=0, state="COMPLETE",
        ...                                         lr=0.01, value=0.5), lost])]
        [0]
    """
    return [
        TrialSummary(
            number=t.number,
            lr=t.lr,
            state=t.state,
            value=t.value,
            stop_reason=t.stop_reason,
            curve=t.curve,
        )
        for t in trials
        if t.lr is not None and (counted(t) or pending(t))
    ]


@dataclass(frozen=True)
class Recommendation:
    """The recommended learning rate and why.

    Args:
        lr: The recommended learning rate (``None`` when nothing usable finished).
        trial_number: The trial that ran at ``lr``.
        value: That trial's final objective.
        reason: One paragraph a person reads.
        raw_best_trial_number: The argmin (argmax) of the final values, for comparison.
        raw_best_lr: Its learning rate.
        raw_best_value: Its final value.
        candidates: Completed trial numbers, best smoothed rank first (for re-checking the top
            few with another seed).
        scores: ``(trial_number, smoothed_rank)`` for every completed trial, same order.
    """

    lr: float | None
    trial_number: int | None
    value: float | None
    reason: str
    raw_best_trial_number: int | None = None
    raw_best_lr: float | None = None
    raw_best_value: float | None = None
    candidates: tuple[int, ...] = ()
    scores: tuple[tuple[int, float], ...] = field(default=())


@dataclass(frozen=True)
class CurveStats:
    """Figures describing one trial's intermediate curve (caller's orientation).

    Args:
        n_reports: Number of finite reports.
        last_step: The last step reported (``None`` for an empty curve).
        best: Best finite value (min, or max when maximizing).
        final: Last finite value.
        tail_spread: ``(max - min) / |mean|`` of the last ``tail`` finite reports
            (0 when the mean is 0 and they agree; ``inf`` when the mean is 0 and they do not).
        swings: How many times the curve changed direction (up after down or down after up).
        late_rise: ``|final - best| / |best|`` (``inf`` if best is 0 and final differs), how far
            the curve ended from its best; 0 when it ended at its best.
        steps_to_converge: The first step whose value is within ``tol * |final|`` of the final
            value and stays there until the end (``None`` for an empty curve).
        non_finite: Whether the curve contains NaN or infinity.
    """

    n_reports: int
    last_step: int | None
    best: float | None
    final: float | None
    tail_spread: float
    swings: int
    late_rise: float
    steps_to_converge: int | None
    non_finite: bool


def curve_stats(
    curve: Sequence[tuple[int, float]],
    *,
    direction: str = "minimize",
    tail: int = 3,
    tol: float = 0.05,
) -> CurveStats:
    """Summarise one curve of ``(step, value)`` reports.

    Example:
        .. code-block:: python

            from autolr._recommend import curve_stats

            s = curve_stats([(1, 2.0), (2, 1.0), (3, 0.5), (4, 0.8), (5, 0.49)])
            s.swings             # 2 (down, up, down)
            s.late_rise          # 0.0 (ended at its best)
            s.steps_to_converge  # 5 (step 3 was within 5% of 0.49, but step 4 was not)

    Args:
        curve: ``(step, value)`` pairs sorted by step.
        direction: ``"minimize"`` or ``"maximize"``.
        tail: How many last reports `CurveStats.tail_spread` looks at (``>= 2``).
        tol: Relative tolerance for `CurveStats.steps_to_converge` (``>= 0``).
    """
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}.")
    if isinstance(tail, bool) or not isinstance(tail, int) or tail < 2:
        raise ValueError(f"tail must be an int >= 2, got {tail!r}.")
    if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and 0.0 <= tol < math.inf):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}.")
    sign = 1.0 if direction == "minimize" else -1.0
    points = [(int(s), float(v)) for s, v in curve]
    finite = [(s, v) for s, v in points if math.isfinite(v)]
    non_finite = len(finite) != len(points)
    if not finite:
        return CurveStats(
            n_reports=0,
            last_step=points[-1][0] if points else None,
            best=None,
            final=None,
            tail_spread=0.0,
            swings=0,
            late_rise=0.0,
            steps_to_converge=None,
            non_finite=non_finite,
        )
    values = [v for _, v in finite]
    best = min(values, key=lambda v: sign * v)
    final = values[-1]
    last = values[-tail:]
    mean = sum(last) / len(last)
    width = max(last) - min(last)
    tail_spread = _ratio(width, abs(mean))
    swings = 0
    last_sign = 0
    for a, b in zip(values, values[1:]):
        d = (b > a) - (b < a)
        if d:
            if last_sign and d != last_sign:
                swings += 1
            last_sign = d
    late_rise = _ratio(abs(final - best), abs(best))
    steps_to_converge = finite[-1][0]
    band = tol * abs(final)
    for s, v in reversed(finite):
        if abs(v - final) <= band:
            steps_to_converge = s
        else:
            break
    return CurveStats(
        n_reports=len(finite),
        last_step=points[-1][0],
        best=best,
        final=final,
        tail_spread=tail_spread,
        swings=swings,
        late_rise=late_rise,
        steps_to_converge=steps_to_converge,
        non_finite=non_finite,
    )


def _ratio(num: float, den: float) -> float:
    if num == 0.0:
        return 0.0
    if den == 0.0:
        return math.inf
    r = num / den
    return r if r == r else math.inf


def _effective(trial: TrialSummary, sign: float) -> float:
    """The final value, or the median of the last three reports when they swung (one rose
    after a fall) and that median is worse: a curve that only fell is judged by where it ended."""
    y = sign * float(trial.value)  # type: ignore[arg-type]
    if _swung(trial, sign):
        tail = [sign * float(v) for _, v in trial.curve[-3:]]
        med = sorted(tail)[1]
        if med > y:
            return med
    return y


def _swung(trial: TrialSummary, sign: float) -> bool:
    """Whether the last three reports went up somewhere (in the caller's orientation: worse)."""
    tail = [sign * float(v) for _, v in trial.curve[-3:]]
    if len(tail) < 3 or not all(math.isfinite(v) for v in tail):
        return False
    return any(b > a for a, b in zip(tail, tail[1:]))


def _is_unstable(trial: TrialSummary) -> bool:
    if trial.state in ("PRUNED", "FAIL") and trial.stop_reason in UNSTABLE:
        return True
    if trial.state == "FAIL" and trial.value is not None and not math.isfinite(trial.value):
        return True
    return False


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def recommend(
    trials: Sequence[TrialSummary],
    *,
    direction: str = "minimize",
    bandwidth: float = _DEFAULT_BANDWIDTH,
) -> Recommendation:
    """Recommend a learning rate that is good *and* stable, and say why.

    Example:
        .. code-block:: python

            from autolr._recommend import TrialSummary, recommend

            trials = [
                TrialSummary(0, 1e-3, "COMPLETE", 0.30),
                TrialSummary(1, 2e-3, "COMPLETE", 0.28),
                TrialSummary(2, 4e-3, "COMPLETE", 0.29),
                TrialSummary(3, 3e-2, "COMPLETE", 0.20),  # lucky, at the edge
                TrialSummary(4, 4e-2, "PRUNED", None, "diverged"),
                TrialSummary(5, 5e-2, "FAIL", None, "nan"),
            ]
            rec = recommend(trials)
            rec.lr                      # 0.002, not 0.03
            rec.raw_best_trial_number   # 3

    Args:
        trials: Every trial of the study (any state).
        direction: ``"minimize"`` or ``"maximize"``.
        bandwidth: ``> 0``; width (in decades of lr) of the Gaussian kernel over ``log10(lr)``.
    """
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}.")
    if (
        isinstance(bandwidth, bool)
        or not isinstance(bandwidth, (int, float))
        or not 0.0 < bandwidth < math.inf
    ):
        raise ValueError(f"bandwidth must be a finite number > 0, got {bandwidth!r}.")
    sign = 1.0 if direction == "minimize" else -1.0
    word = "lowest" if direction == "minimize" else "highest"

    def usable_lr(t: TrialSummary) -> bool:
        return isinstance(t.lr, (int, float)) and math.isfinite(t.lr) and t.lr > 0.0

    complete = [
        t
        for t in trials
        if t.state == "COMPLETE"
        and t.value is not None
        and math.isfinite(float(t.value))
        and usable_lr(t)
    ]
    unstable = [t for t in trials if _is_unstable(t) and usable_lr(t)]
    counts = _state_counts(trials)
    if not complete:
        if not trials:
            reason = "No trials have run yet, so there is no learning rate to recommend."
        else:
            reason = f"No trial completed with a finite value ({counts}), so none is recommended."
            if unstable:
                lowest = min(t.lr for t in unstable)
                reason += (
                    f" {len(unstable)} trial(s) were unstable (NaN, inf, diverged or oscillating)"
                    f" at lr >= {_fmt(lowest)}: search lower learning rates."
                )
        return Recommendation(lr=None, trial_number=None, value=None, reason=reason)

    raw = min(complete, key=lambda t: (sign * float(t.value), t.lr, t.number))  # type: ignore[arg-type]
    eff = {t.number: _effective(t, sign) for t in complete}

    # Ranks in [0, 1]: completed trials by effective value (ties share their mean rank),
    # unstable trials all worst.
    n_all = len(complete) + len(unstable)
    order = sorted(complete, key=lambda t: eff[t.number])
    rank: dict[int, float] = {}
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and eff[order[j + 1].number] == eff[order[i].number]:
            j += 1
        r = (i + j) / 2.0 / (n_all - 1) if n_all > 1 else 0.0
        for k in range(i, j + 1):
            rank[order[k].number] = r
        i = j + 1
    points = [(math.log10(t.lr), rank[t.number]) for t in complete]
    points += [(math.log10(t.lr), 1.0) for t in unstable]

    smoothed = _kernel_average(
        [math.log10(t.lr) for t in complete],
        [p[0] for p in points],
        [p[1] for p in points],
        bandwidth,
    )
    score = {t.number: v for t, v in zip(complete, smoothed)}
    ranked = sorted(complete, key=lambda t: (score[t.number], eff[t.number], t.lr, t.number))
    best = ranked[0]

    near = [
        t
        for t in complete
        if t is not best and abs(math.log10(t.lr) - math.log10(best.lr)) <= 2 * bandwidth
    ]
    near_bad = [t for t in unstable if abs(math.log10(t.lr) - math.log10(best.lr)) <= 2 * bandwidth]
    reason = (
        f"Recommended lr={_fmt(best.lr)} (trial #{best.number}, final value "
        f"{_fmt(float(best.value))}): the best rank after averaging over neighbouring learning "  # type: ignore[arg-type]
        f"rates (Gaussian kernel, {_fmt(bandwidth)} decades over log10 lr) among "
        f"{len(complete)} completed and {len(unstable)} unstable trial(s); "
        f"{len(near)} completed neighbour(s) within {_fmt(2 * bandwidth)} decades"
        + (f" and {len(near_bad)} unstable one(s)." if near_bad else ", none unstable.")
    )
    if len(complete) == 1:
        reason += " Only one trial completed, so nothing confirms it: run more trials."
    if raw.number != best.number:
        raw_x = math.log10(raw.lr)
        raw_bad = [t for t in unstable if abs(math.log10(t.lr) - raw_x) <= 2 * bandwidth]
        why = []
        if raw_bad:
            why.append(f"{len(raw_bad)} trial(s) within {_fmt(2 * bandwidth)} decades of it were unstable")
        if eff[raw.number] > sign * float(raw.value):  # type: ignore[arg-type]
            why.append("its last reports swung above its final value")
        if not why:
            why.append("its neighbours did worse, so its value looks like luck")
        if raw.lr == best.lr:
            reason += (
                f" Trial #{raw.number} ran the same lr and ended at {_fmt(float(raw.value))}."  # type: ignore[arg-type]
            )
        else:
            reason += (
                f" The {word} single value, trial #{raw.number} at lr={_fmt(raw.lr)} "
                f"({_fmt(float(raw.value))}), was not chosen: " + "; ".join(why) + "."  # type: ignore[arg-type]
            )
    at_best = [t for t in complete if t.lr == best.lr]
    if len(at_best) == 1:
        reason += " It rests on one training run (one seed) at that lr."
    lrs = [t.lr for t in trials if usable_lr(t)]
    if len(set(lrs)) >= 3 and best.lr in (min(lrs), max(lrs)):
        side = "highest" if best.lr == max(lrs) else "lowest"
        reason += (
            f" Warning: it is the {side} lr tried, on the edge of the range: the best lr may lie "
            f"{'above' if side == 'highest' else 'below'} it; widen the range on that side."
        )
    return Recommendation(
        lr=float(best.lr),
        trial_number=best.number,
        value=float(best.value),  # type: ignore[arg-type]
        reason=reason,
        raw_best_trial_number=raw.number,
        raw_best_lr=float(raw.lr),
        raw_best_value=float(raw.value),  # type: ignore[arg-type]
        candidates=tuple(t.number for t in ranked),
        scores=tuple((t.number, score[t.number]) for t in ranked),
    )


#: Kernel reach in bandwidths: a point farther away weighs below e^-50 (under float64's
#: resolution next to the target's own weight of 1, even summed over a million trials).
_REACH = 10.0
#: Up to this many (target, point) pairs the kernel is computed in float64.
_EXACT_PAIRS = 4_000_000


def _kernel_average(
    at: Sequence[float], xs: Sequence[float], ys: Sequence[float], bandwidth: float
) -> list[float]:
    """Gaussian-kernel weighted mean of ``ys`` (at ``xs``) evaluated at each of ``at``.

    Targets and points are sorted; each block of targets is weighed against the points within
    ``_REACH`` bandwidths only (the rest weigh nothing at float64 precision), so 20,000 trials
    take well under a second instead of O(n^2) exponentials. A target with no point in reach
    gets the exact mean over all points.
    """
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    targets = np.asarray(at, dtype=float)
    inv = 1.0 / (2.0 * bandwidth * bandwidth)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    t_order = np.argsort(targets, kind="stable")
    sorted_t = targets[t_order]
    reach = _REACH * bandwidth
    # Beyond a few thousand trials the exponentials dominate: float32 is ~30x faster and its
    # 1e-7 relative error is far below what moves a recommendation.
    dtype = np.float64 if len(x) * len(targets) <= _EXACT_PAIRS else np.float32
    y_typed: Any = y.astype(dtype)  # float32 or float64: numpy's einsum stubs take one
    out = np.empty(len(targets))
    block = max(1, min(512, 2_000_000 // max(1, len(x))))
    for start in range(0, len(sorted_t), block):
        tb = sorted_t[start : start + block]
        lo = int(np.searchsorted(x, tb[0] - reach, side="left"))
        hi = int(np.searchsorted(x, tb[-1] + reach, side="right"))
        w = (tb[:, None] - x[None, lo:hi]).astype(dtype, copy=False)
        np.multiply(w, w, out=w)
        w *= dtype(-inv)
        np.exp(w, out=w)
        # einsum, not BLAS: OpenBLAS's threads make a matrix-vector product 50x slower on a
        # busy machine, and the exponentials are the real work anyway
        weighted = np.einsum("ij,j->i", w, y_typed[lo:hi]).astype(np.float64)
        total = w.sum(axis=1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + block] = weighted / total
        for i in np.flatnonzero(~(total > 0)):  # nothing in reach: every point, exactly
            d = tb[i] - x
            wi = np.exp(-(d * d) * inv)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start + i] = np.float64(wi @ y) / np.float64(wi.sum())
    result = np.empty(len(targets))
    result[t_order] = out
    return result.tolist()


def _state_counts(trials: Sequence[TrialSummary]) -> str:
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"


# ----------------------------------------------------------------------------- autolr's search


def recommend_search(
    trials: Sequence[TrialView], *, direction: str, spec: _search.SearchSpec | None
) -> Recommendation:
    """The recommendation of a study run by autolr's search, and a reason built from its facts.

    Example:
        >>> from autolr._schema import TrialView
        >>> t = [TrialView(number=0, trial_id=0, state="COMPLETE", lr=0.01, value=0.2,
        ...                intermediate={0: 0.5, 1: 0.3, 2: 0.2}),
        ...      TrialView(number=1, trial_id=1, state="PRUNED", lr=0.1, stop_reason="diverged",
        ...                intermediate={0: 9.0, 1: 90.0})]
        >>> recommend_search(t, direction="minimize", spec=None).lr
        0.01
    """
    seen = _search.seen(trials, direction=direction)
    by_number = {t.number: t for t in trials}
    best = _search.pick(seen)
    done = sorted((s for s in seen if s.status == "complete"), key=lambda s: (s.tail(), s.number))
    counts = _state_counts([TrialSummary(t.number, t.lr or 0.0, t.state, t.value) for t in trials
                            if t.lr is not None and (counted(t) or pending(t))])
    if best is None:
        reason = "No trial of the search finished with a finite value"
        reason += f" ({counts})." if trials else " (no trials yet)."
        unstable = [s for s in seen if s.status == "unstable"]
        if unstable and len(unstable) == len([s for s in seen if s.status != "lost"]):
            reason += " Every learning rate tried was unstable: try lower ones (lr=(low, high))."
        return Recommendation(lr=None, trial_number=None, value=None, reason=reason)
    chosen = by_number[best.number]
    raw = min(done, key=lambda s: (s.final if s.final is not None else math.inf, s.number))
    raw_view = by_number[raw.number]
    sign = 1.0 if direction == "minimize" else -1.0
    lr = float(10.0**best.x) if chosen.lr is None else float(chosen.lr)
    measured = _search.measured_range(seen)
    parts = [
        f"Recommended lr={_fmt(lr)} (trial #{best.number}, final value "
        f"{_fmt(float(chosen.value or 0.0))}).",
        f"autolr's search measured {len({s.x for s in seen if s.status != 'lost'})} learning rates"
        + (f" from {_fmt(10 ** measured[0])} to {_fmt(10 ** measured[1])}" if measured else "")
        + f" ({counts}) and ran the most promising to the end;",
    ]
    if len(done) > 1:
        others = ", ".join(
            f"#{s.number} at lr={_fmt(10 ** s.x)}: {_fmt(sign * s.tail())}" for s in done[1:3]
        )
        parts.append(
            f"this one had the best median of its last {_search.TAIL} reports "
            f"({_fmt(sign * best.tail())}; {others})."
        )
    else:
        parts.append("it is the only trial that ran to the end.")
    parts.append("Each value is one training run (one seed).")
    parts += _range_notes(spec, seen, best)
    if raw.number != best.number and raw.final is not None:
        parts.append(
            f"Trial #{raw.number} at lr={_fmt(10 ** raw.x)} ended lower on its very last report "
            f"({_fmt(float(raw_view.value or 0.0))}), but its last {_search.TAIL} reports were "
            "worse taken together."
        )
    return Recommendation(
        lr=lr,
        trial_number=best.number,
        value=None if chosen.value is None else float(chosen.value),
        reason=" ".join(parts),
        raw_best_trial_number=raw.number,
        raw_best_lr=None if raw_view.lr is None else float(raw_view.lr),
        raw_best_value=None if raw_view.value is None else float(raw_view.value),
        candidates=tuple(s.number for s in done),
        scores=tuple((s.number, sign * s.tail()) for s in done),
    )


def _range_notes(
    spec: _search.SearchSpec | None, seen: Sequence[_search.Seen], best: _search.Seen
) -> list[str]:
    """What the reason says about the range: grown, given, and a pick on its edge."""
    notes: list[str] = []
    measured = _search.measured_range(seen)
    if spec is None or measured is None:
        return notes
    lo, hi = measured
    if not spec.hard and (lo < spec.low - 1e-9 or hi > spec.high + 1e-9):
        grown = []
        if hi > spec.high + 1e-9:
            grown.append(f"up to {_fmt(10 ** hi)}")
        if lo < spec.low - 1e-9:
            grown.append(f"down to {_fmt(10 ** lo)}")
        notes.append(
            f"The range grew {' and '.join(grown)} (it started at {_fmt(10 ** spec.low)}.."
            f"{_fmt(10 ** spec.high)}) because the best learning rates sat on its edge."
        )
    edge = edge_of(spec, seen, best)
    if edge is not None:
        notes.append(edge)
    return notes


def edge_of(
    spec: _search.SearchSpec, seen: Sequence[_search.Seen], best: _search.Seen
) -> str | None:
    """A warning when the pick is on the edge of what the search could measure, else None."""
    measured = _search.measured_range(seen)
    if measured is None:
        return None
    lo, hi = measured
    limit_lo, limit_hi = spec.limits
    if best.x >= hi - 1e-9 and hi >= limit_hi - 1e-9:
        where = "the top of the range you gave" if spec.hard else "autolr's upper limit"
        return (
            f"Warning: the pick is at {where} (lr={_fmt(10 ** hi)}); the best lr may be higher: "
            f"widen the range upward, e.g. lr=({_fmt(10 ** spec.limits[0])}, "
            f"{_fmt(10 ** (hi + 1))})."
        )
    if best.x <= lo + 1e-9 and lo <= limit_lo + 1e-9:
        where = "the bottom of the range you gave" if spec.hard else "autolr's lower limit"
        return (
            f"Warning: the pick is at {where} (lr={_fmt(10 ** lo)}); the best lr may be lower: "
            f"widen the range downward, e.g. lr=({_fmt(10 ** (lo - 1))}, "
            f"{_fmt(10 ** spec.limits[1])})."
        )
    return None
