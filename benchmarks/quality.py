"""Quality per unit of compute: every tuner on every task, judged against the oracle.

For each task, tuner and tuner seed the tuner picks a learning rate. The pick is judged by
retraining it with the oracle's three seeds (cached per ``(task, lr)``; a pick on the oracle grid
reuses the oracle's runs):

- ``cost``: epochs the tuner trained / epochs of one full training run ("runs of compute");
- ``ratio``: mean scored val loss of the retrains / the oracle's best mean;
- ``hit``: the retrained mean is within 10% of the oracle best, plus 0.01 absolute.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks import oracle as oracle_mod
from benchmarks.tasks import TASKS
from benchmarks.tuners import TUNERS, available

HIT_REL = 0.10
"""A pick is a hit when its mean loss is at most ``best * (1 + HIT_REL) + HIT_ABS``."""
HIT_ABS = 0.01

__all__ = ["HIT_REL", "HIT_ABS", "Row", "Retrainer", "run", "render"]


@dataclass(frozen=True)
class Row:
    """One tuner run on one task with one tuner seed, and how its pick did."""

    task: str
    tuner: str
    seed: int
    lr: float | None
    cost: float
    runs: int
    mean: float
    ratio: float
    hit: bool
    seconds: float
    note: str = ""


class Retrainer:
    """Mean scored loss over the oracle seeds at a learning rate, cached per ``(task, lr)``."""

    def __init__(self, oracle: dict[str, Any]) -> None:
        self.oracle = oracle
        self.cache: dict[tuple[str, float], float] = {}
        self.trained = 0

    def mean(self, task_name: str, lr: float | None) -> float:
        """The retrained mean (the task's cap when ``lr`` is ``None`` or not finite)."""
        task = TASKS[task_name]
        if lr is None or not math.isfinite(lr) or lr <= 0:
            return task.cap
        key = (task_name, float(lr))
        if key not in self.cache:
            vals = oracle_mod.lookup(self.oracle["tasks"][task_name], lr)
            if vals is None:
                vals = oracle_mod.evaluate(task, lr)
                self.trained += len(vals)
            self.cache[key] = statistics.fmean(vals)
        return self.cache[key]


def run(
    task_names: Sequence[str],
    tuner_names: Sequence[str],
    seeds: Sequence[int],
    *,
    n_trials: int | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> tuple[list[Row], dict[str, str]]:
    """Run every tuner on every task with every seed.

    Args:
        task_names: tasks to run (must be in the oracle).
        tuner_names: tuners to compare; unavailable ones are skipped and reported.
        seeds: tuner seeds.
        n_trials: overrides every tuner's trial count (quick mode); ``None`` keeps defaults
            (20 for the raw Optuna tuners, autolr's own default for autolr).
        log: progress lines go here.

    Returns:
        The rows and ``{tuner: why it did not run}`` for the tuners skipped.
    """
    oracle = oracle_mod.load()
    missing = [t for t in task_names if t not in oracle["tasks"]]
    if missing:
        raise KeyError(f"no oracle for {missing}; run `python -m benchmarks.oracle`")
    skipped = {name: why for name in tuner_names if (why := available(name)) is not None}
    retrain = Retrainer(oracle)
    rows: list[Row] = []
    for task_name in task_names:
        task = TASKS[task_name]
        best = float(oracle["tasks"][task_name]["best_value"])
        for tuner_name in tuner_names:
            if tuner_name in skipped:
                continue
            for seed in seeds:
                kwargs: dict[str, Any] = {"seed": seed}
                if n_trials is not None:
                    kwargs["n_trials"] = n_trials
                t0 = time.perf_counter()
                note = ""
                try:
                    choice = TUNERS[tuner_name](task, **kwargs)
                    lr, epochs, runs, note = choice.lr, choice.epochs, choice.runs, choice.note
                except Exception as e:  # a tuner that crashes is a result, not a benchmark bug
                    lr, epochs, runs = None, float("nan"), 0
                    note = f"crashed: {type(e).__name__}: {e}"[:120]
                seconds = time.perf_counter() - t0
                mean = retrain.mean(task_name, lr)
                rows.append(
                    Row(
                        task=task_name,
                        tuner=tuner_name,
                        seed=seed,
                        lr=lr,
                        cost=epochs / task.epochs,
                        runs=runs,
                        mean=mean,
                        ratio=mean / best if best > 0 else float("inf"),
                        hit=mean <= best * (1 + HIT_REL) + HIT_ABS,
                        seconds=seconds,
                        note=note,
                    )
                )
                log(
                    f"{task_name:22s} {tuner_name:14s} seed {seed}: lr {_fmt_lr(lr)} "
                    f"cost {epochs / task.epochs:.2f} ratio {rows[-1].ratio:.3g} ({seconds:.1f} s)"
                )
    return rows, skipped


# -- tables -------------------------------------------------------------------------------------


def _fmt_lr(lr: float | None) -> str:
    return "-" if lr is None else f"{lr:.3g}"


def _fmt_ratio(r: float) -> str:
    return f"{r:.3g}" if math.isfinite(r) else "inf"


def render(rows: Sequence[Row], skipped: dict[str, str], oracle: dict[str, Any]) -> str:
    """Markdown: a summary per tuner, a hit matrix per task, and the per-task detail."""
    tuners = list(dict.fromkeys(r.tuner for r in rows))
    tasks = list(dict.fromkeys(r.task for r in rows))
    out: list[str] = []
    out.append("### Summary per tuner\n")
    out.append("| tuner | mean cost (runs) | hits | worst ratio | median ratio | tuner time (s) |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for tu in tuners:
        rs = [r for r in rows if r.tuner == tu]
        costs = [r.cost for r in rs if math.isfinite(r.cost)]
        out.append(
            f"| {tu} | {statistics.fmean(costs) if costs else float('nan'):.2f} "
            f"| {sum(r.hit for r in rs)}/{len(rs)} "
            f"| {_fmt_ratio(max(r.ratio for r in rs))} "
            f"| {_fmt_ratio(statistics.median(r.ratio for r in rs))} "
            f"| {sum(r.seconds for r in rs):.1f} |"
        )
    for tu, why in skipped.items():
        out.append(f"| {tu} | {why} | | | | |")
    out.append("")
    out.append("### Hits per task (hits/seeds, mean cost in runs)\n")
    out.append("| tuner | " + " | ".join(tasks) + " |")
    out.append("| --- |" + " ---: |" * len(tasks))
    for tu in tuners:
        cells = []
        for ta in tasks:
            rs = [r for r in rows if r.tuner == tu and r.task == ta]
            cells.append(f"{sum(r.hit for r in rs)}/{len(rs)} ({statistics.fmean(r.cost for r in rs):.1f})")
        out.append(f"| {tu} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("### Per task\n")
    for ta in tasks:
        entry = oracle["tasks"][ta]
        best, best_lr = entry["best_value"], entry["best_lr"]
        out.append(
            f"**{ta}** ({TASKS[ta].description}); oracle best lr {best_lr:.3g}, "
            f"mean val loss {best:.4g}; hit if <= {best * (1 + HIT_REL) + HIT_ABS:.4g}\n"
        )
        out.append("| tuner | seed | chosen lr | cost (runs) | runs started | retrained mean | ratio | hit | note |")
        out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: | --- |")
        for r in rows:
            if r.task != ta:
                continue
            out.append(
                f"| {r.tuner} | {r.seed} | {_fmt_lr(r.lr)} | {r.cost:.2f} | {r.runs} "
                f"| {r.mean:.4g} | {_fmt_ratio(r.ratio)} | {'yes' if r.hit else 'no'} | {r.note} |"
            )
        out.append("")
    return "\n".join(out)
