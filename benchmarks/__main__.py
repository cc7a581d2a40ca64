"""``python -m benchmarks``: every tuner on every replayed task, per half, printed as markdown.

Usage::

    python -m benchmarks                               # both halves, all tuners, 3 seeds
    python -m benchmarks --half heldout --tuner autolr --tuner tpe_hyperband
    python -m benchmarks --quick                       # smoke run (CI): 2 tasks, 1 seed
    nice -n 10 python -m benchmarks --jobs 2 --out benchmarks/RESULTS.md

Tasks are replayed from the oracle's recorded curves (``python -m benchmarks.oracle`` makes
them); picks are judged by :mod:`benchmarks.judge`; the halves come from
:mod:`benchmarks.split`. ``--overhead`` adds the per-report overhead section.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import judge as judge_mod
from benchmarks import quality
from benchmarks.split import HALVES, tasks_of
from benchmarks.tasks import QUICK_TASKS, TASKS
from benchmarks.tuners import LR_RANGE, QUICK_TUNERS, TUNERS


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, cwd=Path(__file__).parent,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", ":/autolr", ":/benchmarks/*.py",
             ":/benchmarks/tasks"],
            capture_output=True, text=True, check=True, cwd=Path(__file__).parent,
        ).stdout.strip()
        return out + (" (+ uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def header(argv: list[str]) -> str:
    """Date, machine, versions and the exact command."""
    import optuna
    import torch

    try:
        import autolr

        autolr_version = getattr(autolr, "__version__", "?")
    except ImportError:
        autolr_version = "not importable"
    cmd = "python -m benchmarks" + "".join(" " + shlex.quote(a) for a in argv)
    return "\n".join([
        f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs ({platform.platform()})",
        f"- python {platform.python_version()}, torch {torch.__version__}, "
        f"optuna {optuna.__version__}, autolr {autolr_version}, git {_git_commit()}",
        f"- command: `{cmd}`",
        "",
    ])


NOTES = f"""\
Tasks are **replayed** from the oracle's recorded curves (seeds 0-3, lrs snapped to the
8-per-decade grid; the replayed seeds include the judging seeds 0-2). cost = reports made /
epochs of one full run (full runs of compute; pruned and paused runs count what they
reported). hit = the oracle mean at the pick (snapped) within max(10% of the best, 2% of
median - best), accuracies as error rates; regret = (value - best) / (median - best), 0 = the
best, 1 = a typical grid lr (`python -m benchmarks.judge`). Optuna tuners search
{LR_RANGE[0]:g}..{LR_RANGE[1]:g} (the oracle's range); autolr chooses and grows its own range.
`find_lr` trains for real and applies only to tasks that expose model/optimizer/batches.
"""


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print (and optionally write) markdown."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: tasks {', '.join(QUICK_TASKS)}, 1 seed, tuners "
                        f"{', '.join(QUICK_TUNERS)}")
    parser.add_argument("--half", choices=("tuning", "heldout", "both"), default="both")
    parser.add_argument("--task", action="append", choices=sorted(TASKS), metavar="NAME",
                        help="only this task (repeatable)")
    parser.add_argument("--tuner", action="append", choices=list(TUNERS), metavar="NAME",
                        help=f"only this tuner (repeatable): {', '.join(TUNERS)}")
    parser.add_argument("--seeds", type=int, help="tuner seeds per task (default 3, quick 1)")
    parser.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--picks", action="append", default=[], metavar="TUNER",
                        help="also list this tuner's picks per task and seed (default autolr)")
    parser.add_argument("--overhead", action="store_true", help="add the overhead section")
    parser.add_argument("--out", type=Path, help="also write the markdown to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 1:
        parser.error("--seeds: expected an integer >= 1")
    if args.jobs < 1:
        parser.error("--jobs: expected an integer >= 1")

    if args.task:
        tasks = list(args.task)
    elif args.quick:
        tasks = list(QUICK_TASKS)
    else:
        tasks = list(tasks_of(args.half))
    seeds = list(range(args.seeds if args.seeds else (1 if args.quick else 3)))
    tuners = args.tuner or (list(QUICK_TUNERS) if args.quick else list(TUNERS))
    picks = args.picks or (["autolr"] if "autolr" in tuners else [])

    def log(line: str) -> None:
        if args.verbose:
            print(line, file=sys.stderr, flush=True)

    parts = ["## autolr benchmarks\n", header(argv), NOTES]
    t_start = time.perf_counter()
    rows = quality.run(tasks, tuners, seeds, jobs=args.jobs, log=log)
    judge = judge_mod.Judge()
    for half, names in HALVES.items():
        ts = [t for t in tasks if t in names]
        if not ts:
            continue
        title = "Tuning half" if half == "tuning" else "Held-out half"
        parts.append(f"## {title} ({len(ts)} tasks x {len(seeds)} tuner seeds)\n")
        hr = [r for r in rows if r.half == half]
        parts.append(quality.summary(hr, tuners) + "\n")
        parts.append(f"### {title}: hits per task (hits/seeds, mean cost in runs)\n")
        parts.append(quality.per_task(hr, tuners, ts) + "\n")
        for tu in picks:
            parts.append(f"### {title}: {tu}'s picks\n")
            parts.append(quality.picks(hr, tu, ts) + "\n")
    parts.append("## The hit rule per task (`python -m benchmarks.judge`)\n")
    parts.append(judge_mod.table(judge, tasks) + "\n")
    if args.overhead:
        from benchmarks import overhead

        n_tr, n_rep, n_start = (5, 20, 2) if args.quick else (30, 100, 5)
        parts.append(f"## Overhead ({n_tr} trials x {n_rep} reports, trivial objective)\n")
        parts.append(overhead.run(n_tr, n_rep, n_start))
    parts.append(f"total: {time.perf_counter() - t_start:.0f} s\n")
    text = "\n".join(parts)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
