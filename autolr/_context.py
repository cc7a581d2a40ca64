"""The per-trial context and :func:`autolr.report`.

A :class:`TrialContext` lives for one trial in a :class:`contextvars.ContextVar`, so the user's
train function can call :func:`report` without being handed anything. Decisions (instability,
too slow) are made locally from numbers held in memory; values reach storage in batches (every
few seconds and at the end of the trial), so a report costs microseconds instead of a database
transaction, while optuna-dashboard still sees the curves while they grow. The first report of a
trial is written at once; a process killed between two writes loses at most the last
``FLUSH_INTERVAL_S`` seconds of reports of its running trial (finished trials lose nothing).
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Real
from typing import TYPE_CHECKING, Any, Protocol

import optuna

if TYPE_CHECKING:
    from autolr._stability import StabilityMonitor

#: Seconds between two writes of buffered reports to storage while a trial runs.
FLUSH_INTERVAL_S = 2.0

ATTR_REASON = "autolr.stop_reason"
ATTR_STEP = "autolr.stop_step"
ATTR_EXCEPTION = "autolr.exception"
ATTR_WORKER = "autolr.worker"
ATTR_RETRY_OF = "autolr.retry_of"

#: Stop reasons of FAIL trials that say nothing about their lr (the process died, was interrupted,
#: or the trial was created past the study's total): not counted, not reported, their lr retried.
NOT_ABOUT_LR = frozenset({"crashed", "interrupted", "surplus"})


class TrialPruned(optuna.TrialPruned):
    """Raised by :func:`autolr.report` when autolr stops a trial; autolr catches it.

    ``reason`` is one of ``nan``, ``inf``, ``diverged``, ``oscillating``, ``underperforming``.
    """

    def __init__(self, reason: str, step: int) -> None:
        super().__init__(f"trial stopped at step {step}: {reason}")
        self.reason = reason
        self.step = step


class StopRule(Protocol):
    """Decides from this trial's own numbers whether it is too slow compared to the others."""

    def should_stop(self, step: int, value: float) -> bool: ...


def as_number(value: Any, *, what: str) -> float:
    """``float(value)`` for real numbers, numpy scalars and one-element tensors; else TypeError."""
    if isinstance(value, bool):
        raise TypeError(f"{what}: expected a real number, got bool {value!r}")
    if isinstance(value, Real):
        return float(value)
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


def _write_intermediate(trial: optuna.Trial, items: list[tuple[int, float]]) -> None:
    """Store ``items`` as intermediate values: one multi-row INSERT on RDB storage.

    Optuna writes one value per transaction with two SELECTs each; a batch of a trial's new
    steps (each written exactly once: steps strictly increase) goes in one statement instead.
    Other storages, or a batch the database refuses, take Optuna's own one-by-one path.
    """
    storage = trial.storage
    backend = getattr(storage, "_backend", storage)
    frozen = trial._cached_frozen_trial  # Optuna's own per-trial cache, kept in step
    if not _insert_rdb(backend, trial._trial_id, items):
        for step, value in items:
            storage.set_trial_intermediate_value(trial._trial_id, step, value)
    for step, value in items:
        frozen.intermediate_values[step] = value


def _insert_rdb(backend: object, trial_id: int, items: list[tuple[int, float]]) -> bool:
    try:
        import sqlalchemy
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import RDBStorage, _create_scoped_session
    except ImportError:  # pragma: no cover - Optuna moved its internals
        return False
    if not isinstance(backend, RDBStorage):
        return False
    model = models.TrialIntermediateValueModel
    rows = []
    for step, value in items:
        stored, kind = model.intermediate_value_to_stored_repr(value)
        rows.append(
            {"trial_id": trial_id, "step": step, "intermediate_value": stored,
             "intermediate_value_type": kind}
        )
    try:
        with _create_scoped_session(backend.scoped_session, True) as session:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
            backend.check_trial_is_updatable(trial_id, trial.state)
            session.execute(sqlalchemy.insert(model), rows)
    except optuna.exceptions.StorageInternalError as exc:
        if isinstance(exc.__cause__, sqlalchemy.exc.IntegrityError):
            return False  # a step already stored: let Optuna update it row by row
        raise
    return True


class TrialContext:
    """What autolr knows about the running trial: its reports, its monitor, its stop rules."""

    def __init__(
        self,
        trial: optuna.Trial,
        *,
        monitor: StabilityMonitor | None,
        stop_rule: StopRule | None = None,
        optuna_pruner: bool = False,
        flush_interval: float = FLUSH_INTERVAL_S,
    ) -> None:
        self.trial = trial
        self.monitor = monitor
        self.stop_rule = stop_rule
        self.optuna_pruner = optuna_pruner
        self.flush_interval = flush_interval
        self.steps: list[int] = []
        self.values: list[float] = []
        self._pending: list[tuple[int, float]] = []
        self._last_flush = -math.inf  # the first report is written at once
        self.stopped: TrialPruned | None = None

    # -- the hot path -------------------------------------------------------------------------
    def report(self, value: Any, step: int | None) -> None:
        v = as_number(value, what="autolr.report(value)")
        if step is None:
            step = self.steps[-1] + 1 if self.steps else 0
        elif isinstance(step, bool) or not isinstance(step, int):
            try:
                import numpy as np

                ok = isinstance(step, np.integer)
            except ImportError:  # pragma: no cover
                ok = False
            if not ok:
                raise TypeError(
                    f"autolr.report(step): expected an int >= 0 or None, got {type(step).__name__}"
                )
            step = int(step)
        if step < 0:
            raise ValueError(f"autolr.report(step): expected an int >= 0, got {step}")
        if self.steps and step <= self.steps[-1]:
            raise ValueError(
                f"autolr.report(step): steps must increase; got {step} after {self.steps[-1]}"
            )
        self.steps.append(step)
        self.values.append(v)
        self._pending.append((step, v))

        reason = None
        if self.monitor is not None:
            reason = self.monitor.update(step, v)
        elif not math.isfinite(v):
            reason = "nan" if math.isnan(v) else "inf"
        # While a rise waits for its confirming report (Stability.patience), a trial that is
        # blowing up must be recorded as diverged, not pruned as merely trailing the others.
        suspect = self.monitor is not None and self.monitor.suspect
        if (
            reason is None
            and not suspect
            and self.stop_rule is not None
            and self.stop_rule.should_stop(step, v)
        ):
            reason = "underperforming"
        if reason is None and self.optuna_pruner:
            self.flush()
            if self.trial.should_prune():
                reason = "underperforming"
        if reason is not None:
            self.stopped = TrialPruned(reason, step)
            raise self.stopped
        if time.monotonic() - self._last_flush >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        """Write buffered reports to storage (a no-op when nothing is pending)."""
        if self._pending:
            items, self._pending = self._pending, []
            _write_intermediate(self.trial, items)
        self._last_flush = time.monotonic()


_current: contextvars.ContextVar[TrialContext | None] = contextvars.ContextVar(
    "autolr_trial", default=None
)


@contextmanager
def active(ctx: TrialContext) -> Iterator[TrialContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def current() -> TrialContext | None:
    """The context of the trial running in this thread, or None outside a study."""
    return _current.get()


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
