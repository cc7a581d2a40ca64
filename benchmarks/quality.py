"""Quality per unit of compute: every tuner on every replayed task, judged on the oracle.

For each task, tuner and tuner seed the tuner picks an lr on the replayed task
(:mod:`benchmarks.replay`); :mod:`benchmarks.judge` says whether it is a hit and its regret.
``cost`` is reports made / epochs of one full run (full runs of compute). Tables are per half
(:mod:`benchmarks.split`): hits, mean and worst cost, median and worst regret.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import get_context

from benchmarks.judge import Judge
from benchmarks.replay import Curves
from benchmarks.split import half_of
from benchmarks.tuners import TUNERS

__all__ = ["Row", "run", "render"]


@dataclass(frozen=True)
class Row:
    """One tuner run on one task with one tuner seed, and how its pick did."""

    task: str
    half: str
    tuner: str
    seed: int
    lr: float | None
    cost: float
    value: float
    hit: bool
    regret: float
    seconds: float
    note: str = ""
    na: bool = False


@functools.lru_cache(maxsize=1)
def _curves() -> Curves:
    return Curves()


@functools.lru_cache(maxsize=1)
def _judge() -> Judge:
    return Judge()


def _unit(args: tuple[str, str, tuple[int, ...]]) -> list[Row]:
    task_name, tuner_name, seeds = args
    rows = []
    for seed in seeds:
        rt = _curves().task(task_name)
        t0 = time.perf_counter()
        try:
            ch = TUNERS[tuner_name](rt, seed=seed)
            lr, cost, note, na = ch.lr, ch.cost, ch.note, ch.na
        except Exception as e:  # a tuner that crashes is a result, not a benchmark bug
            lr, cost, note, na = None, rt.cost, f"crashed: {type(e).__name__}: {e}"[:120], False
        v = _judge()(task_name, lr)
        rows.append(Row(task_name, half_of(task_name), tuner_name, seed, lr, cost, v.value,
                        v.hit, v.regret, time.perf_counter() - t0, note, na))
    return rows


def run(
    task_names: Sequence[str],
    tuner_names: Sequence[str],
    seeds: Sequence[int],
    *,
    jobs: int = 1,
    log: Callable[[str], None] = lambda s: None,
) -> list[Row]:
    """Every tuner on every task with every seed (``jobs`` processes)."""
    units = [(t, tu, tuple(seeds)) for tu in tuner_names for t in task_names]
    rows: list[Row] = []

    def take(rs: list[Row]) -> None:
        rows.extend(rs)
        r = rs[0]
        log(f"{r.task:30s} {r.tuner:14s} hits {sum(x.hit for x in rs)}/{len(rs)} "
            f"cost {statistics.fmean(x.cost for x in rs):.2f} "
            f"({sum(x.seconds for x in rs):.1f} s)")

    if jobs <= 1:
        for u in units:
            take(_unit(u))
    else:
        with get_context("spawn").Pool(jobs) as pool:
            for rs in pool.imap_unordered(_unit, units):
                take(rs)
    order = {(tu, t): i for i, (t, tu, _) in enumerate(units)}
    rows.sort(key=lambda r: (order[(r.tuner, r.task)], r.seed))
    return rows


def _fmt_lr(lr: float | None) -> str:
    return "-" if lr is None else f"{lr:.3g}"


def _f(x: float, d: str = ".2f") -> str:
    return format(x, d) if math.isfinite(x) else "inf"


def summary(rows: Sequence[Row], tuners: Sequence[str]) -> str:
    """One line per tuner: hits, cost, regret (n/a rows left out and counted)."""
    out = [
        "| tuner | hits | hit % | mean cost (runs) | worst cost | median regret | worst regret "
        "| tuner time (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for tu in tuners:
        rs = [r for r in rows if r.tuner == tu and not r.na]
        na = sum(r.tuner == tu and r.na for r in rows)
        if not rs:
            out.append(f"| {tu} | n/a | | | | | | |")
            continue
        hits = sum(r.hit for r in rs)
        costs = [r.cost for r in rs]
        regrets = [r.regret for r in rs]
        note = f" ({na} n/a)" if na else ""
        out.append(
            f"| {tu} | {hits}/{len(rs)}{note} | {hits / len(rs):.0%} "
            f"| {statistics.fmean(costs):.2f} | {max(costs):.2f} "
            f"| {_f(statistics.median(regrets), '.3f')} | {_f(max(regrets), '.3f')} "
            f"| {sum(r.seconds for r in rs):.0f} |"
        )
    return "\n".join(out)


def per_task(rows: Sequence[Row], tuners: Sequence[str], tasks: Sequence[str]) -> str:
    """Hits per task and tuner (hits/seeds, mean cost), the worst case per task visible."""
    out = ["| task | " + " | ".join(tuners) + " |", "| --- |" + " ---: |" * len(tuners)]
    for ta in tasks:
        cells = []
        for tu in tuners:
            rs = [r for r in rows if r.tuner == tu and r.task == ta]
            if not rs or all(r.na for r in rs):
                cells.append("n/a")
                continue
            cells.append(f"{sum(r.hit for r in rs)}/{len(rs)} "
                         f"({statistics.fmean(r.cost for r in rs):.1f})")
        out.append(f"| {ta} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def picks(rows: Sequence[Row], tuner: str, tasks: Sequence[str]) -> str:
    """One tuner's picks per task and seed: lr, cost, regret, hit."""
    out = ["| task | seed | lr | cost | regret | hit | note |",
           "| --- | ---: | ---: | ---: | ---: | :---: | --- |"]
    for ta in tasks:
        for r in rows:
            if r.tuner == tuner and r.task == ta:
                out.append(f"| {ta} | {r.seed} | {_fmt_lr(r.lr)} | {r.cost:.2f} "
                           f"| {_f(r.regret, '.3f')} | {'yes' if r.hit else 'no'} | {r.note} |")
    return "\n".join(out)
