"""The loop every worker runs: decide what to run next, run it, record it; until the study is done.

A worker (a thread, a process, or a host running ``autolr worker``) runs :func:`run_loop` on a
study; the storage is the only thing workers share, and there is no coordinator. Each turn:

1. read the study's trials as :class:`~autolr._schema.TrialView`, after failing the trials of
   dead workers and queueing their lr again (:func:`autolr._record.recover_stale`);
2. decide what to run next (:func:`next_step`, the one decision point): stop (the study holds
   ``n_trials`` finished trials), wait (the last slots are running elsewhere), or start a trial
   (which samples a new lr, pops a queued retry, or re-checks a candidate);
3. start it (:func:`autolr._record.start`); a trial another worker's race made one too many is
   released; otherwise :func:`run_trial` calls the train function inside a
   :class:`~autolr._context.TrialContext` judged by :mod:`autolr._stopping`, and hands the
   outcome to :mod:`autolr._record`.

Time (``timeout``) and a stop event (another thread failed) end the loop before the study is
read again.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import optuna

from autolr import _liveness, _record, _storage
from autolr._config import TuneConfig
from autolr._context import TrialContext, TrialPruned, active, as_number
from autolr._liveness import Heartbeat
from autolr._sampling import (
    Recheck,
    live_claims,
    owed_lrs,
    planned_lrs,
    recheck_budget,
    recheck_for,
    worker_index,
)
from autolr._schema import PARAM, StopReason, TrialView, counted, pending, views
from autolr._stopping import judge_for
from autolr._target import Target

#: Seconds a worker waits between two looks at the study while other workers hold the last slots.
POLL_S = 0.25
#: If this many first trials of a study all raise the same exception, it is a bug: re-raise it.
SAME_ERROR_LIMIT = 2


@dataclass(frozen=True)
class Run:
    """What one worker's loop needs, fixed for the run (``config.n_trials`` is the total)."""

    study: optuna.Study
    config: TuneConfig
    target: Target
    kwargs: Mapping[str, object]
    worker: str
    deadline: float | None = None
    progress: Callable[[int], None] | None = None

    @property
    def n_trials(self) -> int:
        return self.config.total


# ----------------------------------------------------------------------------- counting


@dataclass(frozen=True)
class Slots:
    """The study's budget as one worker sees it.

    ``finished`` trials count (:func:`autolr._schema.counted`); ``holders`` are the numbers of
    every trial holding a slot: those, plus RUNNING and WAITING (queued) ones. A trial's number is
    fixed when it is created, and a trial only ever *loses* its slot (a crash), so ranking
    holders by number gives every worker the same answer to "is this trial within the total?"
    (:func:`is_surplus`), whatever it saw and when.
    """

    finished: int
    holders: tuple[int, ...]
    queued: bool

    @classmethod
    def of(cls, trials: Sequence[TrialView]) -> Slots:
        return cls(
            finished=sum(1 for t in trials if counted(t)),
            holders=tuple(t.number for t in trials if counted(t) or pending(t)),
            queued=any(t.state == "WAITING" for t in trials),
        )


def is_surplus(study: optuna.Study, trial: optuna.Trial, n_trials: int) -> bool:
    """Another worker took the last slot while ``trial`` was being created."""
    holders = Slots.of(views(study.get_trials(deepcopy=False))).holders
    return sum(1 for n in holders if n < trial.number) >= n_trials


# ----------------------------------------------------------------------------- what to run next


@dataclass(frozen=True)
class Start:
    """Start a trial: sampled (or popped from the queue), re-checking a candidate, or at the
    planned ``lr`` the study still owes (claimed by value: :func:`claimed_below`)."""

    recheck: Recheck | None = None
    lr: float | None = None
    #: A new explored trial is given back when this many trials hold slots below it (the
    #: study's total, less the re-checks still owed: so k workers do not eat their slots).
    cap: int | None = None


@dataclass(frozen=True)
class Wait:
    """The last slots are held by other workers' trials: look again in a moment."""


@dataclass(frozen=True)
class Stop:
    """The study holds its ``n_trials`` finished trials."""


Step: TypeAlias = "Start | Wait | Stop"


def next_step(run: Run, trials: Sequence[TrialView], slots: Slots) -> Step:
    """What this worker does next, given the study's trials: the loop's one decision point."""
    if slots.finished >= run.n_trials:
        return Stop()
    if len(slots.holders) >= run.n_trials and not slots.queued:
        return Wait()
    if slots.queued:  # a queued retry holds its slot already: it goes first
        return Start()
    budget = recheck_budget(run.config)
    explored = sum(1 for t in trials if t.recheck_of is None and (counted(t) or pending(t)))
    checks = len({t.recheck_of for t in trials
                  if t.recheck_of is not None and t.stop_reason != StopReason.SURPLUS})
    cap = run.n_trials - (budget - checks) if checks < budget else None
    if budget and checks < budget and explored >= run.n_trials - budget:
        recheck = recheck_for(
            trials, budget=budget, direction=run.config.direction,
            base_seed=run.target.base_seed(run.kwargs),
        )
        if recheck is not None:
            return Start(recheck)
        if any(pending(t) for t in trials):  # no candidate finished yet: its slot stays a re-check
            return Wait()
        cap = None  # nothing left to re-check: the slots go to exploring
    plan = planned_lrs(run.config)
    owed = owed_lrs(plan, trials)
    if owed:  # the default first (whichever worker); then workers deciding at once differ
        pick = owed[0] if owed[0] == plan[0] else owed[worker_number() % len(owed)]
        return Start(lr=pick, cap=cap)
    return Start(cap=cap)


def worker_number() -> int:
    """Which of several workers this loop is: its process's index (``workers=``, a scheduler)
    and its thread's (``n_jobs``); 0 for a lone run, which so takes the plan in order."""
    name = threading.current_thread().name  # autolr-job-<i> (autolr._scaleout.run_threads)
    thread = int(name.rsplit("-", 1)[1]) if name.startswith("autolr-job-") else 0
    return 7 * (worker_index() or 0) + thread


def claimed_below(trials: Sequence[TrialView], number: int, lr: float) -> bool:
    """Whether a trial numbered below ``number`` already stands for the planned ``lr``.

    Trial numbers are handed out by the storage, one each, so of k workers that start the same
    planned lr at once exactly one (the lowest number) finds none below it and runs it; the
    others give theirs back. A crash's retry or a re-check never stands for a planned point.
    """
    return any(t.number < number for t in live_claims(trials, lr))


# ----------------------------------------------------------------------------- the loop


def run_loop(run: Run, stop: threading.Event | None = None) -> None:
    """Run trials until the study holds ``n_trials`` finished ones (or time or ``stop`` is up).

    Several loops (threads, processes, hosts) may share the study: while the remaining slots
    are held by other workers' running trials this one waits, recovering trials of dead
    workers, so a lost trial is retried and the total still reached.
    """
    beat = Heartbeat.get()
    while stop is None or not stop.is_set():
        if run.deadline is not None and time.monotonic() >= run.deadline:
            break
        trials = read_trials(run)
        slots = Slots.of(trials)
        if run.progress is not None:
            run.progress(slots.finished)
        step = next_step(run, trials, slots)
        if isinstance(step, Stop):
            break
        if isinstance(step, Wait):
            time.sleep(POLL_S)
            continue
        fixed: dict[str, object] | None = None if step.lr is None else {PARAM: step.lr}
        trial = _record.start(run.study, worker=run.worker, recheck=step.recheck, params=fixed)
        cap = run.n_trials if step.cap is None else step.cap
        try:
            surplus = is_surplus(run.study, trial, cap) or _taken(run, step, trial.number)
        except KeyboardInterrupt:
            _record.interrupted(run.study, trial)  # Ctrl-C before the trial ran
            raise
        if surplus:
            _record.release(run.study, trial)
            continue
        seed = step.recheck.seed if step.recheck is not None else None
        try:
            with beat.beating(trial.storage, trial._trial_id):
                run_trial(run, trial, trials, seed)
        except optuna.exceptions.UpdateFinishedTrialError:
            print(
                f"autolr: trial {trial.number} was failed as stale by another worker (no "
                "heartbeat within the grace period); its result is dropped and its lr retried",
                file=sys.stderr,
            )
        except KeyboardInterrupt:
            if _liveness.in_worker_job():
                raise  # the parent says it, once for all its workers
            done = Slots.of(views(run.study.get_trials(deepcopy=False))).finished
            print(
                f"\nautolr: interrupted; study {run.study.study_name!r} keeps {done} of "
                f"{run.n_trials} trials in {_storage.describe(run.config.storage)}. "
                "Run again (train.run()) to resume.",
                file=sys.stderr,
            )
            raise


def read_trials(run: Run, *, retry: bool = True) -> list[TrialView]:
    """The study's trials, after recovering the trials of dead workers (and queueing their lr
    again, unless autolr's search, which owes it by itself, reads them: ``retry=False``)."""
    trials = views(run.study.get_trials(deepcopy=False))
    if _record.recover_stale(run.study, trials, run.config.storage, retry=retry):
        trials = views(run.study.get_trials(deepcopy=False))
    return trials


# ----------------------------------------------------------------------------- one trial


def _taken(run: Run, step: Start, number: int) -> bool:
    """Whether a lower-numbered trial already runs what trial ``number`` was started for: the
    same planned lr, or a re-check of the same candidate (workers that decided at once)."""
    if step.lr is None and step.recheck is None:
        return False
    trials = views(run.study.get_trials(deepcopy=False))
    if step.lr is not None:
        return claimed_below(trials, number, step.lr)
    of = step.recheck.of if step.recheck is not None else None
    return any(
        t.number < number and t.recheck_of == of and t.stop_reason != StopReason.SURPLUS
        for t in trials
    )


def run_trial(
    run: Run, trial: optuna.Trial, trials: Sequence[TrialView], seed: int | None = None
) -> None:
    """Call the train function for ``trial`` and record how it ended (:func:`record_outcome`)."""
    config = run.config
    lr = trial.suggest_float(PARAM, config.lr_range.low, config.lr_range.high, log=True)
    ctx = TrialContext(trial, judge=judge_for(config, trials, lr))
    try:
        with active(ctx):
            out = run.target.call(trial, lr, run.kwargs, seed)
    except BaseException as exc:  # recorded, then re-raised when it must propagate
        record_outcome(run, trial, ctx, error=exc)
        return
    record_outcome(run, trial, ctx, value=out)


def record_outcome(
    run: Run,
    trial: optuna.Trial,
    ctx: TrialContext,
    *,
    value: object = None,
    error: BaseException | None = None,
    retry: bool = True,
) -> None:
    """Record how one call of the train function ended; re-raise what must propagate.

    Reports are flushed first, always. A stopped trial is PRUNED, Ctrl-C is ``interrupted``
    (its lr queued again unless ``retry`` is false) and re-raised, an exception is FAIL
    ``exception`` (re-raised unless ``catch`` holds it and it is not the same bug on every first
    trial); a returned value goes to :func:`_record_return`.
    """
    ctx.flush()
    if error is None:
        _record_return(run, trial, ctx, value)
        return
    if isinstance(error, optuna.TrialPruned):
        if isinstance(error, TrialPruned):
            outcome = _record.stopped(error.reason, error.step)
        else:
            outcome = _record.stopped(StopReason.PRUNED, ctx.last_step)
        _record.finish(run.study, trial, outcome)
        return
    if isinstance(error, KeyboardInterrupt):
        _record.interrupted(run.study, trial, retry=retry)
        raise error
    message = _storage.mask(f"{type(error).__name__}: {error}")[:1000]
    _record.finish(run.study, trial, _record.failed(StopReason.EXCEPTION, exception=message))
    if not isinstance(error, run.config.catch) or same_error_again(run, message):
        raise error


def _record_return(run: Run, trial: optuna.Trial, ctx: TrialContext, out: object) -> None:
    """The train function returned ``out``: a value, or a trial told to stop that returned."""
    if ctx.stopped is not None:
        # autolr told the trial to stop and the function (or a framework callback) caught
        # TrialPruned and returned normally: a trial told to stop is recorded as stopped.
        _record.finish(run.study, trial, _record.stopped(ctx.stopped.reason, ctx.stopped.step))
        return
    try:
        value = as_number(out, what=f"the return value of {run.target.qualname}()")
    except TypeError as exc:
        outcome = _record.failed(StopReason.EXCEPTION, exception=f"TypeError: {exc}")
        _record.finish(run.study, trial, outcome)
        raise TypeError(str(exc)) from None
    if not math.isfinite(value):
        outcome = _record.failed(StopReason.non_finite(value), step=ctx.last_step)
        _record.finish(run.study, trial, outcome)
        return
    _record.finish(run.study, trial, _record.completed(value))


def same_error_again(run: Run, message: str) -> bool:
    """True when the study's first trials all failed with this very exception: a bug."""
    first = sorted((t for t in views(run.study.get_trials(deepcopy=False)) if counted(t)),
                   key=lambda t: t.number)
    limit = min(SAME_ERROR_LIMIT, run.n_trials)
    if len(first) < limit:
        return False
    return all(
        t.state == "FAIL" and t.stop_reason == StopReason.EXCEPTION and t.exception == message
        for t in first[:limit]
    ) and not any(t.state != "FAIL" for t in first)
