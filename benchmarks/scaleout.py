"""Scale-out benchmark: trials per second with 1, 2 and 4 worker processes on each storage.

Every cell is one fresh study of ``--trials`` trials of a CPU-bound train function (pure-Python
arithmetic, ``--work-ms`` (default 250) of one core per trial), run with ``train.run(workers=k)``; the
wall time counts from the call to its return, so it includes starting the worker processes
(Python + Optuna imports) and the end of the study (the last trials finishing).

Run from the repository root::

    python -m benchmarks.scaleout            # SQLite, journal file, PostgreSQL, Redis
    python -m benchmarks.scaleout --trials 20 --storages sqlite journal

PostgreSQL gets a fresh database per cell (dropped after); Redis a fresh key prefix (deleted
after). The table is printed as markdown with the date, the machine and the command.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import autolr

WORK_MS = 250.0  # --work-ms
_CALIBRATED: list[int] = []


def _spin(n: int) -> float:
    x = 0.0
    for i in range(n):
        x += math.sqrt(i) * 1e-9
    return x


def _calibrate() -> int:
    """Loop iterations that take ``WORK_MS`` of one idle core (best of 5 measurements)."""
    n = 200_000
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        _spin(n)
        best = min(best, time.perf_counter() - t0)
    return max(1000, int(WORK_MS / 1000 / (best / n)))


def _iterations() -> int:
    """The same work in every worker: measured once by the parent, handed down in the env."""
    if not _CALIBRATED:
        raw = os.environ.get("AUTOLR_BENCH_ITERS")
        _CALIBRATED.append(int(raw) if raw else _calibrate())
    return _CALIBRATED[0]


@autolr.tune(n_trials=40, seed=0, show_progress_bar=False)
def train(lr: float) -> float:
    """CPU-bound: a fixed amount of arithmetic, then a smooth function of log10(lr)."""
    _spin(_iterations())
    return (math.log10(lr) + 2.5) ** 2


# ----------------------------------------------------------------------------- storages


@contextmanager
def _sqlite(tmp: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}"


@contextmanager
def _journal(tmp: Path) -> Iterator[str]:
    yield f"journal:///{tmp / f'{uuid.uuid4().hex}.log'}"


@contextmanager
def _postgres(base: str) -> Iterator[str]:
    import psycopg

    name = f"autolr_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _redis(base: str) -> Iterator[str]:
    import redis

    prefix = f"autolr_bench_{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(base)
    try:
        yield f"{base}?prefix={prefix}"
    finally:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)


def _cell(storage: str, workers: int, trials: int) -> float:
    """Wall seconds of one study of ``trials`` trials run by ``workers`` processes."""
    os.environ["AUTOLR_STORAGE"] = storage  # train has no storage= of its own; workers inherit
    t0 = time.perf_counter()
    train.run(workers=workers, n_trials=trials, show_progress_bar=False)
    wall = time.perf_counter() - t0
    study = autolr.load("train", storage=storage).study  # the fresh study of this cell
    done = sum(1 for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE")
    if done != trials:
        raise AssertionError(f"{autolr._storage.mask(storage)}: {done} trials, expected {trials}")
    return wall


def main(argv: Sequence[str] | None = None) -> int:
    global WORK_MS
    p = argparse.ArgumentParser(prog="python -m benchmarks.scaleout", description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--work-ms", type=float, default=WORK_MS, help="CPU per trial (one core)")
    p.add_argument("--repeat", type=int, default=1, help="fresh studies per cell; the best is shown")
    p.add_argument(
        "--storages", nargs="+", default=["sqlite", "journal", "postgres", "redis"],
        choices=["sqlite", "journal", "postgres", "redis"],
    )
    p.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = p.parse_args(argv)
    WORK_MS = args.work_ms

    os.environ["AUTOLR_BENCH_ITERS"] = str(_iterations())
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="autolr-bench-"))
    makers = {
        "sqlite": ("SQLite file (default)", lambda: _sqlite(tmp)),
        "journal": ("journal file", lambda: _journal(tmp)),
        "postgres": ("PostgreSQL", lambda: _postgres(args.postgres)),
        "redis": ("Redis (journal)", lambda: _redis(args.redis)),
    }
    rows = []
    try:
        for key in args.storages:
            label, make = makers[key]
            cells = []
            for k in args.workers:
                walls = []
                for _ in range(args.repeat):
                    with make() as url:
                        walls.append(_cell(url, k, args.trials))
                wall = min(walls)
                cells.append((k, wall))
                print(f"  {label:22s} workers={k}: {wall:6.1f} s", file=sys.stderr, flush=True)
            rows.append((label, cells))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    cpu = platform.processor() or platform.machine()
    print(
        f"Scale-out, {args.trials} trials of ~{WORK_MS:g} ms CPU each, TPE sampler, best of "
        f"{args.repeat}; "
        f"{datetime.date.today().isoformat()}, {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}, Optuna {_optuna_version()}; 1-min load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other work on the machine)\n"
        f"`python -m benchmarks.scaleout {' '.join(argv if argv is not None else sys.argv[1:])}`".rstrip()
        + "\n"
    )
    head = "| storage | " + " | ".join(f"{k} worker{'s' if k > 1 else ''}: wall s / trials/s" for k in args.workers) + " |"
    print(head)
    print("|" + " --- |" * (len(args.workers) + 1))
    for label, cells in rows:
        print(f"| {label} | " + " | ".join(f"{w:.1f} / {args.trials / w:.2f}" for _, w in cells) + " |")
    return 0


def _optuna_version() -> str:
    import optuna

    return optuna.__version__


if __name__ == "__main__":
    sys.exit(main())
