"""The per-trial context and :func:`autolr.report`: the hot path, and nothing else.

A :class:`TrialContext` lives for one trial in a :class:`contextvars.ContextVar`, so the user's
train function can call :func:`report` without being handed anything. Each report is checked,
kept in memory, and handed to the context's :class:`Judge`, the one hook where a decision is
taken on every report (today: stop the trial, see :mod:`autolr._stopping`). Values reach storage
in batches (every few seconds and at the end of the trial, :mod:`autolr._intermediate`), so a
report costs microseconds instead of a database transaction, while optuna-dashboard still sees
the curves grow. The first report of a trial is written at once; a process killed between two
writes loses at most the last ``FLUSH_INTERVAL_S`` seconds of reports of its running trial.
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Real
from typing import Protocol

import numpy as np
import optuna

from autolr import _intermediate
from autolr._schema import StopReason

#: Seconds between two writes of buffered reports to storage while a trial runs.
FLUSH_INTERVAL_S = 2.0


class TrialPruned(optuna.TrialPruned):
    """Raised by :func:`autolr.report` when autolr stops a trial; autolr catches it.

    ``reason`` is one of ``nan``, ``inf``, ``diverged``, ``oscillating``, ``underperforming``.
    """

    def __init__(self, reason: str, step: int) -> None:
        super().__init__(f"trial stopped at step {step}: {reason}")
        self.reason = reason
        self.step = step


class Judge(Protocol):
    """The hook called on every report: returns why the trial stops now, or None to go on."""

    def __call__(self, ctx: TrialContext, step: int, value: float) -> StopReason | None: ...


class Gate(Protocol):
    """The hook called after every report the judge let pass, with the number of reports so far
    and a way to write them: autolr's search parks the trial there when its budget is reached
    (:meth:`autolr._pause.PausableCall.checkpoint`)."""

    def __call__(self, reports: int, before_park: Callable[[], None]) -> None: ...


def as_number(value: object, *, what: str) -> float:
    """``float(value)`` for real numbers, numpy scalars and one-element tensors; else TypeError."""
    if isinstance(value, bool):
        raise TypeError(f"{what}: expected a real number, got bool {value!r}")
    if isinstance(value, Real):
        try:
            return float(value)
        except OverflowError:  # an int past float's range (10**400): as large as inf
            return math.inf if value > 0 else -math.inf  # type: ignore[operator]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) in ((), (1,), [1]):
        try:
            out = item()
        except (TypeError, ValueError, RuntimeError):
            out = None
        if isinstance(out, Real) and not isinstance(out, bool):
            return float(out)
    shown = type(value).__name__ if value is not None else "None"
    raise TypeError(
        f"{what}: expected a real number (float, int, numpy or one-element tensor), got {shown}"
    )


#: The largest step a report may have: PostgreSQL's and MySQL's INTEGER column (SQLite: 2**63-1).
MAX_STEP = 2**31 - 1


def _as_step(step: object, last: int | None) -> int:
    """The step of a report: ``None`` is the next one; an int >= 0 above the last one."""
    if step is None:
        return last + 1 if last is not None else 0
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(
            f"autolr.report(step): expected an int >= 0 or None, got {type(step).__name__}"
        )
    step = int(step)
    if step < 0 or step > MAX_STEP:
        raise ValueError(
            f"autolr.report(step): expected an int from 0 to {MAX_STEP} (2**31 - 1, what every "
            f"storage holds), got {step}"
        )
    if last is not None and step <= last:
        raise ValueError(f"autolr.report(step): steps must increase; got {step} after {last}")
    return step


class TrialContext:
    """What autolr knows about the running trial: its reports, and who judges them."""

    def __init__(
        self,
        trial: optuna.Trial,
        *,
        judge: Judge | None = None,
        gate: Gate | None = None,
        flush_interval: float = FLUSH_INTERVAL_S,
    ) -> None:
        self.trial = trial
        self.judge = judge
        self.gate = gate
        self.flush_interval = flush_interval
        self.steps: list[int] = []
        self.values: list[float] = []
        self._pending: list[tuple[int, float]] = []
        self._last_flush = -math.inf  # the first report is written at once
        #: Set when the judge stopped the trial (even if the function then caught TrialPruned).
        self.stopped: TrialPruned | None = None

    @property
    def last_step(self) -> int | None:
        return self.steps[-1] if self.steps else None

    def report(self, value: object, step: object) -> None:
        v = as_number(value, what="autolr.report(value)")
        s = _as_step(step, self.last_step)
        self.steps.append(s)
        self.values.append(v)
        self._pending.append((s, v))
        reason = self.judge(self, s, v) if self.judge is not None else None
        if reason is not None:
            self.stopped = TrialPruned(reason.value, s)
            raise self.stopped
        if self.gate is not None:
            self.gate(len(self.values), self.flush)
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        """Write buffered reports to storage (a no-op when nothing is pending)."""
        if self._pending:
            items, self._pending = self._pending, []
            _intermediate.write(self.trial, items)
        self._last_flush = time.monotonic()


_current: contextvars.ContextVar[TrialContext | None] = contextvars.ContextVar(
    "autolr_trial", default=None
)


@contextmanager
def active(ctx: TrialContext) -> Iterator[TrialContext]:
    """Make ``ctx`` the context :func:`report` feeds while the train function runs."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def report(value: float, step: int | None = None) -> None:
    """Record an intermediate value (e.g. the validation loss after an epoch).

    Inside a study autolr keeps the value, checks the curve for instability (NaN, divergence,
    oscillation) and compares it with other trials; when the trial should stop it raises
    :class:`autolr.TrialPruned`, which autolr catches. Outside a study it does nothing, so the
    train function still runs stand-alone.

    Args:
        value: a real number (float, int, numpy scalar or one-element tensor).
        step: a non-negative int, increasing from call to call; ``None`` means the next step.

    Example:
        >>> import autolr
        >>> autolr.report(0.5, step=0)  # outside a study: nothing happens
    """
    ctx = _current.get()
    if ctx is None:
        return
    ctx.report(value, step)
