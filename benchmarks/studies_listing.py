"""How long ``autolr studies`` takes on a 20,000-trial SQLite study (issue 18's scale item).

Builds the study by bulk SQL (20,000 COMPLETE trials, 20 reports each: about 22 MB, as in
issue 18), then times ``autolr studies`` in a fresh process, three times, and prints a table.

    python -m benchmarks.studies_listing            # 20,000 trials x 20 reports
    python -m benchmarks.studies_listing --trials 2000 --reports 5

Goal: under 1 s (it reads SQL counts and the stored recommendation, not the trials).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]


def build(db_file: Path, trials: int, reports: int) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_cli_lifecycle import add_trials_fast  # the tests' bulk writer

    import autolr

    @autolr.tune(n_trials=1, sampler="random", storage=f"sqlite:///{db_file}", study_name="big",
                 show_progress_bar=False)
    def train(lr: float) -> float:
        return lr

    train.run()
    add_trials_fast(db_file, "big", trials - 1, reports)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=20_000)
    p.add_argument("--reports", type=int, default=20)
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        db_file = Path(d) / "big.db"
        t0 = time.perf_counter()
        build(db_file, args.trials, args.reports)
        built = time.perf_counter() - t0
        env = dict(os.environ, PYTHONPATH=str(ROOT))

        def timed(*argv: str) -> float:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "autolr", *argv], check=True, env=env,
                           capture_output=True)
            return time.perf_counter() - t0

        times = [timed("studies", "--storage", str(db_file)) for _ in range(3)]
        startup = [timed("--version") for _ in range(3)]
        from contextlib import redirect_stdout
        from io import StringIO

        from autolr.cli import main as cli

        inproc = []
        for _ in range(3):
            t0 = time.perf_counter()
            with redirect_stdout(StringIO()):
                cli(["studies", "--storage", str(db_file)])
            inproc.append(time.perf_counter() - t0)
        size = db_file.stat().st_size / 1e6
    print(f"# autolr studies on one large SQLite study ({platform.python_version()}, "
          f"{os.cpu_count()} CPUs)\n")
    print(f"command: python -m benchmarks.studies_listing --trials {args.trials} "
          f"--reports {args.reports}\n")
    print("| trials | reports each | file | `autolr studies` in-process | as a process | "
          "`autolr --version` (startup) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {args.trials} | {args.reports} | {size:.0f} MB | {statistics.median(inproc):.2f} s | "
          f"{statistics.median(times):.2f} s | {statistics.median(startup):.2f} s |")
    print(f"\n(medians of 3; the study was built by bulk SQL in {built:.1f} s)")


if __name__ == "__main__":
    main()
