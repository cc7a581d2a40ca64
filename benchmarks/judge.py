"""The hit rule: is a chosen learning rate good enough, on each task's own scale?

Every value is first *oriented* so that lower is better: a loss as it is, an accuracy as its
error rate ``1 - accuracy`` (so "10% worse" means 10% more errors, not 10 points of accuracy).
A pick is judged by the oracle mean (seeds 0-2) at the chosen lr snapped to the nearest grid
point in log10 (the grid is 8 per decade, so the snap moves an lr by at most 1/16 decade):

- ``best``: the best oriented mean on the grid; ``median``: the median over the 65 grid points
  (diverged points count as the trivial predictor's value);
- **hit** iff ``value <= best + max(0.10 * |best|, 0.02 * (median - best))``: within 10% of the
  best, or within 2% of the spread between the best and a typical lr, whichever is larger. The
  second term matters when the best is near 0 (a task whose best loss is 1e-4 is not made
  trivially easy by an absolute tolerance, nor impossibly hard by a relative one);
- **regret** ``(value - best) / (median - best)``: 0 at the best, 1 at a typical grid lr, larger
  when worse than typical (the "loss ratio" columns, comparable across tasks).

A tuner that returns no lr scores the trivial value (a miss).
``python -m benchmarks.judge`` prints the per-task table that shows the rule separates good
from bad picks: the best lr, the threshold, the share of grid lrs that are hits and whether
1e-3 and the task's own default are hits.
"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import dataclass
from typing import Any

from benchmarks import oracle as oracle_mod
from benchmarks.split import half_of, tasks_of
from benchmarks.tasks import TASKS

REL = 0.10
"""Hit tolerance relative to the best value."""
SPREAD = 0.02
"""Hit tolerance as a share of ``median - best``."""

__all__ = ["REL", "SPREAD", "Verdict", "TaskJudge", "Judge", "main"]


@dataclass(frozen=True)
class Verdict:
    """How a pick did: its snapped grid lr, oriented value, hit, regret."""

    lr: float | None
    grid_lr: float | None
    value: float
    hit: bool
    regret: float


class TaskJudge:
    """The oracle of one task, oriented, with its threshold."""

    def __init__(self, name: str, entry: dict[str, Any]) -> None:
        task = TASKS[name]
        self.name = name
        self.lrs = list(oracle_mod.GRID)
        self.logs = [math.log10(x) for x in self.lrs]
        self.maximize = task.direction == "maximize"
        self.values = [self.orient(m) for m in entry["mean"]]
        self.trivial = self.orient(task.cap)
        self.best = min(self.values)
        self.best_lr = self.lrs[self.values.index(self.best)]
        self.median = statistics.median(self.values)
        self.threshold = self.best + max(REL * abs(self.best), SPREAD * (self.median - self.best))

    def orient(self, v: float) -> float:
        return 1.0 - v if self.maximize else v

    def index(self, lr: float) -> int:
        """The grid point nearest to ``lr`` in log10 (clamped to the grid's ends)."""
        return oracle_mod.nearest(self.logs, lr)

    def __call__(self, lr: float | None) -> Verdict:
        if lr is None or not math.isfinite(lr) or lr <= 0:
            v, glr = self.trivial, None
        else:
            i = self.index(lr)
            v, glr = self.values[i], self.lrs[i]
        spread = self.median - self.best
        regret = (v - self.best) / spread if spread > 0 else (0.0 if v <= self.best else math.inf)
        return Verdict(lr, glr, v, v <= self.threshold + 1e-12, regret)

    def hit_share(self) -> float:
        return sum(v <= self.threshold + 1e-12 for v in self.values) / len(self.values)

    def hit_range(self) -> tuple[float, float]:
        """The lowest and highest grid lr that are hits."""
        hits = [lr for lr, v in zip(self.lrs, self.values) if v <= self.threshold + 1e-12]
        return min(hits), max(hits)


class Judge:
    """Every task's :class:`TaskJudge`, from the cached oracle."""

    def __init__(self, oracle: dict[str, Any] | None = None) -> None:
        oracle = oracle if oracle is not None else oracle_mod.load()
        self.tasks = {n: TaskJudge(n, e) for n, e in oracle["tasks"].items() if n in TASKS}

    def __call__(self, task: str, lr: float | None) -> Verdict:
        return self.tasks[task](lr)


def table(judge: Judge, names: list[str]) -> str:
    """Markdown: per task, the rule's numbers and the verdict on 1e-3 and the default."""
    out = [
        "| task | half | dir | default lr | best lr | best | median | threshold "
        "| grid hits | hit range | 1e-3 | default |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | :---: | :---: |",
    ]
    for n in names:
        if n not in judge.tasks:
            out.append(f"| {n} | {half_of(n)} | (no oracle yet) | | | | | | | | | |")
            continue
        tj, task = judge.tasks[n], TASKS[n]
        lo, hi = tj.hit_range()
        d, e = tj(task.default_lr), tj(1e-3)
        out.append(
            f"| {n} | {half_of(n)} | {'acc' if tj.maximize else 'loss'} | {task.default_lr:g} "
            f"| {tj.best_lr:.3g} | {tj.best:.4g} | {tj.median:.4g} | {tj.threshold:.4g} "
            f"| {tj.hit_share():.0%} | {lo:.2g}..{hi:.2g} "
            f"| {'hit' if e.hit else f'no ({e.regret:.2f})'} "
            f"| {'hit' if d.hit else f'no ({d.regret:.2f})'} |"
        )
    return "\n".join(out)


def tasks_table(judge: Judge, names: list[str]) -> str:
    """Markdown: every task with its half, family, summary, default lr and oracle best lr."""
    out = ["| task | half | family | what | epochs | metric | default lr | oracle best lr |",
           "| --- | --- | --- | --- | ---: | --- | ---: | ---: |"]
    for n in names:
        t = TASKS[n]
        best = f"{judge.tasks[n].best_lr:.3g}" if n in judge.tasks else "-"
        what = t.summary.replace("|", "/")
        out.append(f"| {n} | {half_of(n)} | {t.family} | {what} | {t.epochs} "
                   f"| {'accuracy (max)' if t.direction == 'maximize' else 'loss'} "
                   f"| {t.default_lr:g} | {best} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.judge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--half", choices=("tuning", "heldout", "both"), default="both")
    parser.add_argument("--tasks", action="store_true", help="print the task table instead")
    args = parser.parse_args(argv)
    if args.tasks:
        print(tasks_table(Judge(), list(tasks_of(args.half))))
        return 0
    print("Accuracy tasks are judged on the error rate 1 - accuracy; values are oriented "
          "(lower is better). `no (r)`: a miss with regret r.\n")
    print(table(Judge(), list(tasks_of(args.half))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
