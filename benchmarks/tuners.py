"""The tuners the benchmark compares, all searching the same learning-rate range.

A tuner is a callable ``tuner(task, *, seed, n_trials) -> Choice``: it trains the task as often
as it likes through a :class:`Meter` (which counts every epoch trained and hands out a fresh
training seed per run, so a lucky seed can fool a tuner the way it fools a user) and returns the
learning rate it would recommend. The benchmark then judges that learning rate by retraining it
with the oracle's seeds; the tuner's own numbers are not trusted.

Tuners:

- ``autolr``: ``autolr.tune`` with its defaults (trials, sampler, pruning, stability,
  recommendation), only the range, seed and an in-memory storage given; ``result.best_lr``.
- ``autolr_range``: the same with autolr's default search range instead of the common one.
- ``autolr_noprune``: ``autolr`` with ``pruner=False`` (same sampler and trials, no
  ``underperforming`` pruning; the stability monitor still stops unstable runs).
- ``autolr_argmin``: ``autolr``'s study, but the pick is the raw argmin of one run
  (``result.recommendation.raw_best_lr``) instead of the stability-aware recommendation.
- ``tpe``: raw Optuna ``TPESampler(seed)``, no pruning, 20 trials, ``study.best_params``.
- ``tpe_median``: the same with ``MedianPruner()``, ``trial.report`` + ``should_prune`` per epoch.
- ``tpe_hyperband``: the same with ``HyperbandPruner(min_resource=1, max_resource=epochs)``.
- ``random``: raw Optuna ``RandomSampler(seed)``, 20 trials.
- ``grid3``: the classic 0.1 / 0.01 / 0.001, best final loss.
- ``default``: lr = 1e-3 without trying anything (cost 0).
- ``find_lr``: ``autolr.torch.find_lr`` (LR range test, 100 steps) suggestion alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmarks.tasks import Task

if TYPE_CHECKING:
    import optuna

LR_RANGE: tuple[float, float] = (1e-5, 1.0)
"""The range every tuner searches (the oracle grid spans the same)."""

N_TRIALS = 20
"""Trials of the raw Optuna tuners (study-wide)."""

__all__ = ["LR_RANGE", "N_TRIALS", "Choice", "Meter", "Tuner", "TUNERS", "available"]


@dataclass(frozen=True)
class Choice:
    """What a tuner recommends and what it spent.

    Attributes:
        lr: the recommended learning rate (``None`` if the tuner could not say).
        epochs: epochs trained by the tuner in total (the finder counts optimizer steps as
            fractions of an epoch).
        runs: training runs started.
        note: anything worth showing (e.g. why there is no lr).
    """

    lr: float | None
    epochs: float
    runs: int
    note: str = ""


class Meter:
    """Counts the epochs a tuner trains and hands out a new training seed per run."""

    def __init__(self, task: Task, tuner_seed: int) -> None:
        self.task = task
        self.epochs = 0.0
        self.runs = 0
        self._next_seed = 10_000 * (tuner_seed + 1)

    def new_seed(self) -> int:
        """A training seed never used by this tuner run (and never one of the oracle's)."""
        self.runs += 1
        self._next_seed += 1
        return self._next_seed

    def train(
        self, lr: float, *, seed: int | None = None, report: Callable[[float, int], None] | None = None
    ) -> float:
        """One counted training run; ``report`` is called after each counted epoch."""
        s = self.new_seed() if seed is None else seed
        if seed is not None:
            self.runs += 1

        def counted(value: float, epoch: int) -> None:
            self.epochs += 1
            if report is not None:
                report(value, epoch)

        return self.task.train(lr, seed=s, report=counted)

    def choice(self, lr: float | None, note: str = "") -> Choice:
        """Package the result."""
        return Choice(lr=lr, epochs=self.epochs, runs=self.runs, note=note)


Tuner = Callable[..., Choice]


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _best_lr(study: optuna.Study) -> float | None:
    try:
        return float(study.best_params["lr"])
    except ValueError:  # no COMPLETE trial with a finite value
        return None


def _optuna_tuner(
    sampler: str, pruner: str
) -> Callable[..., Choice]:
    def run(task: Task, *, seed: int, n_trials: int = N_TRIALS) -> Choice:
        import optuna

        _quiet_optuna()
        meter = Meter(task, seed)
        smp: optuna.samplers.BaseSampler = (
            optuna.samplers.TPESampler(seed=seed)
            if sampler == "tpe"
            else optuna.samplers.RandomSampler(seed=seed)
        )
        prn: optuna.pruners.BasePruner
        if pruner == "median":
            prn = optuna.pruners.MedianPruner()
        elif pruner == "hyperband":
            prn = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=task.epochs)
        else:
            prn = optuna.pruners.NopPruner()
        study = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(), sampler=smp, pruner=prn
        )

        def objective(trial: optuna.Trial) -> float:
            lr = trial.suggest_float("lr", *LR_RANGE, log=True)
            if pruner == "none":
                return meter.train(lr)

            def report(value: float, epoch: int) -> None:
                trial.report(value, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

            return meter.train(lr, report=report)

        study.optimize(objective, n_trials=n_trials, catch=(Exception,))
        return meter.choice(_best_lr(study))

    return run


def _grid3(task: Task, *, seed: int, n_trials: int = N_TRIALS) -> Choice:
    meter = Meter(task, seed)
    results = {lr: meter.train(lr) for lr in (0.1, 0.01, 0.001)}
    finite = {lr: v for lr, v in results.items() if math.isfinite(v)}
    return meter.choice(min(finite, key=finite.__getitem__) if finite else None)


def _default(task: Task, *, seed: int, n_trials: int = N_TRIALS) -> Choice:
    return Choice(lr=1e-3, epochs=0.0, runs=0, note="no search")


def _autolr_tuner(
    lr_range: tuple[float, float] | None, *, pruner: Any = None, pick: str = "best_lr"
) -> Callable[..., Choice]:
    def run(task: Task, *, seed: int, n_trials: int | None = None) -> Choice:
        import optuna

        import autolr

        _quiet_optuna()
        meter = Meter(task, seed)

        def report(value: float, epoch: int) -> None:
            autolr.report(value, step=epoch)

        def train(lr: float, seed: int | None = None) -> float:
            # A seed autolr asks for (re-checks) becomes a fresh training seed: tuner runs never
            # use the oracle's seeds 0-2 that judge the pick.
            return meter.train(lr, report=report)

        options: dict[str, Any] = {
            "seed": seed,
            "storage": optuna.storages.InMemoryStorage(),
            "study_name": f"{task.name}-{seed}",
            "show_progress_bar": False,
        }
        if lr_range is not None:
            options["lr"] = lr_range
        if n_trials is not None:
            options["n_trials"] = n_trials
        if pruner is not None:
            options["pruner"] = pruner
        result = autolr.tune(**options)(train).run()
        lr = result.best_lr if pick == "best_lr" else result.recommendation.raw_best_lr
        return meter.choice(None if lr is None else float(lr))

    return run


def _find_lr(task: Task, *, seed: int, n_trials: int = N_TRIALS) -> Choice:
    import autolr.torch

    model, opt, loss_fn, batches = task.parts(1e-3, seed=10_000 * (seed + 1))
    num_iter = 100
    res = autolr.torch.find_lr(model, opt, loss_fn, batches, num_iter=num_iter, seed=seed)
    steps = len(res.lrs)
    epochs = steps / len(batches)
    lr = res.suggestion
    return Choice(
        lr=None if lr is None else min(max(float(lr), LR_RANGE[0]), LR_RANGE[1]),
        epochs=epochs,
        runs=1,
        note=f"{steps} steps, {res.stop_reason}",
    )


def _autolr_finder(task: Task, *, seed: int, n_trials: int | None = None) -> Choice:
    """Finder-seeded search: a range test picks the range, autolr searches it (issue 5)."""
    import autolr.torch

    model, opt, loss_fn, batches = task.parts(1e-3, seed=10_000 * (seed + 1) + 5_000)
    res = autolr.torch.find_lr(model, opt, loss_fn, batches, num_iter=100, seed=seed)
    finder_epochs = len(res.lrs) / len(batches)
    try:
        low, high = res.search_range()
        low, high = max(low, LR_RANGE[0]), min(high, LR_RANGE[1])
        if not low < high:
            raise ValueError("empty range")
        note = f"range {low:.2g}-{high:.2g}"
    except ValueError:
        (low, high), note = LR_RANGE, "finder gave no range"
    choice = _autolr_tuner((low, high))(task, seed=seed, n_trials=n_trials)
    return Choice(lr=choice.lr, epochs=choice.epochs + finder_epochs, runs=choice.runs + 1,
                  note=note)


TUNERS: dict[str, Tuner] = {
    "autolr": _autolr_tuner(LR_RANGE),
    "autolr_range": _autolr_tuner(None),
    "autolr_noprune": _autolr_tuner(LR_RANGE, pruner=False),
    "autolr_argmin": _autolr_tuner(LR_RANGE, pick="argmin"),
    "tpe": _optuna_tuner("tpe", "none"),
    "tpe_median": _optuna_tuner("tpe", "median"),
    "tpe_hyperband": _optuna_tuner("tpe", "hyperband"),
    "random": _optuna_tuner("random", "none"),
    "grid3": _grid3,
    "default": _default,
    "find_lr": _find_lr,
    "autolr_finder": _autolr_finder,
}
"""Every tuner by name, in table order."""


def available(name: str) -> str | None:
    """``None`` if the tuner can run here, else why not (shown as a "pending" line)."""
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
