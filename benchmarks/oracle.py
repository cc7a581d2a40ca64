"""The oracle: mean validation loss over 3 seeds on a dense log grid of learning rates.

``python -m benchmarks.oracle`` trains every task at every grid point with seeds 0, 1, 2 and
writes ``benchmarks/oracle.json``; ``--task NAME`` (repeatable) recomputes only those tasks and
keeps the others. The benchmark reads the cached file; it never recomputes the oracle itself.

Values are :meth:`benchmarks.tasks.Task.score` values (non-finite or worse than a trivial
predictor becomes the task's ``cap``), so the mean over seeds is always finite. The oracle best is
the grid point with the lowest mean; a tuner's choice is judged by retraining it with the same
three seeds (see :mod:`benchmarks.quality`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.tasks import TASKS, Task

ORACLE_PATH = Path(__file__).with_name("oracle.json")
"""Where the cached oracle lives (committed)."""

SEEDS: tuple[int, ...] = (0, 1, 2)
"""Training seeds of the oracle and of every retrain at a tuner's chosen lr."""

GRID: tuple[float, ...] = tuple(float(x) for x in np.logspace(-5, 0, 41))
"""41 learning rates, 8 per decade, 1e-5 .. 1 (the range every tuner searches)."""

__all__ = ["ORACLE_PATH", "SEEDS", "GRID", "task_config", "evaluate", "compute", "load", "main"]


def task_config(task: Task) -> dict[str, Any]:
    """The task's settings that change its losses (stored with the oracle to detect staleness)."""
    cfg = asdict(task)
    cfg.pop("loader", None)
    cfg.pop("description", None)
    cfg["hidden"] = list(task.hidden)
    return cfg


def evaluate(task: Task, lr: float, seeds: tuple[int, ...] = SEEDS) -> list[float]:
    """Scored final validation losses of full runs at ``lr``, one per seed."""
    return [task.score(task.train(lr, seed=s)) for s in seeds]


def compute(task: Task, grid: tuple[float, ...] = GRID) -> dict[str, Any]:
    """Evaluate ``task`` on the whole grid; returns the JSON-ready entry for the task."""
    t0 = time.perf_counter()
    values = [evaluate(task, lr) for lr in grid]
    means = [float(np.mean(v)) for v in values]
    best = int(np.argmin(means))
    return {
        "config": task_config(task),
        "lrs": list(grid),
        "values": values,
        "mean": means,
        "best_lr": grid[best],
        "best_value": means[best],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def load(path: Path = ORACLE_PATH) -> dict[str, Any]:
    """Read the cached oracle; raises ``FileNotFoundError`` with the command that makes it."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; run `python -m benchmarks.oracle`")
    data: dict[str, Any] = json.loads(path.read_text())
    for name, entry in data.get("tasks", {}).items():
        if name in TASKS and entry.get("config") != task_config(TASKS[name]):
            print(
                f"warning: oracle for {name} was made with other task settings; "
                f"run `python -m benchmarks.oracle --task {name}`",
                file=sys.stderr,
            )
    return data


def lookup(entry: dict[str, Any], lr: float) -> list[float] | None:
    """The oracle's per-seed values at ``lr`` if ``lr`` is a grid point (rel. tol 1e-9)."""
    for grid_lr, vals in zip(entry["lrs"], entry["values"]):
        if math.isclose(grid_lr, lr, rel_tol=1e-9):
            return list(vals)
    return None


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m benchmarks.oracle [--task NAME ...] [--out PATH]``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.oracle", description=__doc__)
    parser.add_argument("--task", action="append", choices=sorted(TASKS), help="only this task")
    parser.add_argument("--out", type=Path, default=ORACLE_PATH, help="JSON file to write")
    args = parser.parse_args(argv)
    names = args.task or list(TASKS)
    data: dict[str, Any] = {"tasks": {}}
    if args.out.exists():
        data = json.loads(args.out.read_text())
    import optuna
    import torch

    data["meta"] = {
        "seeds": list(SEEDS),
        "grid": "numpy.logspace(-5, 0, 41)",
        "score": "final val loss; non-finite or above the task's cap counts as cap",
        "updated": time.strftime("%Y-%m-%d"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "command": "python -m benchmarks.oracle" + "".join(f" --task {n}" for n in args.task or []),
    }
    for name in names:
        entry = compute(TASKS[name])
        data["tasks"][name] = entry
        data["tasks"] = {n: data["tasks"][n] for n in TASKS if n in data["tasks"]}
        args.out.write_text(json.dumps(data, indent=1) + "\n")
        print(
            f"{name}: best lr {entry['best_lr']:.3g} mean {entry['best_value']:.4g} "
            f"({entry['seconds']} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
