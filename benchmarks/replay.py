"""Replayed tasks: the oracle's recorded curves played back, nothing trained.

A :class:`ReplayTask` looks like a task (``name``, ``epochs``, ``default_lr``, ``direction``)
but its ``train(lr, *, seed, report=None)`` snaps ``lr`` to the nearest point of the oracle grid
(8 per decade, 1e-6 .. 1e2; outside it, the nearest end) and reports the recorded curve of seed
index ``seed % 4`` there, one value per epoch (``nan`` for a non-finite one; a run past the
recorded cliff, which the oracle did not train, reports ``nan`` at every epoch: a tuner that does
not stop on NaN pays the whole run, as it would for real). It counts every report made: a tuner's **cost** is
``reports / epochs``, in full runs, whether its runs were pruned, paused or finished.

Caveat, said wherever the numbers are shown: the replayed seeds 0-3 include the oracle's judging
seeds 0-2, and lrs are snapped to 1/16 decade; a replayed tuner is judged exactly as a real one
would be on those seeds.

``python -m benchmarks.replay --task NAME --lr 0.01 --seed 0`` prints one replayed curve.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from benchmarks import oracle as oracle_mod
from benchmarks.tasks import TASKS

ReportFn = Callable[[float, int], None]

__all__ = ["ReplayTask", "Curves", "main"]


class Curves:
    """The recorded curves (loaded once) and :class:`ReplayTask` factory."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data = data if data is not None else oracle_mod.load_curves()
        self.grid = [float(x) for x in self.data["grid"]]
        self.logs = [math.log10(x) for x in self.grid]

    def task(self, name: str) -> ReplayTask:
        return ReplayTask(name, self.data["tasks"][name], self.grid, self.logs)

    @property
    def names(self) -> list[str]:
        return list(self.data["tasks"])


class ReplayTask:
    """One task's recorded curves, trainable by any tuner; counts the reports it makes."""

    def __init__(self, name: str, entry: dict[str, Any], grid: list[float],
                 logs: list[float]) -> None:
        task = TASKS[name]
        self.name = name
        self.epochs = int(entry["epochs"])
        self.default_lr = task.default_lr
        self.direction = task.direction
        self.cap = task.cap
        self.runs: list[list[list[float | None]]] = entry["runs"]
        self.grid, self.logs = grid, logs
        self.reports = 0
        self.started = 0

    @property
    def cost(self) -> float:
        """Reports made so far, in full runs."""
        return self.reports / self.epochs

    def index(self, lr: float) -> int:
        """The grid point nearest ``lr`` in log10."""
        return oracle_mod.nearest(self.logs, lr)

    def curve(self, lr: float, seed: int) -> list[float]:
        """The recorded reports at the snapped ``lr`` for seed index ``seed % 4``."""
        runs = self.runs[self.index(lr)]
        run = runs[seed % len(runs)]
        if len(run) < self.epochs and all(v is None for v in run):
            return [math.nan] * self.epochs  # past the recorded cliff: NaN for the whole run
        return [math.nan if v is None else float(v) for v in run]

    def train(self, lr: float, *, seed: int, report: ReportFn | None = None) -> float:
        """Replay a run: ``report(value, epoch)`` per recorded epoch; the last value."""
        self.started += 1
        values = self.curve(lr, seed)
        for epoch, v in enumerate(values, start=1):
            self.reports += 1
            if report is not None:
                report(v, epoch)
        return values[-1]

    def score(self, value: float) -> float:
        return TASKS[self.name].score(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rt = Curves().task(args.task)
    vals = rt.curve(args.lr, args.seed)
    print(f"{args.task} at grid lr {rt.grid[rt.index(args.lr)]:.4g}, seed index "
          f"{args.seed % 4}: " + " ".join(f"{v:.4g}" for v in vals))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
