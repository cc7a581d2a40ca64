"""``@autolr.tune``: a train function becomes a persistent, resumable Optuna study.

The facade. :func:`tune` checks the options once into a :class:`~autolr._config.TuneConfig`;
:class:`Tuned` wraps the function and, on ``run()``, picks where the loop runs: here, in
``n_jobs`` threads (:mod:`autolr._loop`), or in worker processes (:mod:`autolr._scaleout`).

autolr drives Optuna with ask/tell instead of ``study.optimize`` because its promises differ
from Optuna's: ``n_trials`` is a study-wide total of finished trials (Optuna's is per call and
per process, optuna#1865), trials left RUNNING by a dead process are failed and their learning
rate retried, the first trial measures the classic default ``lr = 1e-3``, and a non-finite
result is a recorded outcome rather than a crash.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Generic, Literal, ParamSpec, TypeVar, overload

import optuna

from autolr import _liveness, _scaleout, _storage, _target
from autolr._config import StorageArg, TuneConfig
from autolr._dashboard import record_recommendation
from autolr._fingerprint import Fingerprint
from autolr._hooks import ProgressBar
from autolr._loop import Run, Slots, run_loop
from autolr._search_loop import run_search
from autolr._pruning import Pruning
from autolr._result import Result
from autolr._sampling import study_total
from autolr._search import expected_trials
from autolr._schema import views
from autolr._space import SearchRangeSource
from autolr._stability import Stability
from autolr._study import open_study, say_if_complete
from autolr._target import Target

P = ParamSpec("P")
R = TypeVar("R")

#: What ``lr=`` takes: a ``(low, high)`` pair, or anything with ``search_range()``.
LRArg = Sequence[float] | SearchRangeSource
#: What ``pruner=`` takes: None (autolr's policy), False or "none" (no pruning), or a policy.
PrunerArg = Pruning | optuna.pruners.BasePruner | Literal[False, "none"] | None


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

    def __init__(self, fn: Callable[P, R], config: TuneConfig) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)
        self.target = Target.of(fn)
        self.config = config.for_function(
            accepts_seed=self.target.accepts_seed, qualname=fn.__qualname__
        )

    @property
    def options(self) -> Mapping[str, object]:
        """The decorator's options, as checked and stored (read-only)."""
        return self.config.as_dict()

    @property
    def study_name(self) -> str:
        return self.config.study_name or self.fn.__name__

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
        fresh: bool = False,
        allow_changed: bool = False,
        executor: Executor | None = None,
        **train_kwargs: object,
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
            fresh: start the study over: a stored study of this name is first renamed
                ``NAME.old-<time>`` (its trials are kept there, never deleted).
            allow_changed: resume although the train function's code, its parameters or these
                ``train_kwargs`` differ from the ones the study was made with (refused by
                default with one line saying what changed); the change is recorded.
            executor: run the workers as jobs of this ``concurrent.futures.Executor`` instead:
                a Dask client's ``client.get_executor()``, ``autolr.ray.RayExecutor()``, a
                ``ProcessPoolExecutor``... ``workers`` jobs are submitted (default: the
                executor's ``max_workers``); the storage must reach every machine of it.
            **train_kwargs: passed to every call of the train function (pickled for ``workers``).

        Returns:
            The :class:`autolr.Result` of the study.

        Example:
            >>> import autolr
            >>> @autolr.tune(n_trials=2, sampler="random", storage="sqlite:///:memory:",
            ...              show_progress_bar=False)
            ... def train(lr: float, epochs: int = 1) -> float:
            ...     return lr * epochs
            >>> _ = train.run(epochs=1)
            >>> _ = train.run(epochs=2, allow_changed=True)  # doctest: +SKIP
        """
        try:
            return self._run(
                n_trials=n_trials, timeout=timeout, show_progress_bar=show_progress_bar,
                n_jobs=n_jobs, workers=workers, executor=executor, fresh=fresh,
                allow_changed=allow_changed, train_kwargs=train_kwargs,
            )
        except KeyboardInterrupt:
            # Ctrl-C: the loop has recorded the trial and said how to resume; the traceback
            # through the user's training library (torch, ...) says nothing more.
            raise KeyboardInterrupt from None

    def _run(
        self,
        *,
        n_trials: int | None,
        timeout: float | None,
        show_progress_bar: bool | None,
        n_jobs: int,
        workers: int | None,
        executor: Executor | None,
        fresh: bool,
        allow_changed: bool,
        train_kwargs: dict[str, object],
    ) -> Result:
        given = {"n_trials": n_trials, "timeout": timeout, "show_progress_bar": show_progress_bar}
        config = self.config.replace(**{k: v for k, v in given.items() if v is not None})
        config = config.replace(fresh=fresh, allow_changed=allow_changed)
        self.target.check_kwargs(train_kwargs)
        fingerprint = Fingerprint.of(self.fn, train_kwargs)
        _target.check_not_importing()
        procs, n_jobs = _scaleout.check_workers(workers, n_jobs)
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(
                f"executor: expected a concurrent.futures.Executor (e.g. a Dask client's "
                f"get_executor()), got {type(executor).__name__}"
            )
        if isinstance(executor, ThreadPoolExecutor):
            raise ValueError(
                "executor: a ThreadPoolExecutor runs jobs in this process; use n_jobs= for threads"
            )
        if procs or executor is not None:
            if executor is not None:
                procs = _scaleout.executor_size(executor, procs)
            url = _scaleout.process_storage(config.storage)
            spec = _target.locate(self.fn, self)
            _target.check_importable(spec)
            config = dataclasses.replace(config, storage=url)
            study = _scaleout.run_many(
                config, self.study_name, spec, job=worker_job, executor=executor, workers=procs,
                kwargs=train_kwargs, default_lr=self.target.default_lr, fingerprint=fingerprint,
            )
            result = Result(study)
            record_recommendation(study, result)
            return result
        try:
            return self._run_here(config, n_jobs, train_kwargs, fingerprint)
        except Exception as exc:
            if _storage.is_write_error(exc):
                raise _storage.write_error(exc, config.storage) from exc
            raise

    def _run_here(
        self,
        config: TuneConfig,
        n_jobs: int,
        kwargs: Mapping[str, object],
        fingerprint: Fingerprint | None = None,
    ) -> Result:
        """Run the loop in ``n_jobs`` threads of this process until the study is complete."""
        opened = open_study(
            config, self.study_name, default_lr=self.target.default_lr, fingerprint=fingerprint
        )
        say_if_complete(opened)
        study, config, spec = opened.study, opened.config, opened.spec
        deadline = None if config.timeout is None else time.monotonic() + config.timeout
        total = study_total(config) if spec is None else expected_trials(spec)
        finished = Slots.of(views(study.get_trials(deepcopy=False))).finished
        bar = ProgressBar(
            total=total, desc=study.study_name, show=config.show_progress_bar, initial=finished
        )
        run = Run(
            study=study,
            config=config if spec is not None else dataclasses.replace(config, n_trials=total),
            target=self.target,
            kwargs=kwargs,
            worker=_liveness.worker_id(),
            deadline=deadline,
            progress=bar.update,
        )
        def loop(stop: threading.Event | None = None) -> None:
            if spec is None:
                run_loop(run, stop)
            else:
                run_search(run, spec, stop)

        try:
            if n_jobs > 1:
                _scaleout.run_threads(loop, n_jobs)
            else:
                loop()
        finally:
            bar.close()
        result = Result(study)
        if not _liveness.in_worker_job():  # the parent of the jobs records it once, at the end
            record_recommendation(study, result)  # shown in optuna-dashboard
        return result


def load_tuned(spec: str) -> Tuned[..., object]:
    """Import ``path/to/train.py:train`` or ``package.module:train`` and return it as a Tuned.

    A plain function (not decorated) is wrapped with :func:`autolr.tune`'s defaults.
    """
    obj = _target.import_spec(spec)
    if isinstance(obj, Tuned):
        return obj
    if callable(obj):
        return tune(obj)
    raise TypeError(f"worker: {spec!r} is a {type(obj).__name__}, expected a function")


def worker_job(header: Mapping[str, object], kwargs_blob: bytes) -> None:
    """One worker of ``run(workers=k)`` or ``run(executor=...)``, wherever the executor runs it:
    import the train function named in ``header``, and run it on the shared study."""
    if header.get("parent") == os.getpid():
        raise RuntimeError(
            "executor: it ran a worker job in the process that called run(); workers need "
            "processes of their own (use n_jobs= for threads)"
        )
    for p in reversed(list(header["sys_path"])):  # type: ignore[call-overload]
        if p not in sys.path:
            sys.path.insert(0, p)
    os.environ["AUTOLR_WORKER_INDEX"] = str(header["index"])
    os.environ[_scaleout.CHILD_ENV] = "1"  # no run(workers=) inside a worker
    # The parent created the tables and checked the schema version of this very storage.
    os.environ[_storage.SCHEMA_CHECKED_ENV] = _storage.schema_token(str(header["storage"]))
    tuned = load_tuned(str(header["spec"]))
    kwargs = pickle.loads(kwargs_blob)  # only now: may hold classes defined in the script
    config = dataclasses.replace(
        tuned.config, storage=str(header["storage"]), study_name=str(header["study_name"])
    )
    Tuned(tuned.fn, config).run(
        n_trials=header["n_trials"], timeout=header["timeout"],  # type: ignore[arg-type]
        show_progress_bar=False, **kwargs,
    )


@overload
def tune(fn: Callable[P, R], /) -> Tuned[P, R]: ...
@overload
def tune(
    *,
    n_trials: int | None = ...,
    timeout: float | None = ...,
    study_name: str | None = ...,
    storage: StorageArg = ...,
    lr: LRArg | None = ...,
    direction: Literal["minimize", "maximize"] = ...,
    seed: int | None = ...,
    sampler: str | optuna.samplers.BaseSampler | None = ...,
    points_per_decade: int | None = ...,
    pruner: PrunerArg = ...,
    stability: Stability | None = ...,
    catch: tuple[type[Exception], ...] = ...,
    recheck: int | None = ...,
    show_progress_bar: bool | None = ...,
) -> Callable[[Callable[P, R]], Tuned[P, R]]: ...


def tune(
    fn: Callable[P, R] | None = None,
    /,
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    study_name: str | None = None,
    storage: StorageArg = None,
    lr: LRArg | None = None,
    direction: Literal["minimize", "maximize"] = "minimize",
    seed: int | None = None,
    sampler: str | optuna.samplers.BaseSampler | None = None,
    points_per_decade: int | None = None,
    pruner: PrunerArg = None,
    stability: Stability | None = None,
    catch: tuple[type[Exception], ...] = (Exception,),
    recheck: int | None = None,
    show_progress_bar: bool | None = None,
) -> Tuned[P, R] | Callable[[Callable[P, R]], Tuned[P, R]]:
    """Turn a train function into a learning-rate study that is stored, resumable and explained.

    The function must accept ``lr`` (the learning rate to try) as a keyword argument and return
    the value to minimize (or maximize); it may accept ``trial`` to suggest more parameters, and
    it should call :func:`autolr.report` once per epoch: that is what lets autolr pause a run,
    compare it with the others and resume only the promising ones.

    autolr's search (the default, ``sampler="auto"``) measures ``1e-3`` and the function's own
    default lr (``def train(lr=1.0)``) first, brackets the best region on a grid half a decade
    apart, grows the range a decade at a time while the best sits on its edge (from ``1e-7`` to
    ``1e2``), resumes the five most promising runs to a quarter of a run and the best two to
    the end: about ten trials and four runs of compute (``docs/stability.md``). A function that reports nothing
    gets full runs on a coarser grid.

    Args:
        n_trials: at most this many trials (default: as many as the search needs, about ten;
            with ``sampler="tpe"``/``"random"``/``"grid"``: the study-wide total, default 12).
            Resuming runs only the missing ones.
        timeout: seconds per :meth:`Tuned.run` call after which no new trial starts.
        study_name: defaults to the function's name.
        storage: an Optuna storage URL or object; default ``$AUTOLR_STORAGE`` or
            ``sqlite:///studies/autolr.db``.
        lr: a fixed ``(low, high)`` range (a pick on its edge is warned about); default: the
            search chooses and grows its range (``(1e-5, 1e-1)`` for an Optuna sampler).
        direction: ``"minimize"`` (losses) or ``"maximize"`` (accuracies).
        seed: makes a fresh study sample the same learning rates on every machine (Optuna
            samplers; autolr's search is deterministic).
        sampler: ``"auto"`` (default: autolr's search), ``"tpe"``, ``"random"``, ``"grid"`` or
            any Optuna sampler. Grid mode runs 1e-4, 1e-3, 1e-2, 1e-1 (the classic comparison)
            unless ``lr`` or ``points_per_decade`` is given; it runs each grid point once.
        points_per_decade: grid mode only: ``k`` points per decade over the ``lr`` range.
        pruner: with autolr's search: ``False`` runs every trial to its end (no pausing). With
            an Optuna sampler: ``None`` for autolr's peer rule, ``False`` for none, an
            :class:`autolr.Pruning` or any Optuna pruner.
        stability: an :class:`autolr.Stability`; ``Stability(enabled=False)`` switches it off.
        catch: exceptions recorded as a failed trial (the study goes on); others propagate.
        recheck: with an Optuna sampler, how many of the study's last trials re-run the best
            candidates with another ``seed`` (the function must accept ``seed``); default 2
            when it does. autolr's search finishes its two best candidates instead.
        show_progress_bar: default: on when stderr is a terminal.

    Example:
        >>> import autolr
        >>> @autolr.tune(storage="sqlite:///:memory:", show_progress_bar=False)
        ... def train(lr: float) -> float:
        ...     loss = 1.0
        ...     for epoch in range(8):
        ...         loss = loss * (1 - min(lr * 20, 0.9)) + 10 * lr**2  # too high costs too
        ...         autolr.report(loss, step=epoch)
        ...     return loss
        >>> result = train.run()
        >>> 0.01 < result.best_lr < 0.1
        True
    """
    config = TuneConfig.build(
        n_trials=n_trials,
        timeout=timeout,
        study_name=study_name,
        storage=storage,
        lr=lr,
        direction=direction,
        seed=seed,
        sampler=sampler,
        points_per_decade=points_per_decade,
        pruner=pruner,
        stability=stability,
        catch=catch,
        recheck=recheck,
        show_progress_bar=show_progress_bar,
    )

    def wrap(f: Callable[P, R]) -> Tuned[P, R]:
        if not callable(f):
            raise TypeError(f"tune: expected a function, got {type(f).__name__}")
        return Tuned(f, config)

    return wrap(fn) if fn is not None else wrap
