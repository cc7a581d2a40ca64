"""Every name autolr stores in Optuna, the stop reasons, and how a stored trial reads back.

One module owns what is stored, so a key is spelled once:

* :mod:`autolr._record` writes a trial's outcome with these keys (the only writer of outcomes);
* everything that reads trials (the loop's counting, the recommendation, the reports and plots,
  the dashboard note, ``autolr.sklearn``) reads them as a :class:`TrialView` and asks
  :func:`counted` which of them count.

Plain data: no Optuna import at run time (:meth:`TrialView.of` reads a ``FrozenTrial``).

Example:
    >>> from optuna.trial import TrialState, create_trial
    >>> t = create_trial(state=TrialState.FAIL, user_attrs={ATTR_STOP_REASON: "crashed"})
    >>> view = TrialView.of(t)
    >>> view.stop_reason, counted(view)
    ('crashed', False)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

#: The name of the learning-rate parameter in every autolr study.
PARAM = "lr"

# ----------------------------------------------------------------------------- trial attributes
#: Why autolr stopped or failed the trial (a :class:`StopReason` value).
ATTR_STOP_REASON = "autolr.stop_reason"
#: The step of the report that stopped it.
ATTR_STOP_STEP = "autolr.stop_step"
#: ``"TypeName: message"`` of the exception the train function raised.
ATTR_EXCEPTION = "autolr.exception"
#: ``host:pid:start`` of the process that runs the trial (see :mod:`autolr._liveness`).
ATTR_WORKER = "autolr.worker"
#: Unix time of the last sign of life of that process.
ATTR_HEARTBEAT = "autolr.heartbeat"
#: The number of the crashed or interrupted trial whose lr this one re-runs.
ATTR_RETRY_OF = "autolr.retry_of"
#: The number of the trial whose params this re-check re-runs with another seed.
ATTR_RECHECK_OF = "autolr.recheck_of"
#: The ``seed`` a re-check passed to the train function.
ATTR_SEED = "autolr.seed"
#: The reports after which autolr's search paused the trial (None once resumed).
ATTR_PAUSED_AT = "autolr.paused_at"
#: The lr an optimizer built by ``autolr.torch.optimizer`` really ran at (``lr`` x its scale).
ATTR_EFFECTIVE_LR = "autolr.effective_lr"
#: ``autolr.sklearn``: the validation score of each CV split, and the fit time of all folds.
ATTR_SKLEARN_SPLITS = "autolr.sklearn.split_scores"
ATTR_SKLEARN_FIT_TIME = "autolr.sklearn.fit_time"

# ----------------------------------------------------------------------------- study attributes
#: Written when a study is created; the lr range is checked on resume (low is written last).
STUDY_VERSION = "autolr.version"
STUDY_DIRECTION = "autolr.direction"
STUDY_LR_LOW = "autolr.lr_low"
STUDY_LR_HIGH = "autolr.lr_high"
#: ``"halving"`` on a study run by autolr's own search (:mod:`autolr._search`); absent on the
#: studies of an Optuna sampler and on those written by autolr 0.1.
STUDY_SEARCH = "autolr.search"
#: That search's plan (JSON): the anchors, the first grid's ends, the limits, whether the range
#: was given; written once, so a resume (or another worker) follows the same plan.
STUDY_SEARCH_SPEC = "autolr.search_spec"
#: What defines the study besides its range (JSON, :mod:`autolr._fingerprint`): the train
#: function's code hash and parameter names, and the forwarded ``run(**kwargs)``.
STUDY_FINGERPRINT = "autolr.fingerprint"
#: Each change accepted with ``run(allow_changed=True)``: ``[{"at": ISO time, "changes": [...]}]``.
STUDY_FINGERPRINT_CHANGES = "autolr.fingerprint_changes"
#: Written at the end of every run, for optuna-dashboard (see :mod:`autolr._dashboard`).
STUDY_RECOMMENDED_LR = "autolr.recommended_lr"
STUDY_RECOMMENDATION = "autolr.recommendation"
STUDY_STEPS_RUN = "autolr.steps_run"
STUDY_STEPS_SAVED = "autolr.steps_saved"


class StopReason(str, enum.Enum):
    """Why autolr stopped (PRUNED) or failed (FAIL) a trial; stored as its plain string value."""

    NAN = "nan"
    INF = "inf"
    DIVERGED = "diverged"
    OSCILLATING = "oscillating"
    UNDERPERFORMING = "underperforming"
    #: The trial ended within 1% of where it started: at this lr the model learns nothing.
    NO_PROGRESS = "no_progress"
    #: An Optuna pruner (or the train function) raised ``optuna.TrialPruned`` itself.
    PRUNED = "pruned"
    EXCEPTION = "exception"
    CRASHED = "crashed"
    INTERRUPTED = "interrupted"
    SURPLUS = "surplus"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def non_finite(cls, value: float) -> StopReason:
        """``NAN`` for NaN, ``INF`` for an infinity."""
        return cls.NAN if value != value else cls.INF


#: Reasons that say the learning rate made training unstable.
UNSTABLE = frozenset({StopReason.NAN, StopReason.INF, StopReason.DIVERGED, StopReason.OSCILLATING})
#: Reasons of FAIL trials that say nothing about their lr (the process died or was interrupted, or
#: the trial was created past the study's total): not counted, not reported, their lr retried.
NOT_ABOUT_LR = frozenset({StopReason.CRASHED, StopReason.INTERRUPTED, StopReason.SURPLUS})

FINISHED_STATES = ("COMPLETE", "PRUNED", "FAIL")
PENDING_STATES = ("RUNNING", "WAITING")


class HasOutcome(Protocol):
    """Anything with a trial's state name and stop reason (TrialView, report rows, summaries)."""

    @property
    def state(self) -> str: ...

    @property
    def stop_reason(self) -> str | None: ...


def counted(trial: HasOutcome) -> bool:
    """Whether a trial counts: it finished, and its outcome says something about its lr.

    COMPLETE and PRUNED trials count, and FAIL trials unless their reason is one of
    :data:`NOT_ABOUT_LR`. This one rule is the study's ``n_trials`` total and the set of trials
    that the recommendation, the lr comparison, the plots, the peer pruner and
    ``LRSearchCV.cv_results_`` read.

    Example:
        >>> counted(TrialView(number=0, trial_id=0, state="FAIL", stop_reason="nan"))
        True
    """
    if trial.state in ("COMPLETE", "PRUNED"):
        return True
    return trial.state == "FAIL" and trial.stop_reason not in NOT_ABOUT_LR


def pending(trial: HasOutcome) -> bool:
    """RUNNING, or WAITING in the queue (a retry): not finished yet, but holding a slot."""
    return trial.state in PENDING_STATES


def _float(x: object) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _int(x: object) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _str(x: object) -> str | None:
    return x if isinstance(x, str) else None


@dataclass(frozen=True)
class TrialView:
    """One stored trial as autolr reads it: its state, lr, curve and ``autolr.*`` attributes.

    ``lr`` is also known for a trial created with its lr fixed that has not suggested it yet
    (RUNNING or WAITING). ``value`` is the final objective of a COMPLETE trial (None otherwise, even for a PRUNED trial
    that Optuna gave its last reported value); attributes a trial does not carry are None.
    """

    number: int
    trial_id: int
    state: str
    params: Mapping[str, object] = field(default_factory=dict)
    lr: float | None = None
    value: float | None = None
    intermediate: Mapping[int, float] = field(default_factory=dict)
    stop_reason: str | None = None
    stop_step: int | None = None
    exception: str | None = None
    worker: str | None = None
    heartbeat: float | None = None
    retry_of: int | None = None
    recheck_of: int | None = None
    seed: int | None = None
    effective_lr: float | None = None
    split_scores: tuple[float, ...] | None = None
    fit_time: float | None = None
    started: datetime | None = None
    completed: datetime | None = None

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialView:
        """Read a FrozenTrial (the one place that reads autolr's trial attributes)."""
        attrs = trial.user_attrs
        state = trial.state.name
        lr = trial.params.get(PARAM)
        if lr is None:  # created with its lr fixed (a planned point, a retry), not suggested yet
            fixed = trial.system_attrs.get("fixed_params")
            lr = fixed.get(PARAM) if isinstance(fixed, dict) else None
        splits = attrs.get(ATTR_SKLEARN_SPLITS)
        return cls(
            number=trial.number,
            trial_id=trial._trial_id,
            state=state,
            params=trial.params,
            lr=_float(lr),
            value=trial.value if state == "COMPLETE" else None,
            intermediate=trial.intermediate_values,
            stop_reason=_str(attrs.get(ATTR_STOP_REASON)),
            stop_step=_int(attrs.get(ATTR_STOP_STEP)),
            exception=_str(attrs.get(ATTR_EXCEPTION)),
            worker=_str(attrs.get(ATTR_WORKER)),
            heartbeat=_float(attrs.get(ATTR_HEARTBEAT)),
            retry_of=_int(attrs.get(ATTR_RETRY_OF)),
            recheck_of=_int(attrs.get(ATTR_RECHECK_OF)),
            seed=_int(attrs.get(ATTR_SEED)),
            effective_lr=_float(attrs.get(ATTR_EFFECTIVE_LR)),
            split_scores=tuple(float(s) for s in splits) if isinstance(splits, (list, tuple)) else None,
            fit_time=_float(attrs.get(ATTR_SKLEARN_FIT_TIME)),
            started=trial.datetime_start,
            completed=trial.datetime_complete,
        )

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def curve(self) -> tuple[tuple[int, float], ...]:
        """The intermediate reports ``(step, value)``, sorted by step."""
        return tuple(sorted(self.intermediate.items()))


def views(trials: Iterable[FrozenTrial]) -> list[TrialView]:
    """:meth:`TrialView.of` for each trial, in order."""
    return [TrialView.of(t) for t in trials]
