"""The one writer of a trial's record: its birth, with its worker's identity, and its outcome.

Every way an autolr trial ends is written here, as Optuna's ``study/_tell.py`` is the one path
that finishes its trials:

* :func:`finish` with an :class:`Outcome`: COMPLETE with its value, PRUNED with the reason and
  step autolr stopped it at, or FAIL with a reason (``nan``/``inf``, ``exception`` and its
  message); the reason, message and step are stored first, then the state (``study.tell``);
* :func:`interrupted`: Ctrl-C; FAIL ``interrupted`` and its lr queued again;
* :func:`release`: a trial created past the study's total; FAIL ``surplus``;
* :func:`fail_and_retry` / :func:`recover_stale`: a trial whose process died; FAIL ``crashed``
  and its lr queued again, once, even when several workers see it at the same moment.

:func:`start` creates (or pops from the queue) the trial a worker runs next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

from autolr import _liveness
from autolr._schema import (
    ATTR_EXCEPTION,
    ATTR_RECHECK_OF,
    ATTR_RETRY_OF,
    ATTR_SEED,
    ATTR_STOP_REASON,
    ATTR_STOP_STEP,
    ATTR_WORKER,
    PARAM,
    StopReason,
    TrialView,
)

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

    from autolr._config import StorageArg
    from autolr._sampling import Recheck


def _handles(study: optuna.Study) -> tuple[BaseStorage, int]:
    """The storage object and id of ``study``, the very ones the study reads and writes through.

    Optuna keeps both private (``Study._storage``, ``Study._study_id``) and has no public
    accessor. autolr needs them to create a trial and name its worker in one write, and to fail
    *another* worker's stale trial; writing through a second storage object would bypass the
    cache Optuna wraps around RDB storages, and the study's own reads would go stale.
    """
    return study._storage, study._study_id


# ----------------------------------------------------------------------------- birth


def _pop_waiting(storage: BaseStorage, study_id: int) -> int | None:
    """A queued (WAITING) trial, made RUNNING by this worker; None when the queue is empty.

    What ``Study.ask`` does first, with the storage's public methods: the state change is atomic,
    so of two workers popping the same trial one gets it and the other tries the next.
    """
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                return t._trial_id
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def start(
    study: optuna.Study,
    *,
    worker: str,
    recheck: Recheck | None = None,
    params: dict[str, object] | None = None,
) -> optuna.Trial:
    """``study.ask()``, except that a new trial is born with this worker's identity.

    Optuna's ask creates the trial and autolr would name its worker in a second write; a
    process killed between the two left a RUNNING trial no one could tell was dead (found by
    tests/test_hardening.py's random kills). Creating it from a template writes both in one
    transaction. Queued (WAITING) trials are still popped first, as Optuna does, except for a
    re-check, which is a new trial with fixed params, and for a trial of autolr's search, whose
    ``params`` are fixed by the search (which never queues).

    Optuna's ask also drops the sampler's per-thread cache of the study's trials; ``study.tell``
    drops it too, and every trial a worker starts follows a ``tell`` in its thread (or is the
    thread's first), so the sampler always sees the trials as they are.
    """
    storage, study_id = _handles(study)
    fixed = dict(recheck.params) if recheck is not None else params
    trial_id = None if fixed is not None else _pop_waiting(storage, study_id)
    if trial_id is not None:  # a queued trial: name its worker right after popping it
        storage.set_trial_user_attr(trial_id, ATTR_WORKER, worker)
        return optuna.Trial(study, trial_id)
    attrs: dict[str, object] = {ATTR_WORKER: worker}
    system: dict[str, object] = {}
    if recheck is not None:
        attrs.update({ATTR_RECHECK_OF: recheck.of, ATTR_SEED: recheck.seed})
    if fixed is not None:
        system["fixed_params"] = fixed
    template = FrozenTrial(
        number=-1,
        state=TrialState.RUNNING,
        value=None,
        datetime_start=datetime.now(),
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs=attrs,
        system_attrs=system,
        intermediate_values={},
        trial_id=-1,
    )
    trial_id = storage.create_new_trial(study_id, template_trial=template)
    return optuna.Trial(study, trial_id)


# ----------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Outcome:
    """How a trial ended: its state and what autolr stores with it.

    ``reason`` is a :class:`~autolr._schema.StopReason`, or the reason a user gave when raising
    :class:`autolr.TrialPruned` themselves (stored as given).
    """

    state: TrialState
    value: float | None = None
    reason: StopReason | str | None = None
    step: int | None = None
    exception: str | None = None


def completed(value: float) -> Outcome:
    return Outcome(TrialState.COMPLETE, value=value)


def stopped(reason: StopReason | str, step: int | None) -> Outcome:
    """PRUNED: autolr (or an Optuna pruner) stopped the trial at ``step``."""
    return Outcome(TrialState.PRUNED, reason=reason, step=step)


def failed(reason: StopReason, *, step: int | None = None, exception: str | None = None) -> Outcome:
    return Outcome(TrialState.FAIL, reason=reason, step=step, exception=exception)


def finish(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    """Store ``outcome``: the reason, exception and step first, then the state and value."""
    storage, _ = _handles(study)
    trial_id = trial._trial_id
    if outcome.reason is not None:
        storage.set_trial_user_attr(trial_id, ATTR_STOP_REASON, str(outcome.reason))
    if outcome.exception is not None:
        storage.set_trial_user_attr(trial_id, ATTR_EXCEPTION, outcome.exception)
    if outcome.step is not None:
        storage.set_trial_user_attr(trial_id, ATTR_STOP_STEP, outcome.step)
    try:
        if outcome.state == TrialState.COMPLETE:
            study.tell(trial, outcome.value)
        else:
            study.tell(trial, state=outcome.state)
    except ValueError:
        # Optuna refuses to tell a finished trial ("Cannot tell a FAIL trial"): another worker
        # failed it as stale while this one was stopped (SIGSTOP, a swapped-out host).
        if storage.get_trial(trial_id).state.is_finished():
            raise optuna.exceptions.UpdateFinishedTrialError(
                f"trial {trial.number} was already finished by another worker"
            ) from None
        raise


def interrupted(study: optuna.Study, trial: optuna.Trial, *, retry: bool = True) -> None:
    """Ctrl-C in the train function: FAIL ``interrupted``, and its lr queued to run again
    (autolr's search owes the point again by itself: ``retry=False``)."""
    storage, _ = _handles(study)
    frozen = storage.get_trial(trial._trial_id)
    if frozen.state.is_finished():
        return  # already recorded (its outcome was written before the Ctrl-C reached us)
    view = TrialView.of(frozen)
    finish(study, trial, failed(StopReason.INTERRUPTED))
    if retry:
        queue_retry(study, view)


def release(study: optuna.Study, trial: optuna.Trial) -> None:
    """Give back a trial created past the study's total: FAIL ``surplus``, never counted.

    Not WAITING: a released trial would hold a slot again and be popped before a crashed
    trial's queued retry, which would then be surplus itself.
    """
    finish(study, trial, failed(StopReason.SURPLUS))


def queue_retry(study: optuna.Study, t: TrialView) -> None:
    """Queue ``t``'s params to run again, unless ``t`` was itself a retry (once only)."""
    if t.lr is not None and t.retry_of is None:
        params = dict(t.params) or {PARAM: t.lr}  # killed before its fixed lr was suggested
        study.enqueue_trial(params, user_attrs={ATTR_RETRY_OF: t.number})


def fail_and_retry(
    study: optuna.Study,
    t: TrialView,
    reason: StopReason,
    storage_arg: StorageArg,
    *,
    retry: bool = True,
) -> None:
    """Fail another worker's trial ``t`` and enqueue its lr once, even when workers race.

    Only the worker whose state change wins enqueues (storage rejects the loser's, see
    :func:`autolr._liveness.recovery_lock`).
    """
    storage, _ = _handles(study)
    with _liveness.recovery_lock(storage_arg):
        try:
            if storage.get_trial(t.trial_id).state != TrialState.RUNNING:
                return  # another worker got there first
            storage.set_trial_user_attr(t.trial_id, ATTR_STOP_REASON, reason.value)
            if not storage.set_trial_state_values(t.trial_id, TrialState.FAIL):
                return
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            return  # another worker got there first
        if retry:
            queue_retry(study, t)


def recover_stale(
    study: optuna.Study,
    trials: Sequence[TrialView],
    storage_arg: StorageArg,
    *,
    retry: bool = True,
    reason: StopReason = StopReason.CRASHED,
) -> bool:
    """Fail RUNNING trials whose process is gone or silent, and queue their lr again (once).

    Same-host deaths are seen from the pid, other hosts' from ``autolr.heartbeat``
    (:func:`autolr._liveness.is_stale`). Returns whether any trial was recovered (``trials`` is
    then out of date).
    """
    grace = _liveness.heartbeat_grace()
    recovered = False
    for t in trials:
        if t.state == "RUNNING" and _liveness.is_stale(t, grace=grace):
            fail_and_retry(study, t, reason, storage_arg, retry=retry)
            recovered = True
    return recovered
