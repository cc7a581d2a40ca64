"""Storage at scale: reading a 20,000-trial study, and one trial that reports a million times.

Builds, in a temporary directory, a SQLite study the way autolr writes it (one real run of
``@autolr.tune``, then its trial copied 20,000 times with bulk SQL: log-uniform lrs, 20
intermediate reports each, autolr's trial attributes), then times each reader in a fresh process
and reads its peak RSS (``os.wait4``):

- ``autolr studies``, ``autolr best``, ``autolr report --format md``, ``autolr.load().best_lr``;
- ``run()`` of one trial that calls ``autolr.report()`` 1,000,000 times (stored reports are
  thinned past ``autolr._context.REPORT_CAP``).

Run: ``python -m benchmarks.storage_scale [--trials 20000] [--reports 20] [--calls 1000000]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = "big"


def build(path: Path, trials: int, reports: int) -> float:
    """The study at ``path``: one real autolr trial, copied ``trials`` times. Returns seconds."""
    t0 = time.perf_counter()
    seed = textwrap.dedent(
        f"""
        import autolr
        @autolr.tune(n_trials=1, storage="sqlite:///{path}", study_name="{STUDY}", sampler="tpe",
                     pruner=False, show_progress_bar=False)
        def {STUDY}(lr):
            for step in range({reports}):
                autolr.report(1.0 / (step + 1) + lr, step=step)
            return lr
        {STUDY}.run()
        """
    )
    subprocess.run([sys.executable, "-c", seed], check=True, env=_env(), capture_output=True)
    con = sqlite3.connect(path)
    study_id, trial_id = con.execute("select study_id, trial_id from trials").fetchone()
    dist = con.execute("select distribution_json from trial_params").fetchone()[0]
    low, high = json.loads(dist)["attributes"]["low"], json.loads(dist)["attributes"]["high"]
    attrs = con.execute(
        "select key, value_json from trial_user_attributes where trial_id = ?", (trial_id,)
    ).fetchall()
    start, end = con.execute(
        "select datetime_start, datetime_complete from trials where trial_id = ?", (trial_id,)
    ).fetchone()
    rng = random.Random(0)
    rows_t, rows_p, rows_v, rows_i, rows_a = [], [], [], [], []
    for n in range(1, trials):
        tid = trial_id + n
        lr = math.exp(rng.uniform(math.log(low), math.log(high)))
        rows_t.append((tid, n, study_id, "COMPLETE", start, end))
        rows_p.append((tid, "lr", lr, dist))
        curve = [1.0 / (s + 1) + lr + rng.gauss(0, 0.01) for s in range(reports)]
        rows_v.append((tid, 0, curve[-1], "FINITE"))
        rows_i.extend((tid, s, v, "FINITE") for s, v in enumerate(curve))
        rows_a.extend((tid, k, v) for k, v in attrs)
    with con:
        con.executemany("insert into trials (trial_id, number, study_id, state, datetime_start, "
                        "datetime_complete) values (?, ?, ?, ?, ?, ?)", rows_t)
        con.executemany("insert into trial_params (trial_id, param_name, param_value, "
                        "distribution_json) values (?, ?, ?, ?)", rows_p)
        con.executemany("insert into trial_values (trial_id, objective, value, value_type) "
                        "values (?, ?, ?, ?)", rows_v)
        con.executemany("insert into trial_intermediate_values (trial_id, step, "
                        "intermediate_value, intermediate_value_type) values (?, ?, ?, ?)", rows_i)
        con.executemany("insert into trial_user_attributes (trial_id, key, value_json) "
                        "values (?, ?, ?)", rows_a)
    con.close()
    return time.perf_counter() - t0


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")


def measure(argv: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """(seconds, peak RSS in MiB, exit status, last line of output) of one fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    last = out.strip().splitlines()[-1] if out.strip() else ""
    return seconds, usage.ru_maxrss / 1024, proc.returncode, last


MILLION = textwrap.dedent(
    """
    import sys, autolr
    calls = int(sys.argv[1])
    @autolr.tune(n_trials=1, storage="sqlite:///million.db", sampler="tpe", pruner=False,
                 show_progress_bar=False)
    def million(lr):
        report = autolr.report
        for step in range(calls):
            report(1.0 / (step + 1) + lr, step=step)
        return lr
    result = million.run()
    t = result.study.trials[0]
    print(t.state.name, len(t.intermediate_values), "stored of", calls)
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20_000)
    parser.add_argument("--reports", type=int, default=20)
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        db = tmp / "big.db"
        built = build(db, args.trials, args.reports)
        size = db.stat().st_size / 2**20
        url = f"sqlite:///{db}"
        py = sys.executable
        rows = [
            ("autolr studies", [py, "-m", "autolr", "studies", "--storage", url]),
            ("autolr best", [py, "-m", "autolr", "best", STUDY, "--storage", url]),
            ("autolr report --format md", [py, "-m", "autolr", "report", STUDY, "--format", "md",
                                           "--storage", url]),
            ("autolr.load().best_lr", [py, "-c", f"import autolr; print(autolr.load({STUDY!r}, "
                                       f"storage={url!r}).best_lr)"]),
            (f"run(): {args.calls:,} report() calls", [py, "-c", MILLION, str(args.calls)]),
        ]
        print(f"study: {args.trials:,} trials x {args.reports} reports, {size:.0f} MB SQLite "
              f"(built in {built:.1f} s)\n")
        print("| what | seconds | peak RSS MiB | exit | last line |")
        print("| --- | ---: | ---: | ---: | --- |")
        for name, argv in rows:
            seconds, rss, code, last = measure(argv, tmp)
            print(f"| {name} | {seconds:.1f} | {rss:.0f} | {code} | {last[:60]} |", flush=True)
        print(f"\ncommand: python -m benchmarks.storage_scale --trials {args.trials} "
              f"--reports {args.reports} --calls {args.calls}")


if __name__ == "__main__":
    main()
