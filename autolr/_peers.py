"""A trial judged against the healthy trials of its study: exploded, or learning nothing.

The stability monitor (:mod:`autolr._stability`) judges a trial by its own curve only, so a
trial that is already exploded at its first report (a loss of 1e4 where the others are at 2)
has nothing to rise from. :class:`PeerScale` is built once per trial from the curves the runner
already read (no storage round trip) and compares each report with what the study's healthy
trials *at lower learning rates* reported at the same report (instability comes with a higher
lr; a lower lr is expected to start slower, so it is never judged against faster ones):

* ``diverged``: :data:`FAR` times the worst healthy value at that report (or, past their
  length, at their last one), or more than :data:`MARGIN` above the untrained level the study
  has seen (the first report of its lowest healthy lr, which has barely moved the model: worse
  than not training), on :data:`PATIENCE` reports in a row, so a trial is stopped within three reports
  even while its own curve falls. Losses only (positive values): a maximized metric (an
  accuracy) does not explode; it gets stuck, which is ``no_progress``;
* with no healthy trial at a lower lr yet there is nothing to compare with, and the rule says
  nothing (:attr:`PeerScale.references` is 0).

:func:`made_no_progress` is the rule for a trial that ends where it started. Pure: numbers in,
a reason out.

Example:
    >>> scale = PeerScale.of([(1e-3, [2.3, 1.0, 0.5])], lr=1.0, direction="minimize")
    >>> [scale.judge(v) for v in (5e3, 4e3)]
    [None, 'diverged']
    >>> PeerScale.of([(1e-3, [2.3, 1.0, 0.5])], lr=1e-5, direction="minimize").references
    0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: A report this many times the worst healthy report at the same point is an explosion.
FAR = 10.0
#: A report this far above the untrained level (as a share of it) is worse than not training.
MARGIN = 0.1
#: Explosive reports in a row before the trial is stopped as diverged.
PATIENCE = 2
#: A trial whose last report is within this share of its first made no progress.
FLAT = 0.01


def made_no_progress(
    values: Sequence[float], *, direction: str = "minimize", untrained: float | None = None
) -> bool:
    """Whether a curve ended within :data:`FLAT` of its first report (and not better than it by
    more), or, for a loss, no lower than the study's ``untrained`` level: the model learned
    nothing at this lr (yet). Needs two finite reports.

    Example:
        >>> made_no_progress([2.303, 2.302, 2.303]), made_no_progress([2.3, 1.1])
        (True, False)
        >>> made_no_progress([2.9, 2.4], untrained=2.3)
        True
    """
    finite = [float(v) for v in values if math.isfinite(v)]
    if len(finite) < 2 or len(finite) != len(values):
        return False
    sign = 1.0 if direction == "minimize" else -1.0
    first, last = sign * finite[0], sign * finite[-1]
    if untrained is not None and direction == "minimize" and last >= untrained > 0:
        return True
    return first - last <= FLAT * abs(first)


@dataclass
class PeerScale:
    """The worst healthy value at each report, and the trial's strikes against it."""

    worst: tuple[float, ...] = ()
    untrained: float | None = None
    references: int = 0
    strikes: int = field(default=0)
    _n: int = field(default=0)

    @classmethod
    def of(
        cls, healthy: Iterable[tuple[float, Sequence[float]]], *, lr: float, direction: str
    ) -> PeerScale:
        """For a trial at ``lr``, from ``(lr, curve)`` of the study's healthy trials (report
        values, in order); only those at a lower lr are references."""
        if direction != "minimize":
            return cls()
        curves = [(x, [float(v) for v in c]) for x, c in healthy if x < lr]
        curves = [(x, c) for x, c in curves if c and all(math.isfinite(v) and v > 0 for v in c)]
        if not curves:
            return cls()
        length = max(len(c) for _, c in curves)
        worst = tuple(max(c[min(i, len(c) - 1)] for _, c in curves) for i in range(length))
        lowest = min(curves, key=lambda item: item[0])[1]
        return cls(worst=worst, untrained=lowest[0], references=len(curves))

    def judge(self, value: float) -> str | None:
        """Take the trial's next report: ``"diverged"`` when it exploded, else None."""
        i = self._n
        self._n += 1
        if not self.worst or not math.isfinite(value):
            return None
        ref = self.worst[min(i, len(self.worst) - 1)]
        above = self.untrained is not None and value > (1 + MARGIN) * self.untrained
        if value > FAR * ref or above:
            self.strikes += 1
            if self.strikes >= PATIENCE:
                return "diverged"
        else:
            self.strikes = 0
        return None
