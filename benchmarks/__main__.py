"""``python -m benchmarks``: quality per compute and overhead, printed as markdown.

Usage::

    python -m benchmarks                      # full: 7 tasks x all tuners x 2 seeds + overhead
    python -m benchmarks --quick              # ~1 minute smoke run (CI)
    python -m benchmarks --only iris_sgd      # one task (repeatable); or --only overhead / quality
    python -m benchmarks --tuner autolr --tuner tpe --seeds 3 --out results.md
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

from benchmarks import oracle as oracle_mod
from benchmarks import overhead, quality
from benchmarks.tasks import QUICK_TASKS, TASKS
from benchmarks.tuners import TUNERS

SECTIONS = ("quality", "overhead")


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, cwd=Path(__file__).parent,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", ":/autolr", ":/benchmarks"],
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
    return "\n".join(
        [
            f"- date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
            f"- machine: {platform.machine()}, {os.cpu_count()} CPUs ({platform.platform()}); "
            "torch threads per training: 1",
            f"- python {platform.python_version()}, torch {torch.__version__}, "
            f"optuna {optuna.__version__}, autolr {autolr_version}, git {_git_commit()}",
            f"- command: `{cmd}`",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the chosen sections, print (and optionally write) markdown."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="2 tasks, 1 seed, 6 trials per tuner, small overhead loop")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help=f"a task ({', '.join(TASKS)}) or a section ({', '.join(SECTIONS)})")
    parser.add_argument("--tuner", action="append", choices=list(TUNERS), help="only this tuner")
    parser.add_argument("--seeds", type=int, help="tuner seeds per task (default 2, quick 1)")
    parser.add_argument("--n-trials", type=int, help="override every tuner's trial count")
    parser.add_argument("--out", type=Path, help="also write the markdown to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress on stderr")
    args = parser.parse_args(argv)

    unknown = [n for n in args.only if n not in TASKS and n not in SECTIONS]
    if unknown:
        parser.error(f"--only: unknown {unknown}; tasks: {list(TASKS)}; sections: {SECTIONS}")
    only_tasks = [n for n in args.only if n in TASKS]
    only_sections = [n for n in args.only if n in SECTIONS]
    sections = only_sections or (["quality"] if only_tasks else list(SECTIONS))
    tasks = only_tasks or (list(QUICK_TASKS) if args.quick else list(TASKS))
    seeds = list(range(args.seeds if args.seeds else (1 if args.quick else 2)))
    n_trials = args.n_trials if args.n_trials else (6 if args.quick else None)
    tuners = args.tuner or list(TUNERS)

    def log(line: str) -> None:
        if args.verbose:
            print(line, file=sys.stderr, flush=True)

    parts = ["## autolr benchmarks\n", header(argv)]
    t_start = time.perf_counter()
    if "quality" in sections:
        t0 = time.perf_counter()
        rows, skipped = quality.run(tasks, tuners, seeds, n_trials=n_trials, log=log)
        parts.append(
            f"## Quality per compute ({len(tasks)} tasks x {len(seeds)} tuner seeds; "
            f"trials: {n_trials or 'tuner defaults'})\n"
        )
        parts.append(
            "cost = epochs trained by the tuner / epochs of one full run; ratio = mean val loss "
            "over seeds 0-2 retrained at the chosen lr / oracle best; hit = within 10% + 0.01.\n"
        )
        parts.append(quality.render(rows, skipped, oracle_mod.load()))
        parts.append(f"quality section: {time.perf_counter() - t0:.0f} s\n")
    if "overhead" in sections:
        t0 = time.perf_counter()
        n_tr, n_rep, n_start = (5, 20, 2) if args.quick else (30, 100, 5)
        parts.append(f"## Overhead ({n_tr} trials x {n_rep} reports, trivial objective)\n")
        parts.append(overhead.run(n_tr, n_rep, n_start))
        parts.append(f"overhead section: {time.perf_counter() - t0:.0f} s\n")
    parts.append(f"total: {time.perf_counter() - t_start:.0f} s\n")
    text = "\n".join(parts)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
