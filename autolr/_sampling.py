"""Which learning rate a new trial runs: the sampler, the planned first lrs, seeds, re-checks.

* :func:`build_sampler`: the Optuna sampler of one worker: ``tpe`` (default), ``random``,
  ``grid`` or the user's own, wrapped in :class:`PlannedSampler` so the study first measures the
  default lr 1e-3 and then the :func:`initial_design`;
* :func:`worker_seed`: each worker of a seeded study samples with its own seed;
* :func:`recheck_for`: the last trials of the budget re-run the best candidates with another seed.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna

from autolr._config import AUTO, SamplerSpec, TuneConfig
from autolr._grid import grid_points
from autolr._recommend import recommend, summaries
from autolr._schema import PARAM, TrialView
from autolr._space import DEFAULT_LR, LRRange

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial, TrialState

#: Points per decade of the default sampler's deterministic initial design (0: none).
DESIGN_PER_DECADE = 1
#: Random start-up trials of the default TPE sampler.
TPE_STARTUP_TRIALS = 5
#: Environment variables that carry a worker's index on common schedulers (first one set wins).
INDEX_ENVS = (
    "AUTOLR_WORKER_INDEX",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_PROCID",
    "JOB_COMPLETION_INDEX",  # Kubernetes indexed Job
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
)


# ----------------------------------------------------------------------------- samplers


def make_sampler(
    spec: SamplerSpec, seed: int | None, lr: LRRange, points_per_decade: int | None = None
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for ``sampler=`` (already checked by :mod:`autolr._config`)."""
    if isinstance(spec, optuna.samplers.BaseSampler):
        return spec
    if spec == "random" or spec == AUTO:  # autolr's search fixes every lr itself
        return optuna.samplers.RandomSampler(seed=seed)
    if spec == "grid":
        return optuna.samplers.GridSampler({PARAM: grid_points(lr, points_per_decade)}, seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP_TRIALS)


def initial_design(lr: LRRange, per_decade: int | None = None) -> tuple[float, ...]:
    """The learning rates the default sampler tries after 1e-3, before TPE takes over.

    The powers of ten inside the range, nearest to :data:`DEFAULT_LR` first and, at equal
    distance, the higher one first (``per_decade`` > 1 then adds the points between them in the
    same order): coverage of every decade instead of random start-up luck. A range holding fewer
    than three such points gets its two ends and its geometric middle instead. Measured in
    ``docs/stability.md`` ("Default tuning policy").

    Example:
        >>> initial_design(LRRange(1e-5, 1e-1))
        (0.001, 0.01, 0.0001, 0.1, 1e-05)
    """
    k = DESIGN_PER_DECADE if per_decade is None else per_decade
    if k <= 0:
        return ()
    lo, hi = math.log10(lr.low), math.log10(lr.high)
    eps = 1e-9
    points = [i / k for i in range(math.ceil(lo * k - eps), math.floor(hi * k + eps) + 1)]
    if len(points) < 3:
        points = [lo, (lo + hi) / 2, hi]
    centre = min(max(math.log10(DEFAULT_LR), lo), hi)
    points.sort(key=lambda x: (abs(x - round(x)) > eps, round(abs(x - centre), 9), -x))
    return tuple(min(max(10.0**x, lr.low), lr.high) for x in points)


class PlannedSampler(optuna.samplers.BaseSampler):
    """Delegates to ``base``, adapted to autolr's ask/tell loop.

    - The first trials run a plan: trial 0 the default ``first_lr`` (so the default is always
      measured), trials 1, 2, ... the ``design`` (see :func:`initial_design`). Keyed on the trial
      number, which storage hands out uniquely, so many workers starting a new study at once
      still run each point exactly once (:meth:`planned_lr` is the one place that decides).
    - Optuna's GridSampler calls ``study.stop()`` when its grid is used up, which only works
      inside ``study.optimize``; autolr's loop stops on its own total, so that call is dropped.
    """

    def __init__(
        self,
        base: optuna.samplers.BaseSampler,
        *,
        first_lr: float | None,
        design: Sequence[float] = (),
    ) -> None:
        self.base = base
        self.first_lr = first_lr
        self.plan = ((first_lr,) if first_lr is not None else ()) + tuple(
            x for x in design if x != first_lr
        )

    def planned_lr(self, trial: FrozenTrial) -> float | None:
        """The lr the plan owes this trial, or None when the base sampler decides."""
        return self.plan[trial.number] if trial.number < len(self.plan) else None

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:  # Any: Optuna's own signature
        if self.planned_lr(trial) is not None:
            return {}
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:  # Any: Optuna's own signature
        planned = self.planned_lr(trial)
        if planned is not None and param_name == PARAM:
            return planned
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        try:
            self.base.after_trial(study, trial, state, values)
        except RuntimeError as exc:
            if "Study.stop" not in str(exc):
                raise

    def reseed_rng(self) -> None:
        self.base.reseed_rng()


def build_sampler(config: TuneConfig) -> PlannedSampler:
    """This worker's sampler for a study run with ``config`` (seeded per worker)."""
    lr = config.lr_range
    base = make_sampler(config.sampler, worker_seed(config.seed), lr, config.points_per_decade)
    first = lr.contains(DEFAULT_LR) and not isinstance(base, optuna.samplers.GridSampler)
    design = initial_design(lr) if config.sampler == "tpe" else ()
    return PlannedSampler(base, first_lr=DEFAULT_LR if first else None, design=design)


# ----------------------------------------------------------------------------- seeds


def worker_index() -> int | None:
    """This worker's index from ``$AUTOLR_WORKER_INDEX`` or a scheduler (Slurm, Kubernetes, MPI)."""
    for name in INDEX_ENVS:
        raw = os.environ.get(name)
        if raw is not None and raw.strip().lstrip("-").isdigit():
            return int(raw)
    return None


def worker_seed(seed: int | None, index: int | None = None) -> int | None:
    """The sampler seed of worker ``index``: the study seed itself for worker 0 (or a lone run).

    Other workers get a seed derived from ``(seed, index)``, so k seeded workers do not sample the
    same learning rates (``autolr worker`` with no known index uses one derived from its pid).

    Example:
        >>> worker_seed(7, 0), worker_seed(None, 3)
        (7, None)
    """
    if seed is None:
        return None
    if index is None:
        index = worker_index()
    if not index:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:4], "little")


# ----------------------------------------------------------------------------- re-checks


@dataclass(frozen=True)
class Recheck:
    """A trial that re-runs trial ``of``'s params with another ``seed``."""

    params: Mapping[str, object]
    of: int
    seed: int


def recheck_for(
    trials: Sequence[TrialView],
    *,
    finished: int,
    n_trials: int,
    budget: int,
    direction: str,
    base_seed: int,
) -> Recheck | None:
    """The re-check the next trial should run, or None to sample as usual.

    The last ``budget`` trials of the study's ``n_trials`` re-run the recommendation's best
    candidates, each once, with a seed no trial used (``base_seed + 1``, ``+ 2``, ...).
    """
    if not budget or finished < n_trials - budget:
        return None
    done = {t.recheck_of for t in trials if t.recheck_of is not None}
    if len(done) >= budget:
        return None
    by_number = {t.number: t for t in trials}
    rec = recommend(summaries(trials), direction=direction)
    for number in rec.candidates:
        cand = by_number.get(number)
        if cand is None or number in done or cand.recheck_of is not None:
            continue
        return Recheck(params=dict(cand.params), of=number, seed=base_seed + 1 + len(done))
    return None


def study_total(config: TuneConfig) -> int:
    """A run's total of finished trials: ``n_trials``, at most the grid's size in grid mode."""
    if config.sampler == "grid":  # each grid point once
        return min(config.total, len(grid_points(config.lr_range, config.points_per_decade)))
    return config.total
