"""A worker: import the train function by its path and run the study's loop, anywhere.

Two ways in, one loop: ``train.run(workers=k)`` and ``run(executor=...)`` run
:func:`autolr._tune.worker_job` in each worker; ``autolr worker path/to/train.py:train --storage
URL`` on any machine runs :func:`run_worker` (its options: :func:`build_parser`). Both import the
function with :func:`autolr._target.import_spec` and call ``run()`` on a copy of it pointed at
the shared storage and study.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
import traceback
from collections.abc import Sequence

from autolr import _storage
from autolr._config import IntAtLeast, StorageArg
from autolr._liveness import worker_id
from autolr._sampling import worker_index
from autolr._schema import counted, views
from autolr._tune import Tuned, load_tuned


#: ``path/to/train.py:train`` as a Tuned (a plain function gets autolr.tune's defaults).
load_target = load_tuned


def _on(tuned: Tuned[..., object], storage: StorageArg, study_name: str) -> Tuned[..., object]:
    """``tuned`` with the same options, on ``storage`` and study ``study_name``."""
    config = dataclasses.replace(tuned.config, storage=storage, study_name=study_name)
    return Tuned(tuned.fn, config)


# ----------------------------------------------------------------------------- command line


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The options of ``autolr worker`` (added to a given parser, e.g. a CLI subcommand)."""
    p = parser or argparse.ArgumentParser(
        prog="autolr worker",
        description="Run trials of a study as one worker; start as many as you like, anywhere.",
    )
    p.add_argument("target", help="path/to/train.py:train or package.module:train")
    p.add_argument(
        "--storage", default=None,
        help="study storage URL (default: $AUTOLR_STORAGE, else the function's own storage); "
        "prefer $AUTOLR_STORAGE for URLs with a password, so it stays out of process lists",
    )
    p.add_argument("--study-name", default=None, help="default: the function's study name")
    p.add_argument("--n-trials", type=int, default=None, help="study-wide total of finished trials")
    p.add_argument("--timeout", type=float, default=None, help="seconds after which no trial starts")
    p.add_argument(
        "--worker-index", type=int, default=None,
        help="this worker's index for seeding (default: $SLURM_ARRAY_TASK_ID, "
        "$JOB_COMPLETION_INDEX, ... if set)",
    )
    return p


def _set_worker_index(given: int | None) -> None:
    """``--worker-index``, else the scheduler's, else a number derived from this process."""
    if given is not None:
        if given < 0:
            raise ValueError(f"--worker-index: expected an int >= 0, got {given}")
        os.environ["AUTOLR_WORKER_INDEX"] = str(given)
    elif worker_index() is None:  # no scheduler index: any distinct number will do
        digest = hashlib.sha256(worker_id().encode()).digest()
        os.environ["AUTOLR_WORKER_INDEX"] = str(1 + int.from_bytes(digest[:3], "little"))


def run_worker(args: argparse.Namespace) -> int:
    """Run one worker from parsed ``autolr worker`` options; returns the exit status."""
    try:
        _set_worker_index(args.worker_index)
        n = IntAtLeast(1)("--n-trials", args.n_trials) if args.n_trials is not None else None
        tuned = load_target(args.target)
        storage = args.storage or os.environ.get("AUTOLR_STORAGE") or tuned.config.storage
        if storage is None:
            storage = _storage.default_url()
        _storage.check_url(storage, param="--storage")
        worker = _on(tuned, storage, args.study_name or tuned.study_name)
        result = worker.run(n_trials=n, timeout=args.timeout, show_progress_bar=False)
        finished = sum(1 for t in views(result.study.get_trials(deepcopy=False)) if counted(t))
        print(
            f"autolr worker: study {worker.study_name!r} in {_storage.describe(storage)} holds "
            f"{finished} finished trials",
            file=sys.stderr,
        )
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one masked line, not a traceback with the URL
        print(f"autolr worker: {type(exc).__name__}: {_storage.mask(str(exc))}", file=sys.stderr)
        if os.environ.get("AUTOLR_DEBUG"):
            sys.stderr.write(_storage.mask("".join(traceback.format_exception(exc))))
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``autolr worker TARGET [--storage URL] [--n-trials N] ...`` as a function."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    return run_worker(args)


if __name__ == "__main__":  # pragma: no cover - `python -m autolr._worker path.py:train ...`
    sys.exit(main())
