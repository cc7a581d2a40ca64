"""Which learning rate a new trial runs: the sampler, the planned first lrs, seeds, re-checks.

* :func:`build_sampler`: the Optuna sampler of one worker: ``tpe`` (default), ``random``,
  ``grid`` or the user's own, wrapped in :class:`PlannedSampler` so the study first measures the
  default lr 1e-3 and then the :func:`initial_design`;
* :func:`worker_seed`: each worker of a seeded study samples with its own seed;
* :func:`recheck_for`: the last trials of the budget re-run the best candidates with another seed
  (:func:`recheck_budget` of them).
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
from autolr._schema import PARAM, TrialView, counted
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

    The planned first lrs (:func:`planned_lrs`) are not the sampler's business: the loop claims
    each one by value, as a trial created with the lr fixed (:func:`owed_lrs`), so a crash's
    retry never takes a planned point's place. Optuna's GridSampler calls ``study.stop()`` when
    its grid is used up, which only works inside ``study.optimize``; autolr's loop stops on its
    own total, so that call is dropped here.
    """

    def __init__(self, base: optuna.samplers.BaseSampler) -> None:
        self.base = base

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:  # Any: Optuna's own signature
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:  # Any: Optuna's own signature
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
    return PlannedSampler(base)


def planned_lrs(config: TuneConfig) -> tuple[float, ...]:
    """The lrs an Optuna sampler's study owes before its sampler decides: the default 1e-3
    (so it is always measured; not in grid mode, whose grid is the plan), then, for TPE, the
    :func:`initial_design`.

    Example:
        >>> planned_lrs(TuneConfig.build(sampler="tpe"))
        (0.001, 0.01, 0.0001, 0.1, 1e-05)
    """
    lr = config.lr_range
    if config.searching or config.sampler == "grid":
        return ()
    if isinstance(config.sampler, optuna.samplers.GridSampler):
        return ()
    first = (DEFAULT_LR,) if lr.contains(DEFAULT_LR) else ()
    design = initial_design(lr) if config.sampler == "tpe" else ()
    return first + tuple(x for x in design if x not in first)


def same_lr(a: float, b: float) -> bool:
    """Two stored learning rates are the same point (a float round trip may differ a little)."""
    return math.isclose(a, b, rel_tol=1e-9)


def claims(t: TrialView) -> bool:
    """Whether trial ``t`` stands for a planned point: not a crash's retry, not a re-check, not
    a trial given back as surplus (those are extra to the plan)."""
    return t.retry_of is None and t.recheck_of is None and t.stop_reason != "surplus"


def _lost(t: TrialView) -> bool:
    return t.finished and not counted(t)


def live_claims(trials: Sequence[TrialView], lr: float) -> list[TrialView]:
    """The trials that stand for the planned ``lr``: each claim, unless it was lost and so was
    its one retry (a point lost twice is owed again: the plan runs until it has a result)."""
    at = [t for t in trials if t.lr is not None and same_lr(t.lr, lr)]
    lost_retries = {t.retry_of for t in at if t.retry_of is not None and _lost(t)}
    return [t for t in at if claims(t) and not (_lost(t) and t.number in lost_retries)]


def owed_lrs(plan: Sequence[float], trials: Sequence[TrialView]) -> tuple[float, ...]:
    """The planned lrs no trial stands for yet (:func:`live_claims`), in plan order.

    Example:
        >>> t = TrialView(number=0, trial_id=0, state="FAIL", lr=1e-3, stop_reason="crashed")
        >>> owed_lrs((1e-3, 1e-2), [t])  # crashed: its retry is queued, the point is claimed
        (0.01,)
    """
    return tuple(p for p in plan if not live_claims(trials, p))

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


#: Re-checks never take the place of the planned points, nor leave fewer than this many lrs.
MIN_EXPLORED = 4


def recheck_budget(config: TuneConfig) -> int:
    """How many re-checks a study of ``config`` runs: ``recheck``, but never so many that fewer
    than the planned points (at least :data:`MIN_EXPLORED` lrs) are explored.

    Example:
        >>> [recheck_budget(TuneConfig.build(sampler="tpe", n_trials=n, recheck=2)) for n in (5, 6, 8)]
        [0, 1, 2]
    """
    explore = max(len(planned_lrs(config)), MIN_EXPLORED)
    return max(0, min(config.recheck or 0, study_total(config) - explore))


def recheck_for(
    trials: Sequence[TrialView],
    *,
    budget: int,
    direction: str,
    base_seed: int,
) -> Recheck | None:
    """The re-check the next trial should run, or None when no candidate is left to re-check.

    Re-runs the recommendation's best candidates, each once, with a seed no trial used
    (``base_seed + 1``, ``+ 2``, ...); at most ``budget`` of them. The loop asks once the study
    holds its ``n_trials - budget`` explored trials (finished or running: workers do not make
    the re-checks shrink; :func:`autolr._loop.next_step`).
    """
    done = {t.recheck_of for t in trials if t.recheck_of is not None and t.stop_reason != "surplus"}
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
