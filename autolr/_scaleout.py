"""Scale-out: one study's loop in threads of this process, or in worker processes.

``train.run(n_jobs=k)`` runs :func:`autolr._loop.run_loop` in k threads (:func:`run_threads`);
``train.run(workers=k)`` creates the study, then starts k processes (:func:`run_processes`),
each of which imports the train function by its module path and name and runs the same loop
(``autolr._worker.child``); ``autolr worker`` does the same on any machine. The storage is the
only thing they share; there is no coordinator. This module is given a config and the
function's import path, never the decorated function itself.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import optuna

from autolr import _storage
from autolr._config import StorageArg, TuneConfig
from autolr._fingerprint import Fingerprint
from autolr._hooks import ProgressBar
from autolr._schema import counted, views
from autolr._search import expected_trials, is_done
from autolr._study import completed, open_study, say_if_complete

#: Set in the environment of processes started by ``workers=``; ``run(workers=)`` refuses to nest.
CHILD_ENV = "AUTOLR_WORKER_CHILD"
#: The entry point of a worker process started by :func:`run_processes`.
CHILD_CODE = "import sys; from autolr._worker import child; sys.exit(child(sys.argv[1]))"


# ----------------------------------------------------------------------------- threads


def run_threads(loop: Callable[[threading.Event], None], n_jobs: int) -> None:
    """Run ``loop(stop)`` in ``n_jobs`` threads (this one included) until all return.

    The first exception of any thread stops the others after their current trial and is re-raised
    here; Ctrl-C (delivered to this thread) does the same.
    """
    stop = threading.Event()
    errors: list[BaseException] = []

    def body() -> None:
        try:
            loop(stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=body, name=f"autolr-job-{i}", daemon=True) for i in range(1, n_jobs)
    ]
    for t in threads:
        t.start()
    try:
        loop(stop)
    except BaseException:
        stop.set()
        raise
    for t in threads:
        while t.is_alive():
            t.join(0.2)
    if errors:
        raise errors[0]


# ----------------------------------------------------------------------------- processes


def check_workers(workers: object, n_jobs: object) -> tuple[int, int]:
    """Validate ``workers=`` and ``n_jobs=``; returns them as ints (0 workers: this process)."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs: expected an int >= 1 (threads in this process), got {n_jobs!r}")
    if workers is None:
        workers = 0
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers: expected an int >= 1 (processes), got {workers!r}")
    if workers and n_jobs > 1:
        raise ValueError(
            f"n_jobs={n_jobs} with workers={workers}: choose threads (n_jobs) or processes (workers)"
        )
    return workers, n_jobs


def shareable_url(storage: StorageArg) -> str:
    """The storage URL worker processes open: the given URL, or the default SQLite file.

    Objects (an ``optuna.storages.BaseStorage``) and in-memory SQLite cannot be handed to another
    process; they raise :class:`autolr.StorageError`.
    """
    if storage is None:
        return _storage.default_url()
    if not isinstance(storage, str):
        raise _storage.StorageError(
            "workers: worker processes open the storage themselves, so it must be a URL "
            f"(got a {type(storage).__name__} object); pass storage='sqlite:///...', "
            "'journal:///...', 'postgresql://...' or 'redis://...', or use n_jobs= (threads)"
        )
    _storage.check_url(storage)
    if storage.split("?", 1)[0].endswith(":memory:"):
        raise _storage.StorageError(
            f"workers: {_storage.mask(storage)!r} lives in one process's memory; give a file or "
            "server URL, or use n_jobs= (threads)"
        )
    return storage


def process_storage(storage: StorageArg) -> str:
    """The URL for ``run(workers=)``, refused inside a worker process (no nesting)."""
    if os.environ.get(CHILD_ENV):
        raise RuntimeError(
            "autolr: run(workers=...) was called inside a worker process; a worker runs trials "
            "itself (put the call under `if __name__ == \"__main__\":`)"
        )
    return shareable_url(storage)


def run_processes(
    config: TuneConfig,
    name: str,
    spec: str,
    *,
    workers: int,
    kwargs: Mapping[str, object],
    default_lr: float | None = None,
    fingerprint: Fingerprint | None = None,
) -> optuna.Study:
    """Start ``workers`` processes on study ``name`` and wait until they all return.

    ``config.storage`` is a URL (:func:`process_storage`). The study is created here first (so
    workers do not race to create it); each worker then runs the usual loop with its own index
    (seed) and stops when the study holds ``config.n_trials``.
    """
    url = str(config.storage)
    opened = open_study(config, name, default_lr=default_lr, fingerprint=fingerprint)
    study, config = opened.study, opened.config
    if completed(opened) is not None:  # nothing to train: no worker to start
        say_if_complete(opened)
        return study
    total = config.total if opened.spec is None else expected_trials(opened.spec)
    try:
        header = {
            "spec": spec, "storage": url, "study_name": name, "n_trials": config.n_trials,
            "timeout": config.timeout, "sys_path": list(sys.path),
        }
        payload = pickle.dumps((header, pickle.dumps(dict(kwargs))))
    except Exception as exc:  # noqa: BLE001 - pickling errors come in many types
        raise TypeError(
            f"workers: the keyword arguments passed to run() must be picklable to reach worker "
            f"processes ({type(exc).__name__}: {exc})"
        ) from None
    # The job file holds the storage URL (maybe a password): private to this user, removed after.
    fd, job = tempfile.mkstemp(prefix="autolr-job-", suffix=".pkl")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        procs.extend(_spawn(job, i) for i in range(workers))
        _supervise(procs, study, total, config.show_progress_bar)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(job)
    failed = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode != 0]
    finished = _finished(study)
    if opened.spec is None:
        complete = finished >= config.total
    else:
        trials = views(study.get_trials(deepcopy=False))
        complete = is_done(opened.spec, trials, direction=config.direction)
    if failed and not complete:
        i, rc = failed[0]
        raise RuntimeError(
            f"autolr: worker {i} exited with status {rc} (its error is printed above); study "
            f"{name!r} keeps {finished} finished trials in {_storage.mask(url)}. "
            "Run again to resume."
        )
    return study


def _finished(study: optuna.Study) -> int:
    return sum(1 for t in views(study.get_trials(deepcopy=False)) if counted(t))


def _spawn(job: str, index: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env[CHILD_ENV] = "1"
    env["AUTOLR_WORKER_INDEX"] = str(index)
    return subprocess.Popen([sys.executable, "-c", CHILD_CODE, job], env=env)


def _supervise(
    procs: Sequence[subprocess.Popen[bytes]], study: optuna.Study, n_trials: int, show: bool | None
) -> None:
    bar = ProgressBar(total=n_trials, desc=study.study_name, show=show)
    try:
        while any(p.poll() is None for p in procs):
            if bar.shown:
                bar.update(_finished(study))
            time.sleep(0.5)
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=30)
        raise
    finally:
        bar.close()
