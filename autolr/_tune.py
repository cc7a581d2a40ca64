"""``@autolr.tune``: a train function becomes a persistent, resumable Optuna study.

The runner drives Optuna with ask/tell instead of ``study.optimize`` because autolr's promises
differ from Optuna's: ``n_trials`` is a study-wide total of finished trials (Optuna's is per call
and per process, optuna#1865), trials left RUNNING by a dead process are failed and their
learning rate retried, the first trial measures the classic default ``lr = 1e-3``, and a
non-finite result is a recorded outcome rather than a crash.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
import time
from collections.abc import Callable
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, overload

import optuna
from optuna.trial import FrozenTrial, TrialState

from autolr import _context, _storage
from autolr._context import (
    ATTR_EXCEPTION,
    ATTR_REASON,
    ATTR_RETRY_OF,
    ATTR_STEP,
    ATTR_WORKER,
    NOT_ABOUT_LR,
    TrialContext,
    TrialPruned,
    as_number,
)
from autolr._space import DEFAULT_LR, DEFAULT_RANGE, PARAM, LRRange, resolve_lr

if TYPE_CHECKING:
    from autolr._result import Result
    from autolr._stability import Stability

P = ParamSpec("P")
R = TypeVar("R")

#: Default study-wide number of finished trials.
DEFAULT_N_TRIALS = 12
#: Stop reasons of FAIL trials that do not count towards ``n_trials`` (their lr is retried).
NOT_COUNTED = NOT_ABOUT_LR
#: Trials that re-run the best candidates with another seed, when the function accepts ``seed``.
DEFAULT_RECHECK = 2
#: Trial user attributes of a re-check: the trial it re-checks and the seed it ran.
ATTR_RECHECK_OF = "autolr.recheck_of"
ATTR_SEED = "autolr.seed"
#: If this many first trials of a study all raise the same exception, it is a bug: re-raise it.
SAME_ERROR_LIMIT = 2

STUDY_ATTR_VERSION = "autolr.version"
STUDY_ATTR_DIRECTION = "autolr.direction"
STUDY_ATTR_LOW = "autolr.lr_low"
STUDY_ATTR_HIGH = "autolr.lr_high"


# ----------------------------------------------------------------------------- validation


def _check_n_trials(n: Any, *, param: str = "n_trials") -> int:
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ValueError(f"{param}: expected an int >= 1, got {n!r}")
    return int(n)


def _check_timeout(t: Any) -> float | None:
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, Real) or not float(t) > 0:
        raise ValueError(f"timeout: expected seconds > 0 or None, got {t!r}")
    return float(t)


def _check_direction(d: Any) -> str:
    if isinstance(d, optuna.study.StudyDirection):
        d = d.name.lower()
    if d not in ("minimize", "maximize"):
        raise ValueError(f"direction: expected 'minimize' or 'maximize', got {d!r}")
    return str(d)


def _check_catch(c: Any) -> tuple[type[BaseException], ...]:
    if isinstance(c, type) and issubclass(c, BaseException):
        c = (c,)
    if not isinstance(c, (tuple, list)) or not all(
        isinstance(e, type) and issubclass(e, Exception) for e in c
    ):
        raise ValueError(f"catch: expected a tuple of Exception classes, got {c!r}")
    return tuple(c)


def _check_study_name(name: Any) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip() or len(name) > 512:
        raise ValueError(f"study_name: expected a non-empty string, got {name!r}")
    return name


def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0 or None, got {seed!r}")
    return int(seed)


def _check_storage(storage: Any) -> None:
    if storage is None:
        return
    if isinstance(storage, str):
        _storage.check_url(storage)
    elif not isinstance(storage, optuna.storages.BaseStorage):
        raise ValueError(
            "storage: expected a URL string or an optuna.storages.BaseStorage, "
            f"got {type(storage).__name__}"
        )


#: The classic comparison grid mode runs when no range or density is given.
CLASSIC_GRID_RANGE = (1e-4, 1e-1)


def _grid(lr: LRRange, points_per_decade: int | None) -> list[float]:
    from autolr._grid import log_grid

    if points_per_decade is None and (lr.low, lr.high) == DEFAULT_RANGE:
        return log_grid(*CLASSIC_GRID_RANGE)
    try:
        return log_grid(lr.low, lr.high, points_per_decade=points_per_decade)
    except ValueError as exc:
        raise ValueError(f"points_per_decade: {exc}") from None


def _make_sampler(
    sampler: Any, seed: int | None, lr: LRRange | None = None, points_per_decade: int | None = None
) -> optuna.samplers.BaseSampler:
    if sampler is None or sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "grid":
        grid = _grid(lr or LRRange(*DEFAULT_RANGE), points_per_decade)
        return optuna.samplers.GridSampler({PARAM: grid}, seed=seed)
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    raise ValueError(
        "sampler: expected 'tpe', 'random', 'grid' or an optuna.samplers.BaseSampler, "
        f"got {sampler!r}"
    )


#: Points per decade of the default sampler's deterministic initial design (0: none).
DESIGN_PER_DECADE = 1


def initial_design(lr: LRRange, per_decade: int | None = None) -> tuple[float, ...]:
    """The learning rates the default sampler tries after 1e-3, before TPE takes over.

    The powers of ten inside the range, nearest to :data:`DEFAULT_LR` first and, at equal
    distance, the higher one first (``per_decade`` > 1 then adds the points between them in the
    same order): coverage of every decade instead of random start-up luck. A range holding fewer
    than three such points gets its two ends and its geometric middle instead. Measured in
    ``docs/stability.md`` ("Default tuning policy").
    """
    k = DESIGN_PER_DECADE if per_decade is None else per_decade
    if k <= 0:
        return ()
    lo, hi = math.log10(lr.low), math.log10(lr.high)
    eps = 1e-9
    points = [
        i / k for i in range(math.ceil(lo * k - eps), math.floor(hi * k + eps) + 1)
    ]
    if len(points) < 3:
        points = [lo, (lo + hi) / 2, hi]
    centre = min(max(math.log10(DEFAULT_LR), lo), hi)
    points.sort(key=lambda x: (abs(x - round(x)) > eps, round(abs(x - centre), 9), -x))
    return tuple(min(max(10.0**x, lr.low), lr.high) for x in points)


class _Sampler(optuna.samplers.BaseSampler):
    """Delegates to ``base``, adapted to autolr's ask/tell loop.

    - With ``first_lr``, trial 0 gets exactly that learning rate: the default is always
      measured; with ``design``, trials 1, 2, ... then run those learning rates (see
      :func:`initial_design`). Keyed on the trial number, which storage hands out uniquely, so
      many workers starting a new study at once still run each point exactly once.
    - Optuna's GridSampler calls ``study.stop()`` when its grid is used up, which only works
      inside ``study.optimize``; autolr's runner stops on its own total, so that call is dropped.
    """

    def __init__(
        self,
        base: optuna.samplers.BaseSampler,
        *,
        first_lr: float | None,
        design: tuple[float, ...] = (),
    ) -> None:
        self.base = base
        self.first_lr = first_lr
        # Trial k (k < len(plan)) runs plan[k]: the default first, then the initial design.
        self.plan = ((first_lr,) if first_lr is not None else ()) + tuple(
            x for x in design if x != first_lr
        )

    def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        if trial.number < len(self.plan):
            return {}
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[no-untyped-def]
        if trial.number < len(self.plan) and param_name == PARAM:
            return self.plan[trial.number]
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):  # type: ignore[no-untyped-def]
        self.base.before_trial(study, trial)

    def after_trial(self, study, trial, state, values):  # type: ignore[no-untyped-def]
        try:
            self.base.after_trial(study, trial, state, values)
        except RuntimeError as exc:
            if "Study.stop" not in str(exc):
                raise

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


# ----------------------------------------------------------------------------- the decorator


class Tuned(Generic[P, R]):
    """A train function wrapped by :func:`tune`. Call it to train once; ``.run()`` to tune.

    Example:
        >>> import autolr
        >>> @autolr.tune(n_trials=3, storage="sqlite:///:memory:", show_progress_bar=False)
        ... def train(lr: float) -> float:
        ...     return (lr - 0.01) ** 2
        >>> train(lr=0.01)
        0.0
    """

    def __init__(self, fn: Callable[P, R], options: dict[str, Any]) -> None:
        self.fn = fn
        self.options = options
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        sig = inspect.signature(fn)
        params = sig.parameters
        has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        lr_param = params.get(PARAM)
        if lr_param is None and not has_var_kw or (
            lr_param is not None and lr_param.kind is lr_param.POSITIONAL_ONLY
        ):
            raise TypeError(
                f"tune: the train function {fn.__qualname__}() must accept a keyword argument "
                f"'lr' (the learning rate autolr samples), got parameters {sig}"
            )
        self._accepts_var_kw = has_var_kw
        self._params = params

    @property
    def study_name(self) -> str:
        return self.options["study_name"] or self.fn.__name__

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<autolr.Tuned {self.fn.__qualname__} study={self.study_name!r}>"

    def run(
        self,
        *,
        n_trials: int | None = None,
        timeout: float | None = None,
        show_progress_bar: bool | None = None,
        n_jobs: int = 1,
        workers: int | None = None,
        **train_kwargs: Any,
    ) -> Result:
        """Run (or resume) the study until it holds ``n_trials`` finished trials.

        Args:
            n_trials: overrides the decorator's study-wide total for this call.
            timeout: seconds after which no new trial starts (the running one finishes).
            show_progress_bar: overrides the decorator's setting.
            n_jobs: trials run at once in threads of this process (for train functions that
                release the GIL: torch, numpy, I/O).
            workers: start this many processes on the study instead (the train function must be
                importable: defined at module level in a .py file); they share the storage, which
                must be a URL (the default SQLite file is fine on one machine). See
                docs/scaleout.md for machines of a cluster (``autolr worker``).
            **train_kwargs: passed to every call of the train function (pickled for ``workers``).

        Returns:
            The :class:`autolr.Result` of the study.
        """
        n = _check_n_trials(n_trials) if n_trials is not None else self.options["n_trials"]
        t = _check_timeout(timeout) if timeout is not None else self.options["timeout"]
        bar = self.options["show_progress_bar"] if show_progress_bar is None else show_progress_bar
        reserved = {PARAM, "trial"} & set(train_kwargs)
        if reserved:
            raise TypeError(
                f"run: {sorted(reserved)} are set by autolr on every trial; do not pass them to run()"
            )
        unknown = [k for k in train_kwargs if k not in self._params and not self._accepts_var_kw]
        if unknown:
            raise TypeError(
                f"run: {self.fn.__qualname__}() has no parameter {unknown[0]!r} "
                f"(parameters: {', '.join(self._params)})"
            )
        from autolr import _workers

        _workers.check_not_importing()
        procs, n_jobs = _workers.check_workers(workers, n_jobs)
        if procs:
            return _workers.run_processes(
                self, workers=procs, n_trials=n, timeout=t, show_progress_bar=bar, kwargs=train_kwargs
            )
        runner = _Runner(self, n_trials=n, timeout=t, show_progress_bar=bar, kwargs=train_kwargs)
        try:
            return runner.run(n_jobs=n_jobs)
        except Exception as exc:
            if _storage.is_write_error(exc):
                raise _storage.write_error(exc, self.options["storage"]) from exc
            raise


@overload
def tune(fn: Callable[P, R], /) -> Tuned[P, R]: ...
@overload
def tune(
    *,
    n_trials: int = ...,
    timeout: float | None = ...,
    study_name: str | None = ...,
    storage: str | optuna.storages.BaseStorage | None = ...,
    lr: tuple[float, float] | Any = ...,
    direction: Literal["minimize", "maximize"] = ...,
    seed: int | None = ...,
    sampler: str | optuna.samplers.BaseSampler | None = ...,
    points_per_decade: int | None = ...,
    pruner: Any = ...,
    stability: Stability | None = ...,
    catch: tuple[type[Exception], ...] = ...,
    recheck: int | None = ...,
    show_progress_bar: bool | None = ...,
) -> Callable[[Callable[P, R]], Tuned[P, R]]: ...


def tune(
    fn: Callable[P, R] | None = None,
    /,
    *,
    n_trials: int = DEFAULT_N_TRIALS,
    timeout: float | None = None,
    study_name: str | None = None,
    storage: str | optuna.storages.BaseStorage | None = None,
    lr: tuple[float, float] | Any = DEFAULT_RANGE,
    direction: Literal["minimize", "maximize"] = "minimize",
    seed: int | None = None,
    sampler: str | optuna.samplers.BaseSampler | None = None,
    points_per_decade: int | None = None,
    pruner: Any = None,
    stability: Stability | None = None,
    catch: tuple[type[Exception], ...] = (Exception,),
    recheck: int | None = None,
    show_progress_bar: bool | None = None,
) -> Tuned[P, R] | Callable[[Callable[P, R]], Tuned[P, R]]:
    """Turn a train function into a learning-rate study that is stored, resumable and explained.

    The function must accept ``lr`` (the sampled learning rate) as a keyword argument and return
    the value to minimize (or maximize); it may accept ``trial`` to suggest more parameters and
    call :func:`autolr.report` to let autolr stop bad trials early.

    Args:
        n_trials: the study-wide total of finished trials (resuming runs only the missing ones).
        timeout: seconds per :meth:`Tuned.run` call after which no new trial starts.
        study_name: defaults to the function's name.
        storage: an Optuna storage URL or object; default ``$AUTOLR_STORAGE`` or
            ``sqlite:///studies/autolr.db``.
        lr: the log-uniform search range ``(low, high)``; default ``(1e-5, 1e-1)``.
        direction: ``"minimize"`` (losses) or ``"maximize"`` (accuracies).
        seed: makes a fresh study sample the same learning rates on every machine.
        sampler: ``"tpe"`` (default), ``"random"``, ``"grid"`` or any Optuna sampler. Grid mode
            runs 1e-4, 1e-3, 1e-2, 1e-1 (the classic comparison) unless ``lr`` or
            ``points_per_decade`` is given; it runs each grid point once, so the study's total
            is at most the grid's size.
        points_per_decade: grid mode only: ``k`` points per decade over the ``lr`` range.
        pruner: ``None`` for autolr's policy, ``False`` for none, or any Optuna pruner.
        stability: an :class:`autolr.Stability`; ``Stability(enabled=False)`` switches it off.
        catch: exceptions recorded as a failed trial (the study goes on); others propagate.
        recheck: how many of the study's last trials re-run the best candidates with another
            ``seed`` (the train function must accept ``seed``), so the recommendation rests on
            more than one lucky run. Default: 2 when the function accepts ``seed``, else 0.
        show_progress_bar: default: on when stderr is a terminal.

    Example:
        >>> import autolr
        >>> @autolr.tune(n_trials=5, seed=0, storage="sqlite:///:memory:", show_progress_bar=False)
        ... def train(lr: float) -> float:
        ...     loss = 1.0
        ...     for epoch in range(3):
        ...         loss *= 1 - min(lr * 50, 0.9)
        ...         autolr.report(loss, step=epoch)
        ...     return loss
        >>> result = train.run()
        >>> len(result.trials())
        5
    """
    options = {
        "n_trials": _check_n_trials(n_trials),
        "timeout": _check_timeout(timeout),
        "study_name": _check_study_name(study_name),
        "storage": storage,
        "lr": resolve_lr(lr),
        "direction": _check_direction(direction),
        "seed": _check_seed(seed),
        "sampler": sampler,
        "points_per_decade": points_per_decade,
        "pruner": pruner,
        "stability": stability,
        "catch": _check_catch(catch),
        "recheck": recheck,
        "show_progress_bar": show_progress_bar,
    }
    _check_storage(storage)
    if points_per_decade is not None and sampler != "grid":
        raise ValueError("points_per_decade: only applies to sampler='grid'")
    _make_sampler(sampler, None, options["lr"], points_per_decade)  # validate; built per run
    _resolve_pruner(pruner)
    _resolve_stability(stability)
    if show_progress_bar is not None and not isinstance(show_progress_bar, bool):
        raise ValueError(f"show_progress_bar: expected True, False or None, got {show_progress_bar!r}")

    def wrap(f: Callable[P, R]) -> Tuned[P, R]:
        if not callable(f):
            raise TypeError(f"tune: expected a function, got {type(f).__name__}")
        tuned = Tuned(f, options)
        tuned.options = {**options, "recheck": _check_recheck(recheck, tuned)}
        return tuned

    return wrap(fn) if fn is not None else wrap


def _check_recheck(recheck: Any, tuned: Tuned[Any, Any]) -> int:
    accepts_seed = "seed" in tuned._params
    if recheck is None:
        return DEFAULT_RECHECK if accepts_seed else 0
    if isinstance(recheck, bool) or not isinstance(recheck, Integral) or recheck < 0:
        raise ValueError(f"recheck: expected an int >= 0 or None, got {recheck!r}")
    if recheck and not accepts_seed:
        raise ValueError(
            f"recheck: re-checking runs the train function with another seed, but "
            f"{tuned.fn.__qualname__}() has no 'seed' parameter"
        )
    return int(recheck)


def _resolve_stability(stability: Any) -> Stability:
    from autolr._stability import Stability

    if stability is None:
        return Stability()
    if not isinstance(stability, Stability):
        raise ValueError(f"stability: expected an autolr.Stability or None, got {stability!r}")
    return stability


def _resolve_pruner(pruner: Any) -> Any:
    """``None`` -> autolr's policy; ``False`` -> none; an Optuna pruner -> used as is."""
    from autolr._pruning import Pruning

    if pruner is None:
        return Pruning()
    if pruner is False or pruner == "none":
        return None
    if isinstance(pruner, (Pruning, optuna.pruners.BasePruner)):
        return pruner
    raise ValueError(
        "pruner: expected None (autolr's policy), False (no pruning), an autolr.Pruning or an "
        f"optuna.pruners.BasePruner, got {pruner!r}"
    )


# ----------------------------------------------------------------------------- the runner


def counted(t: FrozenTrial) -> bool:
    """Whether a trial counts towards the study's ``n_trials``."""
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return t.state == TrialState.FAIL and t.user_attrs.get(ATTR_REASON) not in NOT_COUNTED


class _Runner:
    def __init__(
        self,
        tuned: Tuned[Any, Any],
        *,
        n_trials: int,
        timeout: float | None,
        show_progress_bar: bool | None,
        kwargs: dict[str, Any],
    ) -> None:
        self.tuned = tuned
        self.opts = tuned.options
        if self.opts["sampler"] == "grid":  # each grid point once
            n_trials = min(n_trials, len(_grid(self.opts["lr"], self.opts["points_per_decade"])))
        self.n_trials = n_trials
        self.timeout = timeout
        self.show_progress_bar = (
            sys.stderr.isatty() if show_progress_bar is None else show_progress_bar
        )
        self.kwargs = kwargs
        self.lr: LRRange = self.opts["lr"]
        self.direction: str = self.opts["direction"]
        self.worker = _storage.worker_id()
        self.stability = _resolve_stability(self.opts["stability"])
        self.pruner = _resolve_pruner(self.opts["pruner"])

    # -- study ----------------------------------------------------------------------------
    def open_study(self) -> optuna.Study:
        storage = _storage.open_storage(self.opts["storage"])
        name = self.tuned.study_name
        from autolr._workers import worker_seed

        sampler = _make_sampler(  # each worker of a seeded study gets its own seed
            self.opts["sampler"], worker_seed(self.opts["seed"]), self.lr, self.opts["points_per_decade"]
        )
        first = self.lr.contains(DEFAULT_LR) and not isinstance(sampler, optuna.samplers.GridSampler)
        design = initial_design(self.lr) if self.opts["sampler"] in (None, "tpe") else ()
        sampler = _Sampler(sampler, first_lr=DEFAULT_LR if first else None, design=design)
        optuna_pruner = self.pruner if isinstance(self.pruner, optuna.pruners.BasePruner) else None
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction=self.direction,  # type: ignore[arg-type]
            sampler=sampler,
            pruner=optuna_pruner or optuna.pruners.NopPruner(),
            load_if_exists=True,
        )
        self.check_or_record(study)
        return study

    def check_or_record(self, study: optuna.Study) -> None:
        """Refuse to resume a study with another direction or range (Optuna keeps the stored one)."""
        where = _storage.describe(self.opts["storage"])
        stored_dir = study.direction.name.lower()
        if stored_dir != self.direction:
            raise ValueError(
                f"direction: study {study.study_name!r} in {where} was created with "
                f"direction={stored_dir!r}, got {self.direction!r}; use another study_name"
            )
        attrs = study.user_attrs
        # The low bound is written last, so a worker that sees it also sees the high one.
        if STUDY_ATTR_LOW in attrs and STUDY_ATTR_HIGH in attrs:
            low, high = attrs[STUDY_ATTR_LOW], attrs[STUDY_ATTR_HIGH]
            if not self.lr.same_as(low, high):
                raise ValueError(
                    f"lr: study {study.study_name!r} in {where} searches ({low:g}, {high:g}), "
                    f"got ({self.lr.low:g}, {self.lr.high:g}); use the stored range or another "
                    "study_name"
                )
        else:
            from autolr import __version__

            study.set_user_attr(STUDY_ATTR_VERSION, __version__)
            study.set_user_attr(STUDY_ATTR_DIRECTION, self.direction)
            study.set_user_attr(STUDY_ATTR_HIGH, self.lr.high)
            study.set_user_attr(STUDY_ATTR_LOW, self.lr.low)

    # -- stale trials -----------------------------------------------------------------------
    def recover_stale(self, study: optuna.Study, snapshot: list[FrozenTrial]) -> bool:
        """Fail trials whose process is gone or silent and queue their learning rate again (once).

        Same-host deaths are seen from the pid; other hosts' from ``autolr.heartbeat``
        (:mod:`autolr._workers`). Returns whether any trial was recovered (the snapshot is then
        out of date).
        """
        from autolr import _workers

        grace = _workers.heartbeat_grace()
        recovered = False
        for t in snapshot:
            if t.state == TrialState.RUNNING and _storage.is_stale(
                t, grace=grace, heartbeat_attr=_workers.ATTR_HEARTBEAT
            ):
                self.fail_and_retry(study, t, "crashed")
                recovered = True
        return recovered

    def fail_and_retry(self, study: optuna.Study, t: FrozenTrial, reason: str) -> None:
        """Fail ``t`` and enqueue its lr once, even when several workers see it stale at once.

        Only the worker whose state change wins enqueues (storage rejects the loser's, see
        :func:`autolr._storage.recovery_lock`).
        """
        storage = study._storage
        with _storage.recovery_lock(self.opts["storage"]):
            try:
                if storage.get_trial(t._trial_id).state != TrialState.RUNNING:
                    return  # another worker got there first
                storage.set_trial_user_attr(t._trial_id, ATTR_REASON, reason)
                if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                    return
            except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
                return  # another worker got there first
            self.queue_retry(study, t)

    @staticmethod
    def queue_retry(study: optuna.Study, t: FrozenTrial) -> None:
        """Queue ``t``'s params to run again, unless ``t`` was itself a retry (once only)."""
        if PARAM in t.params and ATTR_RETRY_OF not in t.user_attrs:
            study.enqueue_trial(t.params, user_attrs={ATTR_RETRY_OF: t.number})

    # -- counting ---------------------------------------------------------------------------
    def slots(self, snapshot: list[FrozenTrial]) -> tuple[int, list[int]]:
        """(finished trials that count, numbers of all trials holding a slot).

        RUNNING and WAITING (queued, e.g. a retry) trials hold a slot too. A trial's number is
        fixed when it is created, and a trial only ever *loses* its slot (a crash), so ranking
        holders by number gives every worker the same answer to "is this trial within the
        total?" (:meth:`is_surplus`), whatever it saw and when.
        """
        finished = 0
        holders: list[int] = []
        for t in snapshot:
            if counted(t):
                finished += 1
                holders.append(t.number)
            elif t.state in (TrialState.RUNNING, TrialState.WAITING):
                holders.append(t.number)
        return finished, holders

    def is_surplus(self, study: optuna.Study, trial: optuna.Trial) -> bool:
        """Another worker took the last slot while this trial was being created."""
        _, holders = self.slots(study.get_trials(deepcopy=False))
        return sum(1 for n in holders if n < trial.number) >= self.n_trials

    # -- one trial --------------------------------------------------------------------------
    def stop_rule(self, snapshot: list[FrozenTrial]) -> Any:
        """The underperforming rule for the next trial, from the finished trials so far."""
        from autolr._pruning import PeerPruner, Pruning

        if not isinstance(self.pruner, Pruning) or not self.pruner.enabled:
            return None
        done = [t for t in snapshot if t.state.is_finished() and counted(t)]
        return PeerPruner(
            self.pruner,
            [t.intermediate_values for t in done],
            [t.state.name for t in done],
            direction=self.direction,
        )

    def run_trial(
        self, study: optuna.Study, trial: optuna.Trial, snapshot: list[FrozenTrial]
    ) -> None:
        from autolr._stability import StabilityMonitor

        storage = study._storage
        lr = trial.suggest_float(PARAM, self.lr.low, self.lr.high, log=True)
        monitor = (
            StabilityMonitor(self.stability, direction=self.direction)
            if self.stability.enabled
            else None
        )
        ctx = TrialContext(
            trial,
            monitor=monitor,
            stop_rule=self.stop_rule(snapshot),
            optuna_pruner=isinstance(self.pruner, optuna.pruners.BasePruner),
        )
        call_kwargs = dict(self.kwargs)
        call_kwargs[PARAM] = lr
        seed = trial._cached_frozen_trial.user_attrs.get(ATTR_SEED)
        if seed is not None:
            call_kwargs["seed"] = seed
        if "trial" in self.tuned._params:
            call_kwargs["trial"] = trial
        try:
            with _context.active(ctx):
                out = self.tuned.fn(**call_kwargs)
        except optuna.TrialPruned as exc:
            ctx.flush()
            reason = exc.reason if isinstance(exc, TrialPruned) else "pruned"
            step = exc.step if isinstance(exc, TrialPruned) else (ctx.steps[-1] if ctx.steps else None)
            storage.set_trial_user_attr(trial._trial_id, ATTR_REASON, reason)
            if step is not None:
                storage.set_trial_user_attr(trial._trial_id, ATTR_STEP, step)
            study.tell(trial, state=TrialState.PRUNED)
            return
        except KeyboardInterrupt:
            ctx.flush()
            storage.set_trial_user_attr(trial._trial_id, ATTR_REASON, "interrupted")
            frozen = storage.get_trial(trial._trial_id)
            study.tell(trial, state=TrialState.FAIL)
            self.queue_retry(study, frozen)
            raise
        except Exception as exc:
            ctx.flush()
            message = _storage.mask(f"{type(exc).__name__}: {exc}")[:1000]
            storage.set_trial_user_attr(trial._trial_id, ATTR_REASON, "exception")
            storage.set_trial_user_attr(trial._trial_id, ATTR_EXCEPTION, message)
            study.tell(trial, state=TrialState.FAIL)
            if not isinstance(exc, self.opts["catch"]) or self.same_error_again(study, message):
                raise
            return
        ctx.flush()
        if ctx.stopped is not None:
            # autolr told the trial to stop and the function (or a framework callback) caught
            # TrialPruned and returned normally: a trial told to stop is recorded as stopped.
            storage.set_trial_user_attr(trial._trial_id, ATTR_REASON, ctx.stopped.reason)
            storage.set_trial_user_attr(trial._trial_id, ATTR_STEP, ctx.stopped.step)
            study.tell(trial, state=TrialState.PRUNED)
            return
        try:
            value = as_number(out, what=f"the return value of {self.tuned.fn.__qualname__}()")
        except TypeError as exc:
            storage.set_trial_user_attr(trial._trial_id, ATTR_REASON, "exception")
            storage.set_trial_user_attr(trial._trial_id, ATTR_EXCEPTION, f"TypeError: {exc}")
            study.tell(trial, state=TrialState.FAIL)
            raise TypeError(str(exc)) from None
        if not math.isfinite(value):
            reason = "nan" if math.isnan(value) else "inf"
            storage.set_trial_user_attr(trial._trial_id, ATTR_REASON, reason)
            if ctx.steps:
                storage.set_trial_user_attr(trial._trial_id, ATTR_STEP, ctx.steps[-1])
            study.tell(trial, state=TrialState.FAIL)
            return
        study.tell(trial, value)

    def same_error_again(self, study: optuna.Study, message: str) -> bool:
        """True when the study's first trials all failed with this very exception: a bug."""
        first = [t for t in study.get_trials(deepcopy=False) if counted(t)]
        first.sort(key=lambda t: t.number)
        limit = min(SAME_ERROR_LIMIT, self.n_trials)
        if len(first) < limit:
            return False
        return all(
            t.state == TrialState.FAIL
            and t.user_attrs.get(ATTR_REASON) == "exception"
            and t.user_attrs.get(ATTR_EXCEPTION) == message
            for t in first[:limit]
        ) and not any(t.state != TrialState.FAIL for t in first)

    # -- the loop ---------------------------------------------------------------------------
    def run(self, *, n_jobs: int = 1) -> Result:
        """Run the loop in ``n_jobs`` threads of this process until the study is complete."""
        from autolr import _workers
        from autolr._result import Result

        study = self.open_study()
        self.deadline = None if self.timeout is None else time.monotonic() + self.timeout
        finished, _ = self.slots(study.get_trials(deepcopy=False))
        self.bar = None
        if self.show_progress_bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.n_trials, initial=min(finished, self.n_trials), desc=study.study_name)
        try:
            if n_jobs > 1:
                _workers.run_threads(lambda stop: self.loop(study, stop), n_jobs)
            else:
                self.loop(study)
        finally:
            if self.bar is not None:
                self.bar.close()
        from autolr._dashboard import record_recommendation

        result = Result(study)
        record_recommendation(study, result)  # shown in optuna-dashboard
        return result

    def loop(self, study: optuna.Study, stop: Any = None) -> None:
        """Run trials until the study holds ``n_trials`` finished ones (or time or ``stop`` is up).

        Several loops (threads, processes, hosts) may share the study: while the remaining slots
        are held by other workers' running trials this one waits, recovering trials of dead
        workers, so a lost trial is retried and the total still reached.
        """
        from autolr import _workers

        beat = _workers.Heartbeat.get()
        while stop is None or not stop.is_set():
            if self.deadline is not None and time.monotonic() >= self.deadline:
                break
            snapshot = study.get_trials(deepcopy=False)
            if self.recover_stale(study, snapshot):
                snapshot = study.get_trials(deepcopy=False)
            finished, holders = self.slots(snapshot)
            if self.bar is not None:
                self.bar.n = min(finished, self.n_trials)
                self.bar.refresh()
            if finished >= self.n_trials:
                break
            queued = any(t.state == TrialState.WAITING for t in snapshot)
            if len(holders) >= self.n_trials and not queued:
                time.sleep(_workers.POLL_S)  # the last slots are running elsewhere
                continue
            trial = self.ask(study, **self.next_recheck(snapshot, finished))
            if self.is_surplus(study, trial):
                self.release(study, trial)
                continue
            try:
                with beat.beating(study._storage, trial._trial_id):
                    self.run_trial(study, trial, snapshot)
            except optuna.exceptions.UpdateFinishedTrialError:
                print(
                    f"autolr: trial {trial.number} was failed as stale by another worker (no "
                    "heartbeat within the grace period); its result is dropped and its lr retried",
                    file=sys.stderr,
                )
            except KeyboardInterrupt:
                done, _ = self.slots(study.get_trials(deepcopy=False))
                print(
                    f"\nautolr: interrupted; study {study.study_name!r} keeps {done} of "
                    f"{self.n_trials} trials in {_storage.describe(self.opts['storage'])}. "
                    "Run again (train.run()) to resume.",
                    file=sys.stderr,
                )
                raise

    def next_recheck(self, snapshot: list[FrozenTrial], finished: int) -> dict[str, Any]:
        """Fixed params and attributes for the next trial when it should re-check a candidate.

        The last ``recheck`` trials of the study's budget re-run the recommendation's best
        candidates, each once, with a seed no trial used; ``{}`` means "sample as usual".
        """
        budget = self.opts["recheck"]
        if not budget or finished < self.n_trials - budget:
            return {}
        done = {t.user_attrs[ATTR_RECHECK_OF] for t in snapshot if ATTR_RECHECK_OF in t.user_attrs}
        if len(done) >= budget:
            return {}
        from autolr._recommend import recommend
        from autolr._result import summaries

        by_number = {t.number: t for t in snapshot}
        rec = recommend(summaries(snapshot), direction=self.direction)
        for number in rec.candidates:
            cand = by_number.get(number)
            if cand is None or number in done or ATTR_RECHECK_OF in cand.user_attrs:
                continue
            default = self.tuned._params["seed"].default
            base = self.kwargs.get("seed", default if isinstance(default, int) else 0)
            return {
                "params": dict(cand.params),
                "user_attrs": {ATTR_RECHECK_OF: number, ATTR_SEED: int(base) + 1 + len(done)},
            }
        return {}

    def ask(
        self,
        study: optuna.Study,
        *,
        params: dict[str, Any] | None = None,
        user_attrs: dict[str, Any] | None = None,
    ) -> optuna.Trial:
        """``study.ask()``, except that a new trial is born with this worker's identity.

        Optuna's ask creates the trial and autolr would name its worker in a second write; a
        process killed between the two left a RUNNING trial no one could tell was dead (found by
        tests/test_hardening.py's random kills). Creating it from a template writes both in one
        transaction. Queued (WAITING) trials are still popped first, as Optuna does.
        """
        from datetime import datetime

        study._thread_local.cached_all_trials = None
        trial_id = None if params else study._pop_waiting_trial_id()
        if trial_id is not None:  # a queued trial: name its worker right after popping it
            study._storage.set_trial_user_attr(trial_id, ATTR_WORKER, self.worker)
        else:
            template = FrozenTrial(
                number=-1,
                state=TrialState.RUNNING,
                value=None,
                datetime_start=datetime.now(),
                datetime_complete=None,
                params={},
                distributions={},
                user_attrs={ATTR_WORKER: self.worker, **(user_attrs or {})},
                system_attrs={"fixed_params": params} if params else {},
                intermediate_values={},
                trial_id=-1,
            )
            trial_id = study._storage.create_new_trial(study._study_id, template_trial=template)
        return optuna.Trial(study, trial_id)

    def release(self, study: optuna.Study, trial: optuna.Trial) -> None:
        """Give back a trial created past the study's total: FAIL ``surplus``, never counted.

        Not WAITING: a released trial would hold a slot again and be popped before a crashed
        trial's queued retry, which would then be surplus itself.
        """
        storage = study._storage
        storage.set_trial_user_attr(trial._trial_id, ATTR_REASON, "surplus")
        study.tell(trial, state=TrialState.FAIL)
