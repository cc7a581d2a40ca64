"""On every report: does the trial stop now, and why? The judge the loop gives each trial.

:class:`StopJudge` is the :class:`autolr._context.Judge` of autolr's runs. In order:

1. the trial's own curve (:class:`~autolr._stability.StabilityMonitor`): ``nan``, ``inf``,
   ``diverged``, ``oscillating`` (with stability switched off, a non-finite report still stops
   the trial as ``nan`` / ``inf``);
2. the other trials (:class:`~autolr._pruning.PeerPruner`, built once per trial from the
   finished trials): ``underperforming``, but never while a rise waits for its confirming
   report (a trial blowing up is recorded as diverged, not as merely trailing);
3. a user's Optuna pruner, through ``trial.should_prune()`` (reports are flushed first, since
   Optuna's pruners read storage): ``underperforming``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import optuna

from autolr._config import TuneConfig
from autolr._context import TrialContext
from autolr._pruning import PeerPruner, Pruning
from autolr._schema import StopReason, TrialView, counted
from autolr._stability import StabilityMonitor


@dataclass
class StopJudge:
    """Stability, then the peers, then an Optuna pruner (see the module docstring)."""

    monitor: StabilityMonitor | None = None
    peers: PeerPruner | None = None
    optuna_pruner: bool = False

    def __call__(self, ctx: TrialContext, step: int, value: float) -> StopReason | None:
        monitor = self.monitor
        if monitor is not None:
            found = monitor.update(step, value)
            if found is not None:
                return StopReason(found)
        elif not math.isfinite(value):
            return StopReason.non_finite(value)
        suspect = monitor is not None and monitor.suspect
        if not suspect and self.peers is not None and self.peers.should_stop(step, value):
            return StopReason.UNDERPERFORMING
        if self.optuna_pruner:
            ctx.flush()
            if ctx.trial.should_prune():
                return StopReason.UNDERPERFORMING
        return None


def judge_for(config: TuneConfig, finished: Sequence[TrialView]) -> StopJudge:
    """The judge of the next trial of a run with ``config``, given the study's trials so far."""
    monitor = (
        StabilityMonitor(config.stability, direction=config.direction)
        if config.stability.enabled
        else None
    )
    return StopJudge(
        monitor=monitor,
        peers=peer_rule(config, finished),
        optuna_pruner=isinstance(config.pruner, optuna.pruners.BasePruner),
    )


def peer_rule(config: TuneConfig, trials: Sequence[TrialView]) -> PeerPruner | None:
    """The ``underperforming`` rule for the next trial, from the trials that count so far."""
    if not isinstance(config.pruner, Pruning) or not config.pruner.enabled:
        return None
    done = [t for t in trials if counted(t)]
    return PeerPruner(
        config.pruner,
        [t.intermediate for t in done],
        [t.state for t in done],
        direction=config.direction,
    )
