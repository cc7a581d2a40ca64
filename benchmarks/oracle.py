"""The oracle: every task trained on a dense log grid of learning rates, cached.

``python -m benchmarks.oracle [--task NAME ...] [--jobs N]`` trains every task at 65 learning
rates (8 per decade over 1e-6 .. 1e2, so the search's half- and quarter-decade points are grid
points) with seeds 0, 1, 2, 3 and writes two committed files:

- ``benchmarks/oracle.json``: per task and lr, the scored final value of seeds 0-2 and their
  mean (:meth:`~benchmarks.tasks.Task.score`: non-finite or worse than a trivial predictor counts
  as the trivial predictor's value, so a NaN does not make means meaningless), the best lr, the
  task's settings (to detect a stale cache);
- ``benchmarks/curves.json.gz``: every report of every run, seeds 0-3, rounded to 5
  significant digits (``null`` for a non-finite value), for :mod:`benchmarks.replay`.

Compute is saved past the cliff: once the lr is above the best so far and every seed at two
consecutive grid lrs ended non-finite (or a loss above 10x the trivial one), the higher lrs are
recorded as diverged without training (``"diverged_from"``; their curves are stored as
``[null]`` and replayed as NaN at every epoch). ``--task`` recomputes only those tasks and keeps the others.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import hashlib
import inspect
import json
import math
import sys
import time
from collections.abc import Sequence
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.tasks import TASKS, Task

ORACLE_PATH = Path(__file__).with_name("oracle.json")
CURVES_PATH = Path(__file__).with_name("curves.json.gz")

GRID: tuple[float, ...] = tuple(float(f"{x:.6g}") for x in np.logspace(-6, 2, 65))
"""65 learning rates, 8 per decade, 1e-6 .. 1e2."""

SEEDS: tuple[int, ...] = (0, 1, 2)
"""Seeds whose mean judges a learning rate."""

CURVE_SEEDS: tuple[int, ...] = (0, 1, 2, 3)
"""Seeds whose curves are recorded for the replay (seed index = tuner's seed % 4)."""

__all__ = ["ORACLE_PATH", "CURVES_PATH", "GRID", "SEEDS", "CURVE_SEEDS", "task_config",
           "compute", "load", "load_curves", "main"]


def task_config(task: Task) -> dict[str, Any]:
    """What changes a task's numbers: its settings and its train function's source (docstring
    left out, so editing a task's description does not make its cache stale)."""
    src = inspect.getsource(task.fn)
    if task.fn.__doc__:
        src = src.replace(task.fn.__doc__, "")
    src += task.settings
    return {
        "epochs": task.epochs,
        "direction": task.direction,
        "cap": task.cap,
        "default_lr": task.default_lr,
        "source_sha": hashlib.sha256(src.encode()).hexdigest()[:12],
    }


def _r(v: float) -> float | None:
    return float(f"{v:.5g}") if math.isfinite(v) else None


def _blown(task: Task, v: float) -> bool:
    if not math.isfinite(v):
        return True
    return task.direction == "minimize" and v > 10 * task.cap


def compute(name: str) -> dict[str, Any]:
    """Train ``name`` on the whole grid; returns ``{"oracle": ..., "curves": ...}``."""
    task = TASKS[name]
    t0 = time.perf_counter()
    values: list[list[float]] = []
    curves: list[list[list[float | None]]] = []
    means: list[float] = []
    diverged_from: int | None = None
    streak = 0
    sign = 1.0 if task.direction == "minimize" else -1.0
    for i, lr in enumerate(GRID):
        if diverged_from is not None:
            values.append([task.cap for _ in SEEDS])
            means.append(task.cap)
            curves.append([[None] for _ in CURVE_SEEDS])
            continue
        finals, runs = [], []
        for s in CURVE_SEEDS:
            rep: list[float | None] = []
            final = task.train(lr, seed=s, report=lambda v, e: rep.append(_r(float(v))))
            finals.append(final)
            runs.append(rep)
        scored = [task.score(f) for f in finals[: len(SEEDS)]]
        values.append([float(f"{v:.6g}") for v in scored])
        means.append(float(np.mean(scored)))
        curves.append(runs)
        best_i = min(range(len(means)), key=lambda k: sign * means[k])
        streak = streak + 1 if (i > best_i and all(_blown(task, f) for f in finals)) else 0
        if streak >= 2:
            diverged_from = i + 1
    best = min(range(len(GRID)), key=lambda k: (sign * means[k], k))
    entry = {
        "config": task_config(task),
        "values": values,
        "mean": [float(f"{m:.6g}") for m in means],
        "best_lr": GRID[best],
        "best_value": float(f"{means[best]:.6g}"),
        "diverged_from": None if diverged_from is None else GRID[diverged_from]
        if diverged_from < len(GRID) else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return {"name": name, "oracle": entry, "curves": {"epochs": task.epochs, "runs": curves}}


def load(path: Path = ORACLE_PATH) -> dict[str, Any]:
    """The cached oracle; warns on stderr about tasks whose settings changed since."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `python -m benchmarks.oracle`")
    data: dict[str, Any] = json.loads(path.read_text())
    for name, entry in data.get("tasks", {}).items():
        if name in TASKS and entry.get("config") != task_config(TASKS[name]):
            print(f"warning: oracle for {name} is stale; run "
                  f"`python -m benchmarks.oracle --task {name}`", file=sys.stderr)
    return data


def load_curves(path: Path = CURVES_PATH) -> dict[str, Any]:
    """The recorded curves: ``{"grid", "seeds", "tasks": {name: {"epochs", "runs"}}}`` where
    ``runs[lr index][seed index]`` is the list of reports (``None`` = non-finite)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `python -m benchmarks.oracle`")
    out: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    return out


def _write(oracle: dict[str, Any], curves: dict[str, Any]) -> None:
    order = [n for n in TASKS if n in oracle["tasks"]]
    oracle["tasks"] = {n: oracle["tasks"][n] for n in order}
    curves["tasks"] = {n: curves["tasks"][n] for n in order if n in curves["tasks"]}
    ORACLE_PATH.write_text(json.dumps(oracle, indent=None, separators=(",", ":")) + "\n")
    CURVES_PATH.write_bytes(gzip.compress(
        json.dumps(curves, separators=(",", ":")).encode(), compresslevel=9, mtime=0))

def nearest(logs: Sequence[float], lr: float) -> int:
    """The index of the grid point (``logs``: sorted log10 lrs) nearest ``lr`` in log10, clamped
    to the grid's ends: how a picked lr is snapped for judging and for replay alike."""
    x = math.log10(lr)
    i = bisect.bisect_left(logs, x)
    if i <= 0:
        return 0
    if i >= len(logs):
        return len(logs) - 1
    return i if logs[i] - x < x - logs[i - 1] else i - 1



def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m benchmarks.oracle [--task NAME ...] [--jobs N]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.oracle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", action="append", choices=sorted(TASKS), help="only this task")
    parser.add_argument("--jobs", type=int, default=1, help="processes (at most 2 here)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs: expected an integer >= 1")
    names = args.task or list(TASKS)
    oracle: dict[str, Any] = {"tasks": {}}
    curves: dict[str, Any] = {"tasks": {}}
    if ORACLE_PATH.exists() and CURVES_PATH.exists():
        oracle = json.loads(ORACLE_PATH.read_text())
        curves = load_curves()
    import optuna
    import torch

    oracle["meta"] = {
        "grid": "8 per decade, 1e-6 .. 1e2 (65)",
        "seeds": list(SEEDS),
        "score": "final value; non-finite or worse than the task's trivial value (cap) = cap",
        "updated": time.strftime("%Y-%m-%d"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "command": "python -m benchmarks.oracle" + "".join(f" --task {n}" for n in args.task or []),
    }
    curves["grid"], curves["seeds"] = list(GRID), list(CURVE_SEEDS)
    t_all = time.perf_counter()

    def take(res: dict[str, Any]) -> None:
        oracle["tasks"][res["name"]] = res["oracle"]
        curves["tasks"][res["name"]] = res["curves"]
        _write(oracle, curves)
        e = res["oracle"]
        print(f"{res['name']}: best lr {e['best_lr']:.3g} mean {e['best_value']:.4g} "
              f"diverged from {e['diverged_from']} ({e['seconds']} s; "
              f"{time.perf_counter() - t_all:.0f} s so far)", flush=True)

    if args.jobs == 1:
        for n in names:
            take(compute(n))
    else:
        with get_context("spawn").Pool(args.jobs) as pool:
            for res in pool.imap_unordered(compute, names):
                take(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
