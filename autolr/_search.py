"""autolr's learning-rate search: coarse-to-fine successive halving over log10(lr), pure logic.

The learning rate is one dimension, and the final loss against ``log10(lr)`` is close to
unimodal with a cliff on the high side. The search exploits that shape with few full runs:

1. **Bracket** (rung 0): a grid half a decade apart, two decades either side of the centre of
   the anchors (``1e-3`` and the train function's own default lr, both always on it), each run
   for :data:`FIRST_BUDGET` reports and paused. While the best of them sits on an edge of the
   grid, the grid **grows** by a decade on that side (up to ``1e-7 .. 1e2``, or never past a
   range the user gave).
2. **Halve** (rung 1): the best :data:`KEEP` of them, plus the next lower learning rate (a lower
   lr is behind early and ahead late, so it gets a fair second look), resume to a quarter
   (:data:`HALF`) of a full run. The run's length is learned from the first trial that finishes: when it is not known
   yet, the best survivor runs to its end first.
3. **Finish**: the best :data:`FINISH` at that point resume to the end. The recommendation is
   the finished trial with the best median of its last three reports (:func:`pick`): less
   noisy than the last report alone.

Every paused trial that is not promoted is stopped as ``underperforming``. A train function
that reports nothing (or at most twice) gets **full runs** instead: a grid a decade apart,
grown the same way, then half a decade either side of the best (:func:`decide_full_runs`).

Everything here is decided from the trials observed so far (:class:`Seen`), so the same call
gives the same answer after a crash, on resume, and in every worker: a point whose trial was
lost keeps the reports it made (they are facts about its lr), and what it still owed is run
again. No Optuna, no I/O (trials arrive as :class:`~autolr._schema.TrialView`);
:mod:`autolr._search_loop` runs it. Every default
was chosen on the tuning half of ``benchmarks/`` (``docs/stability.md``).

Example:
    >>> spec = SearchSpec.build(default_lr=None)
    >>> [round(10 ** x, 6) for x in spec.grid()][:3]
    [1e-05, 3.2e-05, 0.0001]
    >>> decide(spec, [], length=None)[0]
    Begin(x=-3.0, budget=2)
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from autolr._peers import PeerScale, made_no_progress
from autolr._schema import NOT_ABOUT_LR, UNSTABLE, TrialView

#: log10 of the classic default learning rate (Adam's 1e-3): always measured.
DEFAULT_X = -3.0
#: Decades either side of the anchors' centre that the first grid spans.
HALF_WIDTH = 2.0
#: Decades between two points of the first grid.
SPACING = 0.5
#: How far the grid may grow (log10): 1e-7 .. 1e2.
LIMITS = (-7.0, 2.0)
#: Points added on an edge per growth (a decade).
GROW_POINTS = 2
#: Reports every point of the first grid runs before the first comparison.
FIRST_BUDGET = 2
#: The second comparison, as a share of a full run. (Chosen with :data:`KEEP` on the tuning half:
#: more survivors compared sooner beat fewer compared later, 81% against 74% of hits at the same
#: cost; ``python -m benchmarks.search_sweep``, docs/stability.md.)
HALF = 0.25
#: Survivors of the first comparison (plus the next lower learning rate).
KEEP = 5
#: Trials that run to the end.
FINISH = 2
#: Reports a run must have for halving to pay; below it, every trial is a full run.
MIN_REPORTS = 3
#: Reports whose median judges a finished trial.
TAIL = 3

INF = math.inf
#: The value of the study attribute ``autolr.search`` on a study run by this search.
SEARCH_NAME = "halving"

#: How a trial looks to the search.
#: ``paused``: parked by this worker, can be resumed; ``busy``: running elsewhere (or queued);
#: ``complete``: returned a value; ``unstable``: NaN, inf, diverged, oscillating;
#: ``failed``: raised; ``stopped``: stopped by the search; ``lost``: its process died or was
#: interrupted (what it reported still counts; a point lost twice with nothing to show is dropped).
Status = Literal["paused", "busy", "complete", "unstable", "failed", "stopped", "lost"]
ENDED = ("complete", "unstable", "failed", "stopped", "lost")


def key(x: float) -> float:
    """A log10 learning rate as the search compares them (micro-decade resolution)."""
    return round(x, 6)


@dataclass(frozen=True)
class Seen:
    """One trial as the search sees it. ``values`` are oriented (lower is better; a maximized
    metric is negated) and non-finite values read ``inf``; ``final`` is a complete trial's."""

    number: int
    x: float
    status: Status
    values: tuple[float, ...] = ()
    final: float | None = None

    def value_at(self, budget: int) -> float | None:
        """The value after ``budget`` reports: ``inf`` when it blew up or failed before, the
        final value when it ended sooner, None when it has not got there yet."""
        vals = self.values
        if len(vals) >= budget:
            head = vals[:budget]
            return head[-1] if all(math.isfinite(v) for v in head) else INF
        if self.status in ("unstable", "failed"):
            return INF
        if self.status == "complete":
            if self.final is not None and math.isfinite(self.final):
                return self.final
            return vals[-1] if vals else INF
        return None

    def tail(self) -> float:
        """The median of the last :data:`TAIL` reports (the final value without reports)."""
        vals = self.values[-TAIL:]
        if not vals or not all(math.isfinite(v) for v in vals):
            return self.final if self.final is not None else INF
        return sorted(vals)[(len(vals) - 1) // 2]


# ----------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Begin:
    """Start a trial at ``10 ** x`` and run it until ``budget`` reports (None: to the end)."""

    x: float
    budget: int | None


@dataclass(frozen=True)
class Resume:
    """Resume this worker's paused trial ``number`` until ``budget`` reports (None: the end)."""

    number: int
    budget: int | None


@dataclass(frozen=True)
class Halt:
    """Stop this worker's paused trial ``number``: it was not promoted."""

    number: int


@dataclass(frozen=True)
class Hold:
    """What is needed next runs elsewhere: look again in a moment."""


@dataclass(frozen=True)
class Done:
    """The search is over."""


Action: TypeAlias = "Begin | Resume | Halt | Hold | Done"


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class SearchSpec:
    """Where the search starts and how far it may go (log10 learning rates).

    Args:
        anchors: learning rates always measured first: 1e-3 and the function's default.
        low, high: the first grid's ends.
        limits: how far growth may take the grid (the user's own range when ``hard``).
        hard: the user gave the range: no growth, and a pick on its edge is a warning.
        max_trials: at most this many points are ever started (``n_trials``).
        full_runs: never pause or halve: every trial runs to its end (``pruner=False``).
    """

    anchors: tuple[float, ...]
    low: float
    high: float
    limits: tuple[float, float] = LIMITS
    hard: bool = False
    max_trials: int | None = None
    full_runs: bool = False

    @classmethod
    def build(
        cls,
        *,
        default_lr: float | None,
        lr_range: tuple[float, float] | None = None,
        max_trials: int | None = None,
        full_runs: bool = False,
    ) -> SearchSpec:
        """The spec for a study: anchored on 1e-3 and ``default_lr``; ``lr_range`` is hard.

        Example:
            >>> s = SearchSpec.build(default_lr=1.0)
            >>> s.anchors, s.low, s.high
            ((-3.0, 0.0), -3.5, 0.5)
        """
        if lr_range is not None:
            lo, hi = (key(math.log10(v)) for v in lr_range)
            anchors = tuple(a for a in _anchors(default_lr) if lo <= a <= hi)
            return cls(anchors, lo, hi, (lo, hi), True, max_trials, full_runs)
        anchors = _anchors(default_lr)
        centre = (min(anchors) + max(anchors)) / 2
        half = max(HALF_WIDTH, (max(anchors) - min(anchors)) / 2 + SPACING)
        lo, hi = LIMITS
        return cls(
            anchors, key(max(lo, centre - half)), key(min(hi, centre + half)), LIMITS, False,
            max_trials, full_runs,
        )

    def grid(self, spacing: float = SPACING) -> list[float]:
        """The first grid: points ``spacing`` apart through 1e-3, within ``low .. high``, the
        anchors included. A hard range narrower than two steps gets its ends and middle."""
        lo, hi = self.low, self.high
        if self.hard and hi - lo < 2 * spacing:
            xs = {lo, key((lo + hi) / 2), hi}
        else:
            first = math.ceil((lo - DEFAULT_X) / spacing - 1e-9)
            last = math.floor((hi - DEFAULT_X) / spacing + 1e-9)
            xs = {key(DEFAULT_X + spacing * k) for k in range(first, last + 1)}
        xs |= {a for a in self.anchors if all(abs(a - x) > spacing / 4 for x in xs)}
        return sorted(xs)

    def order(self, xs: Sequence[float]) -> list[float]:
        """``xs`` in the order they are started: the anchors first, then outwards."""
        centre = (min(self.anchors) + max(self.anchors)) / 2 if self.anchors else 0.0
        return sorted(xs, key=lambda x: (x not in self.anchors, abs(x - centre), -x))


def _anchors(default_lr: float | None) -> tuple[float, ...]:
    xs = {DEFAULT_X}
    if default_lr is not None and default_lr > 0 and math.isfinite(default_lr):
        x = key(math.log10(default_lr))
        if LIMITS[0] <= x <= LIMITS[1]:
            xs.add(x)
    return tuple(sorted(xs))


class _Board:
    """The trials by learning rate, and the actions a decision collects."""

    def __init__(self, spec: SearchSpec, seen: Sequence[Seen], length: int | None) -> None:
        self.spec = spec
        self.length = length
        self.by_x: dict[float, list[Seen]] = {}
        for s in seen:
            self.by_x.setdefault(key(s.x), []).append(s)
        self.actions: list[Action] = []
        self.pending = False
        self.started = len(self.by_x)

    def rep(self, x: float) -> Seen | None:
        """The trial that speaks for ``x``: one still going, else the one that got furthest (a
        lost trial speaks for the reports it made, like a stopped one)."""
        runs = self.by_x.get(key(x), ())
        if not runs:
            return None
        return max(runs, key=lambda s: (s.status != "lost", len(s.values),
                                        s.status == "complete", -s.number))

    def lost_twice(self, x: float) -> bool:
        """Two trials of ``x`` died before reporting anything: the lr is left alone."""
        runs = self.by_x.get(key(x), ())
        return sum(s.status == "lost" and not s.values for s in runs) >= 2

    def value(self, x: float, budget: int | None) -> float | None:
        """``x``'s value at ``budget`` reports (None: at its end), None when not there yet."""
        s = self.rep(x)
        if s is None:
            return None
        if self.lost_twice(x) and s.status == "lost" and not s.values:
            return INF
        if budget is None:
            if s.status == "complete":
                return s.tail()
            return INF if s.status in ("unstable", "failed") else None
        return s.value_at(budget)

    def can_start(self) -> bool:
        cap = self.spec.max_trials
        return cap is None or self.started < cap

    def need(self, x: float, budget: int | None) -> None:
        """Make sure ``x`` gets ``budget`` reports (None: its end); collect what that takes."""
        if budget is not None and self.length is not None and budget >= self.length:
            budget = None  # a trial at its last report is let finish, never paused there
        s = self.rep(x)
        if s is not None and s.status == "lost" and not s.values and self.lost_twice(x):
            return  # a learning rate that killed its process twice is left alone
        if s is None or (s.status in ("stopped", "lost") and self.value(x, budget) is None):
            # never started, or stopped short of what it needs now: a new trial runs it (unless
            # the study's n_trials is used up: then the search goes on without this point)
            if self.can_start():
                self.actions.append(Begin(key(x), budget))
                self.started += 1
                self.pending = True
            return
        if s.status in ENDED:
            return
        if budget is not None and len(s.values) >= budget:
            return
        self.pending = True
        if s.status == "paused":
            self.actions.append(Resume(s.number, budget))

    def halt_others(self, keep: set[float], among: Sequence[float]) -> None:
        for x in among:
            s = self.rep(x)
            if x not in keep and s is not None and s.status == "paused":
                self.actions.append(Halt(s.number))

    def ranked(self, xs: Sequence[float], budget: int | None) -> list[float]:
        """The points of ``xs`` with a finite value at ``budget``, best first (ties: the lower
        lr, the safer one; a plateau of equal values never pulls the range upwards)."""
        vals = {x: self.value(x, budget) for x in xs}
        ok = [x for x in xs if (v := vals[x]) is not None and v < INF]
        return sorted(ok, key=lambda x: (vals[x], x))

    def finish_the_finished(self) -> None:
        """Paused trials that already made a full run's reports are let return (no cost)."""
        if self.length is None:
            return
        for runs in self.by_x.values():
            for s in runs:
                if s.status == "paused" and len(s.values) >= self.length:
                    self.actions.append(Resume(s.number, None))
                    self.pending = True

    def result(self) -> list[Action]:
        if self.actions:
            return self.actions
        return [Hold()] if self.pending else [Done()]


def decide(spec: SearchSpec, seen: Sequence[Seen], *, length: int | None) -> list[Action]:
    """What to do next: every action that can be taken now, halts first; ``[Hold()]`` when the
    next step waits for trials running elsewhere, ``[Done()]`` when the search is over.

    Args:
        spec: where the search starts and how far it may go.
        seen: every trial of the study.
        length: reports of a full run, once a trial has finished (None before).
    """
    if spec.full_runs or (length is not None and length < MIN_REPORTS):
        return decide_full_runs(spec, seen, length=length)
    board = _Board(spec, seen, length)
    board.finish_the_finished()
    if board.pending:
        return board.result()
    b0 = FIRST_BUDGET
    xs = _bracket(board, b0)
    if board.pending:
        return board.result()
    order = board.ranked(xs, b0)
    survivors = order[:KEEP]
    if not survivors:
        return [Done()]
    below = [x for x in order if x < min(survivors)]
    if below:
        survivors.append(max(below))
    board.halt_others(set(survivors), xs)
    if length is None:
        # The run's length is not known yet: the best survivor still going runs to its end.
        for x in survivors:
            s = board.rep(x)
            if s is not None and s.status in ("paused", "busy"):
                board.need(x, None)
                return board.result()
        length = max((len(s.values) for s in seen), default=b0)
    b1 = max(b0 + 1, math.ceil(length * HALF))
    for x in survivors:
        board.need(x, b1)
    if board.pending:
        return board.result()
    finalists = board.ranked(survivors, b1)[:FINISH]
    board.halt_others(set(finalists), survivors)
    for x in finalists:
        board.need(x, None)
    return board.result()


def _bracket(board: _Board, budget: int) -> list[float]:
    """Rung 0: the first grid at ``budget`` reports, grown while its best is on an edge."""
    spec = board.spec
    xs = spec.grid()
    lo, hi = spec.limits
    while True:
        for x in spec.order(xs):
            board.need(x, budget)
        if board.pending or spec.hard:
            return xs
        ranked = board.ranked(xs, budget)
        if not ranked:
            return xs
        best = ranked[0]
        step = SPACING if best == xs[-1] else -SPACING if best == xs[0] else 0.0
        new = [key(best + step * k) for k in range(1, GROW_POINTS + 1) if step]
        new = [x for x in new if lo - 1e-9 <= x <= hi + 1e-9 and x not in xs]
        if not new or not board.can_start():
            return xs
        xs = sorted(xs + new)


def decide_full_runs(
    spec: SearchSpec, seen: Sequence[Seen], *, length: int | None = None
) -> list[Action]:
    """The search when every trial is a whole run: a grid a decade apart through the anchors,
    grown a decade at a time while its best is on an edge, then half a decade either side of
    the best. (Trials paused before the search learned that runs are this short are let finish
    when they are at their end, and halted otherwise.)"""
    board = _Board(spec, seen, length)
    board.finish_the_finished()
    if board.pending:
        return board.result()
    lo, hi = spec.limits
    xs = spec.grid(spacing=1.0)
    while True:
        for x in spec.order(xs):
            board.need(x, None)
        if board.pending:
            return board.result()
        ranked = board.ranked(xs, None)
        if not ranked:
            return [Done()]
        best = ranked[0]
        step = 1.0 if best == xs[-1] else -1.0 if best == xs[0] else 0.0
        new = key(best + step)
        if spec.hard or not step or not lo - 1e-9 <= new <= hi + 1e-9 or not board.can_start():
            break
        xs = sorted(xs + [new])
    best = board.ranked(xs, None)[0]
    refine = [x for x in (key(best - 0.5), key(best + 0.5)) if lo - 1e-9 <= x <= hi + 1e-9]
    board.halt_others(set(xs) | set(refine), list(board.by_x))
    for x in refine:
        board.need(x, None)
    return board.result()


def pick(seen: Sequence[Seen]) -> Seen | None:
    """The recommended trial: the finished one with the best median of its last reports."""
    done = [s for s in seen if s.status == "complete" and math.isfinite(s.tail())]
    if not done:
        return None
    return min(done, key=lambda s: (s.tail(), s.number))


def measured_range(seen: Sequence[Seen]) -> tuple[float, float] | None:
    """The lowest and highest log10 lr the search measured (lost trials with no report aside)."""
    xs = [s.x for s in seen if s.status != "lost" or s.values]
    return (min(xs), max(xs)) if xs else None


def expected_trials(spec: SearchSpec) -> int:
    """About how many trials the search runs (for a progress bar): its first grid and three."""
    n = len(spec.grid(spacing=1.0 if spec.full_runs else SPACING)) + (2 if spec.full_runs else 3)
    return min(n, spec.max_trials) if spec.max_trials is not None else n


def seen(
    trials: Sequence[TrialView], *, direction: str, paused: Collection[int] = ()
) -> list[Seen]:
    """The study's trials as the search sees them; ``paused``: this worker's parked trials.

    Trials without a learning rate (not autolr's) are left out.
    """
    sign = 1.0 if direction == "minimize" else -1.0

    def oriented(v: float) -> float:
        o = sign * float(v)
        return o if math.isfinite(o) else INF

    out = []
    for t in trials:
        if t.lr is None or not t.lr > 0:
            continue
        values = tuple(oriented(v) for _, v in t.curve)
        final = None if t.value is None else oriented(t.value)
        out.append(Seen(t.number, key(math.log10(t.lr)), _status(t, paused), values, final))
    return out


def _status(t: TrialView, paused: Collection[int]) -> Status:
    if t.state in ("RUNNING", "WAITING"):
        return "paused" if t.number in paused else "busy"
    if t.state == "COMPLETE":
        return "complete"
    if t.stop_reason in UNSTABLE:
        return "unstable"
    if t.state == "PRUNED":
        return "stopped"
    return "lost" if t.stop_reason in NOT_ABOUT_LR else "failed"


def run_length(trials: Sequence[TrialView]) -> int | None:
    """Reports in a full run: the most any finished (COMPLETE) trial made; None before one."""
    lengths = [len(t.intermediate) for t in trials if t.state == "COMPLETE"]
    return max(lengths) if lengths else None


def is_done(spec: SearchSpec, trials: Sequence[TrialView], *, direction: str) -> bool:
    """Whether the search on these trials is over."""
    actions = decide(spec, seen(trials, direction=direction), length=run_length(trials))
    return any(isinstance(a, Done) for a in actions)


def spec_to_json(spec: SearchSpec) -> str:
    """The plan as stored on its study (``autolr.search_spec``)."""
    return json.dumps(
        {"anchors": list(spec.anchors), "low": spec.low, "high": spec.high,
         "limits": list(spec.limits), "hard": spec.hard}
    )


def spec_from_json(
    stored: object, *, max_trials: int | None = None, full_runs: bool = False
) -> SearchSpec | None:
    """The plan stored on a study (with this run's cap and switch), None when it is not one.

    Example:
        >>> s = SearchSpec.build(default_lr=0.1)
        >>> spec_from_json(spec_to_json(s)) == s
        True
    """
    try:
        data = json.loads(str(stored))
        return SearchSpec(
            anchors=tuple(float(a) for a in data["anchors"]),
            low=float(data["low"]),
            high=float(data["high"]),
            limits=(float(data["limits"][0]), float(data["limits"][1])),
            hard=bool(data["hard"]),
            max_trials=max_trials,
            full_runs=full_runs,
        )
    except (ValueError, KeyError, TypeError, IndexError):
        return None


#: A halted trial whose reports rose this much above its first one diverged.
RISE = 0.1


def halt_reason(seen: Sequence[Seen], number: int) -> str:
    """Why the search stops trial ``number``, from the facts: ``diverged`` when its loss rose
    above where it started or sits ten times above every healthy trial's at the same report
    (:mod:`autolr._peers`); ``no_progress`` when it ends where it started; else
    ``underperforming`` (it was merely behind).

    Example:
        >>> a = Seen(0, -3.0, "paused", (1.0, 0.5))
        >>> b = Seen(1, 1.0, "paused", (50.0, 400.0))
        >>> c = Seen(2, -6.0, "paused", (2.30, 2.299))
        >>> halt_reason([a, b, c], 1), halt_reason([a, b, c], 2), halt_reason([a, b, c], 0)
        ('diverged', 'no_progress', 'underperforming')
    """
    me = next(s for s in seen if s.number == number)
    vals = list(me.values)
    if not vals or not all(math.isfinite(v) for v in vals):
        return "diverged" if vals else "underperforming"
    if len(vals) >= 2 and vals[-1] - vals[0] > RISE * abs(vals[0]):
        return "diverged"
    healthy = [(s.x, s.values) for s in seen if s.number != number and s.status != "unstable"
               and s.values and all(math.isfinite(v) for v in s.values)]
    scale = PeerScale.of(healthy, lr=me.x, direction="minimize")
    if any(scale.judge(v) for v in vals) or (scale.strikes and vals[-1] > 0 and len(vals) == 1):
        return "diverged"
    if made_no_progress(vals, untrained=scale.untrained):
        return "no_progress"
    return "underperforming"
