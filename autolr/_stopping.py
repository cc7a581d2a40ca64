"""On every report: does the trial stop now, and why? The judge the loop gives each trial.

:class:`StopJudge` is the :class:`autolr._context.Judge` of autolr's runs. In order:

1. the trial's own curve (:class:`~autolr._stability.StabilityMonitor`): ``nan``, ``inf``,
   ``diverged``, ``oscillating`` (with stability switched off, a non-finite report still stops
   the trial as ``nan`` / ``inf``); then the study's healthy trials at the same report
   (:class:`~autolr._peers.PeerScale`): ``diverged`` when it sits ten times above all of them;
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
from autolr._peers import PeerScale
from autolr._schema import UNSTABLE, StopReason, TrialView, counted
from autolr._stability import StabilityMonitor


@dataclass
class StopJudge:
    """Stability, then the peers, then an Optuna pruner (see the module docstring)."""

    monitor: StabilityMonitor | None = None
    peers: PeerPruner | None = None
    optuna_pruner: bool = False
    scale: PeerScale | None = None

    def __call__(self, ctx: TrialContext, step: int, value: float) -> StopReason | None:
        monitor = self.monitor
        if monitor is not None:
            found = monitor.update(step, value)
            if found is not None:
                return StopReason(found)
        elif not math.isfinite(value):
            return StopReason.non_finite(value)
        if self.scale is not None and self.scale.judge(value) is not None:
            return StopReason.DIVERGED
        suspect = (monitor is not None and monitor.suspect) or (
            self.scale is not None and self.scale.strikes > 0
        )
        if not suspect and self.peers is not None and self.peers.should_stop(step, value):
            return StopReason.UNDERPERFORMING
        if self.optuna_pruner:
            ctx.flush()
            if ctx.trial.should_prune():
                return StopReason.UNDERPERFORMING
        return None


def judge_for(
    config: TuneConfig, finished: Sequence[TrialView], lr: float | None = None
) -> StopJudge:
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
        scale=peer_scale(config, finished, lr),
    )


def healthy(trials: Sequence[TrialView]) -> list[tuple[float, list[float]]]:
    """``(lr, curve)`` of the trials that went well enough to compare with: they count (or run),
    reported something, and were not stopped as unstable or as learning nothing."""
    bad = UNSTABLE | {StopReason.NO_PROGRESS}
    return [
        (t.lr, [v for _, v in t.curve])
        for t in trials
        if (counted(t) or t.state == "RUNNING") and t.intermediate and t.stop_reason not in bad
        and t.lr is not None
    ]


def peer_scale(
    config: TuneConfig, trials: Sequence[TrialView], lr: float | None
) -> PeerScale | None:
    """The cross-trial rule for the next trial, at ``lr`` (None when stability is switched off
    or the lr is not known before the trial starts, as with an Optuna sampler)."""
    if not config.stability.enabled or lr is None:
        return None
    return PeerScale.of(healthy(trials), lr=lr, direction=config.direction)


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
