"""The loop that runs autolr's own search (:mod:`autolr._search`) on a study.

Each turn reads the study's trials, shows them to the search as :class:`~autolr._search.Seen`
(oriented values; this worker's parked trials are ``paused``, everyone else's running ones
``busy``) and carries out what it decides:

* :class:`~autolr._search.Begin`: a new trial at a fixed lr, born with this worker's identity
  (:func:`autolr._record.start`); a trial another worker started at the same lr a moment earlier
  wins, and this one is released. Its train function runs in a thread of its own
  (:class:`~autolr._pause.PausableCall`) and parks inside ``report()`` at its budget;
* :class:`~autolr._search.Resume`: one of this worker's parked trials runs on to a new budget;
* :class:`~autolr._search.Halt`: a parked trial that was not promoted is stopped as
  ``underperforming`` (``TrialPruned`` is raised inside its ``report()``, so its own cleanup runs);
* :class:`~autolr._search.Hold`: what comes next runs in another worker: look again shortly.

Outcomes are recorded by :func:`autolr._loop.record_outcome`, as in the sampler's loop. A trial
whose process died, or that was interrupted, is failed and not retried here: the search owes
its learning rate again by itself. When the loop ends early (a timeout, Ctrl-C, an error), the
trials still parked are recorded as ``interrupted`` and run again on resume.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import optuna

from autolr import _liveness, _record, _storage
from autolr._context import TrialContext, TrialPruned, active
from autolr._liveness import Heartbeat
from autolr._loop import POLL_S, Run, read_trials, record_outcome, worker_number
from autolr._pause import Outcome, PausableCall
from autolr._schema import ATTR_PAUSED_AT, PARAM, TrialView, counted
from autolr._search import (
    LIMITS,
    Begin,
    Done,
    Halt,
    Resume,
    SearchSpec,
    decide,
    halt_reason,
    key,
    run_length,
    seen,
)
from autolr._stability import StabilityMonitor
from autolr._stopping import StopJudge, peer_scale


class _Abandoned(BaseException):
    """Raised inside a parked trial when the loop ends before the search is done."""


@dataclass
class _Live:
    """A trial this worker started and has not recorded yet."""

    trial: optuna.Trial
    ctx: TrialContext
    call: PausableCall


@dataclass
class SearchWorker:
    """One worker's loop over the search: its run, its plan, its parked trials."""

    run: Run
    spec: SearchSpec
    index: int = 0
    live: dict[int, _Live] = field(default_factory=dict)

    # -- one turn ------------------------------------------------------------------------------
    def turn(self, trials: list[TrialView]) -> bool:
        """Carry out the search's next decision; False when the search is over."""
        self.drop_lost(trials)
        found = seen(trials, direction=self.run.config.direction, paused=self.live)
        actions = decide(self.spec, found, length=run_length(trials))
        for action in actions:
            if isinstance(action, Halt):
                self.halt(action.number, halt_reason(found, action.number))
        for action in actions:
            if isinstance(action, Done):
                return False
            if isinstance(action, Resume) and action.number in self.live:
                self.advance(action.number, action.budget)
                return True
        begins = [a for a in actions if isinstance(a, Begin)]
        if begins:  # workers that decide at the same moment start different learning rates
            action = begins[self.index % len(begins)]
            self.begin(action.x, action.budget, trials)
            return True
        if not any(isinstance(a, Halt) for a in actions):
            time.sleep(POLL_S)  # Hold, or resumes that belong to other workers
        return True

    def begin(self, x: float, budget: int | None, trials: Sequence[TrialView]) -> None:
        run = self.run
        trial = _record.start(run.study, worker=run.worker, params={PARAM: 10.0**x})
        try:
            self._begin(trial, x, budget, trials)
        except KeyboardInterrupt:
            if trial.number not in self.live:  # Ctrl-C before the trial was tracked
                _record.interrupted(run.study, trial, retry=False)
            raise

    def _begin(
        self, trial: optuna.Trial, x: float, budget: int | None, trials: Sequence[TrialView]
    ) -> None:
        run = self.run
        if _taken(run.study, trial.number, x):
            _record.release(run.study, trial)  # another worker started this lr a moment ago
            return
        low, high = self.spec.limits if self.spec.hard else LIMITS
        lr = trial.suggest_float(PARAM, 10.0**low, 10.0**high, log=True)
        ctx = TrialContext(trial, judge=self.judge(trials, lr))
        with active(ctx):  # the trial's thread starts with this context (autolr.report finds it)
            call = PausableCall(run.target.call, {"trial": trial, "lr": lr,
                                                  "kwargs": run.kwargs, "seed": None},
                                name=f"autolr-trial-{trial.number}")
        ctx.gate = call.checkpoint
        self.live[trial.number] = _Live(trial, ctx, call)
        Heartbeat.get().add(trial.storage, trial._trial_id)
        self.settle(trial.number, call.run(budget))

    def advance(self, number: int, budget: int | None) -> None:
        live = self.live[number]
        try:
            live.trial.storage.set_trial_user_attr(live.trial._trial_id, ATTR_PAUSED_AT, None)
        except optuna.exceptions.UpdateFinishedTrialError:
            self.lose([number])
            return
        self.settle(number, live.call.run(budget))

    def drop_lost(self, trials: Sequence[TrialView]) -> None:
        """Forget this worker's trials that another worker failed as stale (this process was
        stopped, or too slow to beat, for longer than the grace period)."""
        state = {t.number: t.state for t in trials}
        self.lose([n for n in self.live if state.get(n, "RUNNING") != "RUNNING"])

    def lose(self, numbers: Sequence[int]) -> None:
        """Drop ``numbers`` (finished by another worker): their results are not recorded."""
        if not numbers:
            return
        for number in numbers:
            live = self.live.pop(number)
            Heartbeat.get().discard(live.trial._trial_id)
            if live.call.alive:
                live.call.stop(_Abandoned())
        shown = ", ".join(str(n) for n in numbers)
        print(
            f"autolr: trial {shown} was failed as stale by another worker (no heartbeat within "
            "the grace period); its result is dropped and the search runs its lr again",
            file=sys.stderr,
        )

    def halt(self, number: int, reason: str) -> None:
        live = self.live.get(number)
        if live is None:
            return
        stop = TrialPruned(reason, live.ctx.last_step or 0)
        live.ctx.stopped = stop  # recorded as stopped even if the function swallows it
        self.settle(number, live.call.stop(stop))

    def judge(self, trials: Sequence[TrialView], lr: float) -> StopJudge:
        config = self.run.config
        monitor = (
            StabilityMonitor(config.stability, direction=config.direction)
            if config.stability.enabled
            else None
        )
        return StopJudge(monitor=monitor, scale=peer_scale(config, trials, lr))

    # -- outcomes ------------------------------------------------------------------------------
    def settle(self, number: int, outcome: Outcome) -> None:
        """Record what a run of the trial came to (a pause is kept; anything else is final)."""
        live = self.live[number]
        if outcome.kind == "paused":
            try:
                live.trial.storage.set_trial_user_attr(
                    live.trial._trial_id, ATTR_PAUSED_AT, outcome.reports
                )
            except optuna.exceptions.UpdateFinishedTrialError:
                self.lose([number])
            return
        del self.live[number]
        Heartbeat.get().discard(live.trial._trial_id)
        try:
            record_outcome(
                self.run, live.trial, live.ctx, value=outcome.value, error=outcome.error,
                retry=False,
            )
        except optuna.exceptions.UpdateFinishedTrialError:
            self.live[number] = live
            self.lose([number])

    def abandon(self) -> None:
        """The loop ends before the search does: this worker's unrecorded trials (parked, or
        ended by Ctrl-C) are recorded as interrupted; the search owes their lr again."""
        for number in list(self.live):
            live = self.live.pop(number)
            Heartbeat.get().discard(live.trial._trial_id)
            if live.call.alive:
                live.call.stop(_Abandoned())  # the trial unwinds through its own cleanup
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                _record.interrupted(self.run.study, live.trial, retry=False)


def _taken(study: optuna.Study, number: int, x: float) -> bool:
    """Whether a lower-numbered trial of the study is already running the lr ``10 ** x`` (its
    lr is fixed when it is created, before it is suggested: both places are read)."""
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        fixed = t.system_attrs.get("fixed_params")
        lr = t.params.get(PARAM, fixed.get(PARAM) if isinstance(fixed, dict) else None)
        if t.number < number and isinstance(lr, float) and lr > 0 and key(math.log10(lr)) == key(x):
            return True
    return False


def run_search(run: Run, spec: SearchSpec, stop: threading.Event | None = None) -> None:
    """Run autolr's search on ``run.study`` until it is done (or time or ``stop`` is up)."""
    worker = SearchWorker(run, spec, index=worker_number())
    try:
        while stop is None or not stop.is_set():
            if run.deadline is not None and time.monotonic() >= run.deadline:
                break
            trials = read_trials(run, retry=False)
            if run.progress is not None:
                run.progress(sum(1 for t in trials if counted(t)))
            try:
                if not worker.turn(trials):
                    break
            except optuna.exceptions.UpdateFinishedTrialError:
                print(
                    "autolr: a trial was failed as stale by another worker (no heartbeat within "
                    "the grace period); its result is dropped and its lr run again",
                    file=sys.stderr,
                )
    except KeyboardInterrupt:
        worker.abandon()
        if _liveness.in_worker_job():
            raise  # the parent says it, once for all its workers
        trials = read_trials(run, retry=False)
        reports = sum(len(t.intermediate) for t in trials)
        print(
            f"\nautolr: interrupted; study {run.study.study_name!r} keeps its {len(trials)} trials "
            f"({reports} reports) in {_storage.describe(run.config.storage)}, and what they "
            "reported counts. Run again (train.run()) to resume.",
            file=sys.stderr,
        )
        raise
    finally:
        worker.abandon()
