"""Scale-out benchmark: trials per second with 1, 2 and 4 worker processes on each storage.

Every cell is one fresh study of ``--trials`` trials of a CPU-bound train function (pure-Python
arithmetic, ``--work-ms`` (default 250) of one core per trial, TPE sampler), run with
``train.run(workers=k)``; the wall time counts from the call to its return, so it includes
starting the worker processes (Python + Optuna imports) and the end of the study (the last trials
finishing). Each cell also shows the CPU seconds of all processes (steadier than wall time on a
shared machine). ``--plain`` adds rows of plain Optuna: k processes of ``study.optimize`` with the
same work, the fixed cost autolr is compared with.

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
import resource
import shutil
import subprocess
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


@autolr.tune(n_trials=40, seed=0, sampler="tpe", show_progress_bar=False)
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


#: Plain Optuna, for comparison: one process of ``study.optimize`` with the same work and sampler.
PLAIN = """
import math, sys, optuna
sys.path.insert(0, sys.argv[5])
from benchmarks.scaleout import _spin
optuna.logging.set_verbosity(optuna.logging.WARNING)
def objective(trial):
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    _spin(int(sys.argv[3]))
    return (math.log10(lr) + 2.5) ** 2
study = optuna.load_study(study_name="train", storage=sys.argv[1],
                          sampler=optuna.samplers.TPESampler(seed=int(sys.argv[4])))
study.optimize(objective, n_trials=int(sys.argv[2]))
"""


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (stable on a busy machine)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _plain(storage: str, workers: int, trials: int) -> None:
    """``workers`` processes of plain Optuna ``optimize(n_trials=trials / workers)``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(study_name="train", storage=storage)
    root = str(Path(__file__).resolve().parents[1])
    procs = [
        subprocess.Popen([sys.executable, "-c", PLAIN, storage, str(trials // workers),
                          str(_iterations()), str(i), root])
        for i in range(workers)
    ]
    for p in procs:
        if p.wait() != 0:
            raise AssertionError("a plain Optuna process failed")


def _cell(storage: str, workers: int, trials: int, plain: bool = False) -> tuple[float, float]:
    """Wall and CPU seconds of one study of ``trials`` trials run by ``workers`` processes."""
    os.environ["AUTOLR_STORAGE"] = storage  # train has no storage= of its own; workers inherit
    t0, c0 = time.perf_counter(), _cpu()
    if plain:
        _plain(storage, workers, trials)
    else:
        train.run(workers=workers, n_trials=trials, show_progress_bar=False)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    study = autolr.load("train", storage=storage).study  # the fresh study of this cell
    done = sum(1 for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE")
    if done != trials:
        raise AssertionError(f"{autolr._storage.mask(storage)}: {done} trials, expected {trials}")
    return wall, cpu


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
    p.add_argument("--plain", action="store_true",
                   help="also run plain Optuna processes (study.optimize) with the same work")
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
            for plain in ([False, True] if args.plain else [False]):
                cells = []
                for k in args.workers:
                    runs = []
                    for _ in range(args.repeat):
                        with make() as url:
                            runs.append(_cell(url, k, args.trials, plain))
                    wall, cpu_s = min(runs)
                    cells.append((k, wall, cpu_s))
                    name = f"{label}{', plain Optuna' if plain else ''}"
                    print(f"  {name:36s} workers={k}: {wall:6.1f} s, cpu {cpu_s:6.1f} s",
                          file=sys.stderr, flush=True)
                rows.append((name, cells))
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
    head = "| storage | " + " | ".join(f"{k} worker{'s' if k > 1 else ''}: wall s / CPU s" for k in args.workers) + " |"
    print(head)
    print("|" + " --- |" * (len(args.workers) + 1))
    for label, cells in rows:
        print(f"| {label} | " + " | ".join(f"{w:.1f} / {c:.1f}" for _, w, c in cells) + " |")
    return 0


def _optuna_version() -> str:
    import optuna

    return optuna.__version__


if __name__ == "__main__":
    sys.exit(main())
