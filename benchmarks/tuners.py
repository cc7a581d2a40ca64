"""The tuners the benchmark compares, all on replayed tasks (:mod:`benchmarks.replay`).

A tuner is ``tuner(task, *, seed) -> Choice``: it trains the :class:`~benchmarks.replay.
ReplayTask` as often as it likes (every report counts towards its cost) and returns the lr it
would recommend; :mod:`benchmarks.judge` judges that lr on the oracle. Runs at the same lr get
the next recorded seed (seed index ``tuner seed + k`` mod 4 for the k-th run there), so a lucky
seed can fool a tuner the way it fools a user. Every search spans the oracle's range
``1e-6 .. 1e2`` (autolr's own search chooses and grows its range itself, up to 1e-7 .. 1e2).

Tuners (``TUNERS``, in table order):

- ``autolr``: the real library, ``autolr.tune(storage=InMemoryStorage(), seed=s,
  show_progress_bar=False, direction=...)`` with its defaults on a train function whose
  signature default is ``lr=task.default_lr`` (the search anchors on it); ``result.best_lr``.
- ``autolr_full``: the same with ``pruner=False`` (full runs, no pausing).
- ``tpe``: Optuna ``TPESampler(seed)``, 20 trials, no pruning, ``study.best_params``.
- ``tpe_median``: TPE, 20 trials, ``MedianPruner()``, ``report`` + ``should_prune`` per epoch.
- ``tpe_hyperband``: TPE, 30 trials, ``HyperbandPruner(min_resource=1, max_resource=epochs)``.
- ``gp10`` / ``gp20``: Optuna ``GPSampler(seed, n_startup_trials=4)``, 10 / 20 trials, lr=1e-3
  enqueued first (with the default 10 startup trials, 10 trials would be random search).
- ``random``: ``RandomSampler(seed)``, 20 trials.
- ``grid3``: 0.1, 0.01, 0.001 full runs, the best final value.
- ``lr_1e-3``: 1e-3 without a search (cost 0). ``default``: the task's own default lr (cost 0).
- ``find_lr``: ``autolr.torch.find_lr`` (LR range test, 100 steps from 1e-6 to 1e2) on the
  task's real model/optimizer/batches, one test per task and seed, its suggestion; cost = steps
  / (batches per epoch * epochs). Real training, not replay; ``n/a`` for tasks that do not expose
  ``parts`` (hand-written loops, schedules, sequence models).
- ``sh_plain``: the reference "plain coarse-to-fine successive halving": 9 lrs half a decade
  apart 1e-5 .. 1e-1 at 1/8 of the epochs; the best 3 plus the next lower one resume to half a
  run; a quarter decade either side of the winner joins at half a run; the best 2 finish.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.replay import ReplayTask

LR_RANGE: tuple[float, float] = (1e-6, 1e2)
"""The range the Optuna tuners search: the oracle's grid."""

__all__ = ["LR_RANGE", "Choice", "TUNERS", "QUICK_TUNERS", "needs_parts", "available"]


@dataclass(frozen=True)
class Choice:
    """A tuner's recommendation and what it spent (``cost`` in full runs; ``lr`` None: it could
    not say; ``na``: the tuner does not apply to this task)."""

    lr: float | None
    cost: float
    note: str = ""
    na: bool = False


class Seeds:
    """Round-robin seed per grid point, starting at the tuner's seed."""

    def __init__(self, task: ReplayTask, seed: int) -> None:
        self.task, self.seed, self.count = task, seed, {}  # type: ignore[var-annotated]

    def __call__(self, lr: float) -> int:
        i = self.task.index(lr)
        k = self.count.get(i, 0)
        self.count[i] = k + 1
        return self.seed + k


def _quiet() -> None:
    import warnings

    import optuna

    warnings.filterwarnings("ignore", category=RuntimeWarning)  # Optuna's nanmin on all-NaN
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _oriented(task: ReplayTask, v: float) -> float:
    if not math.isfinite(v):
        return math.inf
    return v if task.direction == "minimize" else -v


# -- autolr ------------------------------------------------------------------------------------


def _autolr(**options: Any) -> Callable[..., Choice]:
    def run(task: ReplayTask, *, seed: int) -> Choice:
        import optuna

        import autolr

        _quiet()
        seeds = Seeds(task, seed)
        default = task.default_lr

        def train(lr: float = default) -> float:
            return task.train(lr, seed=seeds(lr), report=lambda v, e: autolr.report(v, step=e))

        result = autolr.tune(
            storage=optuna.storages.InMemoryStorage(), seed=seed, show_progress_bar=False,
            direction=task.direction, study_name=f"{task.name}-{seed}", **options,
        )(train).run()
        try:
            lr: float | None = float(result.best_lr)
        except ValueError:  # no trial finished
            lr = None
        return Choice(lr, task.cost, f"{task.started} trials")

    return run


# -- Optuna ------------------------------------------------------------------------------------


def _optuna(sampler: str, pruner: str, n_trials: int) -> Callable[..., Choice]:
    def run(task: ReplayTask, *, seed: int) -> Choice:
        import optuna

        _quiet()
        seeds = Seeds(task, seed)
        smp: optuna.samplers.BaseSampler
        if sampler == "tpe":
            smp = optuna.samplers.TPESampler(seed=seed)
        elif sampler == "gp":
            smp = optuna.samplers.GPSampler(seed=seed, n_startup_trials=4)
        else:
            smp = optuna.samplers.RandomSampler(seed=seed)
        prn: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
        if pruner == "median":
            prn = optuna.pruners.MedianPruner()
        elif pruner == "hyperband":
            prn = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=task.epochs)
        study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), sampler=smp,
                                    pruner=prn, direction=task.direction)
        if sampler == "gp":
            study.enqueue_trial({"lr": 1e-3})

        def objective(trial: optuna.Trial) -> float:
            lr = trial.suggest_float("lr", *LR_RANGE, log=True)

            def report(v: float, epoch: int) -> None:
                if pruner != "none":
                    trial.report(v, epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned()

            return task.train(lr, seed=seeds(lr), report=report)

        study.optimize(objective, n_trials=n_trials, catch=(Exception,))
        try:
            lr: float | None = float(study.best_params["lr"])
        except ValueError:
            lr = None
        return Choice(lr, task.cost)

    return run


# -- fixed picks -------------------------------------------------------------------------------


def _grid3(task: ReplayTask, *, seed: int) -> Choice:
    vals = {lr: _oriented(task, task.train(lr, seed=seed)) for lr in (0.1, 0.01, 0.001)}
    ok = {lr: v for lr, v in vals.items() if v < math.inf}
    return Choice(min(ok, key=ok.__getitem__) if ok else None, task.cost)


def _fixed(which: str) -> Callable[..., Choice]:
    def run(task: ReplayTask, *, seed: int) -> Choice:
        return Choice(1e-3 if which == "1e-3" else task.default_lr, 0.0, "no search")

    return run


# -- find_lr (real training) -------------------------------------------------------------------


def needs_parts(name: str) -> bool:
    """Whether the task exposes model/optimizer/batches (``find_lr`` applies)."""
    from benchmarks.tasks import TASKS

    return TASKS[name].parts_fn is not None


def _find_lr(task: ReplayTask, *, seed: int) -> Choice:
    from benchmarks.tasks import TASKS

    real = TASKS[task.name]
    if real.parts_fn is None:
        return Choice(None, 0.0, "n/a: no model/optimizer/loader parts", na=True)
    import autolr.torch

    model, opt, loss_fn, batches = real.parts(1e-3, seed=seed)
    res = autolr.torch.find_lr(model, opt, loss_fn, batches, num_iter=100, start_lr=LR_RANGE[0],
                               end_lr=LR_RANGE[1], seed=seed)
    steps = len(res.lrs)
    lr = res.suggestion
    return Choice(
        None if lr is None else min(max(float(lr), LR_RANGE[0]), LR_RANGE[1]),
        steps / len(batches) / real.epochs, f"{steps} steps",
    )


# -- the reference successive halving ----------------------------------------------------------


def _sh_plain(task: ReplayTask, *, seed: int) -> Choice:
    """Coarse-to-fine successive halving with paused runs; cost counts reports made."""
    n_ep = task.epochs
    b0 = max(1, math.ceil(n_ep / 8))
    b1 = max(b0 + 1, math.ceil(n_ep / 2)) if n_ep > b0 else n_ep
    curves: dict[float, list[float]] = {}
    made: dict[float, int] = {}

    def run_to(x: float, budget: int) -> float:
        if x not in curves:
            curves[x] = task.curve(10**x, seed)
            made[x] = 0
            task.started += 1
        c = curves[x]
        upto = min(budget, len(c))
        if upto > made[x]:
            task.reports += upto - made[x]
            made[x] = upto
        head = c[:upto]
        return _oriented(task, head[-1]) if all(math.isfinite(v) for v in head) else math.inf

    xs = [-5.0 + 0.5 * k for k in range(9)]
    v0 = {x: run_to(x, b0) for x in xs}
    ranked = sorted((x for x in xs if v0[x] < math.inf), key=lambda x: (v0[x], x))
    if not ranked:
        return Choice(None, task.cost, "every lr diverged")
    keep = ranked[:3]
    below = [x for x in ranked if x < min(keep)]
    if below:
        keep.append(max(below))
    v1 = {x: run_to(x, b1) for x in keep}
    win = min(keep, key=lambda x: (v1[x], x))
    for x in (round(win - 0.25, 6), round(win + 0.25, 6)):
        v1[x] = run_to(x, b1)
    finalists = sorted((x for x in v1 if v1[x] < math.inf), key=lambda x: (v1[x], x))[:2]
    vf = {x: run_to(x, n_ep) for x in finalists}
    ok = {x: v for x, v in vf.items() if v < math.inf}
    if not ok:
        return Choice(None, task.cost, "finalists diverged")
    return Choice(10 ** min(ok, key=lambda x: (ok[x], x)), task.cost)


TUNERS: dict[str, Callable[..., Choice]] = {
    "autolr": _autolr(),
    "autolr_full": _autolr(pruner=False),
    "sh_plain": _sh_plain,
    "tpe": _optuna("tpe", "none", 20),
    "tpe_median": _optuna("tpe", "median", 20),
    "tpe_hyperband": _optuna("tpe", "hyperband", 30),
    "gp10": _optuna("gp", "none", 10),
    "gp20": _optuna("gp", "none", 20),
    "random": _optuna("random", "none", 20),
    "grid3": _grid3,
    "lr_1e-3": _fixed("1e-3"),
    "default": _fixed("default"),
    "find_lr": _find_lr,
}
"""Every tuner by name, in table order."""

QUICK_TUNERS: tuple[str, ...] = ("autolr", "sh_plain", "tpe_median", "grid3", "default")
"""The tuners ``--quick`` runs."""


def available(name: str) -> str | None:
    """``None`` if the tuner can run here, else why not (used by :mod:`benchmarks.overhead`)."""
    try:
        if name.startswith("autolr"):
            import autolr

            autolr.tune  # noqa: B018
            autolr.report  # noqa: B018
        elif name == "find_lr":
            import autolr.torch

            autolr.torch.find_lr  # noqa: B018
    except (ImportError, AttributeError) as e:
        return f"pending: {type(e).__name__}: {e}"
    return None
