"""Scale-out: one study's loop in threads of this process, or in workers anywhere.

``train.run(n_jobs=k)`` runs :func:`autolr._loop.run_loop` in k threads (:func:`run_threads`).
``train.run(workers=k)`` and ``train.run(executor=...)`` create the study, then submit k jobs
(:func:`run_many`) to an executor: :class:`Processes` (one new process per job) for
``workers=``, or any ``concurrent.futures.Executor`` (Dask, Ray, a process pool). Each job
imports the train function by its module path and name and runs the same loop
(``autolr._tune.worker_job``); ``autolr worker`` does the same on any machine. The storage is the
only thing they share; there is no coordinator. This module is given a config and the
function's import path, never the decorated function itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, wait

import optuna

from autolr import _liveness, _record, _storage
from autolr._config import StorageArg, TuneConfig
from autolr._fingerprint import Fingerprint
from autolr._hooks import ProgressBar
from autolr._schema import StopReason, counted, views
from autolr._search import expected_trials, is_done
from autolr._study import completed, open_study, say_if_complete

#: Set in the environment of processes started by ``workers=``; ``run(workers=)`` refuses to nest.
CHILD_ENV = _liveness.CHILD_ENV
#: The parent's pid, in the environment of a worker process (it exits if its parent is gone).
PARENT_ENV = "AUTOLR_WORKER_PARENT"
#: Which storage driver a worker process imports while it waits for its job.
PRELOAD_ENV = "AUTOLR_WORKER_PRELOAD"
#: The entry point of a worker process started by :class:`Processes`.
CHILD_CODE = "import sys; from autolr._scaleout import process_child; sys.exit(process_child())"


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
    if _liveness.in_worker_job():
        raise RuntimeError(
            "autolr: run(workers=...) was called inside a worker process; a worker runs trials "
            "itself (put the call under `if __name__ == \"__main__\":`)"
        )
    return shareable_url(storage)


class Processes(Executor):
    """A :class:`concurrent.futures.Executor` whose every ``submit(fn, *args)`` is a new process.

    ``train.run(workers=k)`` submits k jobs to one of these, as ``run(executor=...)`` submits them
    to Dask's or Ray's. The job (the function by reference, its pickled arguments: the storage URL
    among them) travels over the child's stdin and never touches the disk. Each child is in a
    process group of its own (a terminal's Ctrl-C reaches the parent only, which passes it on once,
    :meth:`interrupt`) and dies with the parent: ``PR_SET_PDEATHSIG`` on Linux, and everywhere the
    end of its stdin, which the parent holds open until the child exits.
    """

    def __init__(
        self, *, env: Mapping[str, str] | None = None, prestart: int = 0, preload: str = ""
    ) -> None:
        """``prestart`` processes start now and wait for their jobs (they import autolr, and the
        storage driver named by ``preload``, ``"rdb"`` for SQLAlchemy, meanwhile)."""
        self._env = dict(os.environ if env is None else env)
        self._env.update({CHILD_ENV: "1", PARENT_ENV: str(os.getpid()), PRELOAD_ENV: preload})
        self._procs: list[subprocess.Popen[bytes]] = []
        self._idle = [self._start() for _ in range(prestart)]
        self._waiters: list[threading.Thread] = []

    def _start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", CHILD_CODE], env=self._env, stdin=subprocess.PIPE,
            process_group=0,
        )

    def submit(  # type: ignore[override]
        self, fn: Callable[..., object], /, *args: object, **kwargs: object
    ) -> Future[object]:
        payload = pickle.dumps((fn, args, kwargs))
        proc = self._idle.pop(0) if self._idle else self._start()
        assert proc.stdin is not None
        proc.stdin.write(len(payload).to_bytes(8, "little") + payload)
        proc.stdin.flush()
        self._procs.append(proc)
        future: Future[object] = Future()
        future.set_running_or_notify_cancel()

        def wait() -> None:
            rc = proc.wait()
            assert proc.stdin is not None
            with contextlib.suppress(OSError):
                proc.stdin.close()
            if rc == 0:
                future.set_result(None)
            else:
                future.set_exception(RuntimeError(f"exited with status {rc}"))

        waiter = threading.Thread(target=wait, name="autolr-worker-wait", daemon=True)
        waiter.start()
        self._waiters.append(waiter)
        return future

    def interrupt(self) -> None:
        """Ctrl-C: one SIGINT to each live child, then give them time to record their trials."""
        for p in self._procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=30)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for proc in self._idle:  # started, never given a job: the end of stdin ends them
            assert proc.stdin is not None
            with contextlib.suppress(OSError):
                proc.stdin.close()
        for proc in self._idle:
            proc.wait()
        self._idle.clear()
        if wait:
            for w in self._waiters:
                w.join()


def process_child() -> int:
    """The entry point of a process started by :class:`Processes`: read the job, run it."""
    _die_with_parent()
    if os.environ.get(PRELOAD_ENV) == "rdb":  # while the parent opens the study
        import sqlalchemy.orm  # noqa: F401 - Optuna imports SQLAlchemy lazily: do it now
        from optuna.storages._rdb import models  # noqa: F401 - the table models
    size = int.from_bytes(_read_exactly(8), "little")
    fn, args, kwargs = pickle.loads(_read_exactly(size))
    threading.Thread(target=_watch_parent, name="autolr-parent-watch", daemon=True).start()
    signal.signal(signal.SIGTERM, _terminated)
    try:
        fn(*args, **kwargs)
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # noqa: BLE001 - printed without the storage password
        sys.stderr.write(_storage.mask("".join(traceback.format_exception(exc))))
        return 1
    return 0


def _read_exactly(n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = os.read(0, n - len(data))  # the raw fd: no buffered reader's lock at shutdown
        if not chunk:
            raise SystemExit(1)  # the parent is gone before handing over the job
        data += chunk
    return data


def _die_with_parent() -> None:
    """Linux: SIGTERM when the parent dies (``prctl(PR_SET_PDEATHSIG)``); exit if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    parent = os.environ.get(PARENT_ENV)
    if parent is not None and parent.isdigit() and os.getppid() != int(parent):
        raise SystemExit(1)


def _watch_parent() -> None:
    """Everywhere: the parent holds our stdin open; its end means the parent is gone."""
    with contextlib.suppress(OSError):
        while os.read(0, 65536):  # the raw fd: a daemon thread blocked here does not stop exit
            pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30.0)  # its trials unwind and are recorded as interrupted; then go regardless
    os._exit(1)


_TERMINATED: list[float] = []


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM in a worker: unwind as on Ctrl-C (its trials are recorded as interrupted).

    The parent's death sends two (``PDEATHSIG`` and the end of stdin): the first unwinds, the
    repeats of the next seconds are ignored, and one after that ends the process at once.
    """
    now = time.monotonic()
    if _TERMINATED:
        if now - _TERMINATED[0] < 5.0:
            return
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
    _TERMINATED.append(now)
    raise KeyboardInterrupt


def executor_size(executor: Executor, workers: int) -> int:
    """How many jobs to submit to ``executor``: ``workers``, else its own worker count."""
    if workers:
        return workers
    size = getattr(executor, "_max_workers", None)
    if isinstance(size, int) and size > 0:
        return size
    raise ValueError(
        f"workers: with executor={type(executor).__name__}, give how many jobs to run "
        "(workers=k), e.g. the number of workers of the cluster"
    )


def run_many(
    config: TuneConfig,
    name: str,
    spec: str,
    *,
    job: Callable[[dict[str, object], bytes], object],
    executor: Executor | None,
    workers: int,
    kwargs: Mapping[str, object],
    default_lr: float | None = None,
    fingerprint: Fingerprint | None = None,
) -> optuna.Study:
    """Run ``workers`` jobs on study ``name`` in ``executor`` (None: new processes) until all end.

    ``config.storage`` is a URL (:func:`process_storage`). The study is created here first (so
    workers do not race to create it); each job (``job(header, kwargs_blob)``, importable, so
    any executor can pickle it by reference) imports the train function from ``spec`` and runs
    the usual loop with its own index until the study holds its total.
    """
    url = str(config.storage)
    own = executor is None
    # Our own processes start now: they import Python's and autolr's modules while this one
    # opens the study, then wait for their jobs (a failure here ends them: shutdown()).
    rdb = _storage.check_url(url) in ("sqlite", "rdb")
    pool = Processes(prestart=workers, preload="rdb" if rdb else "") if own else executor
    assert pool is not None
    try:
        return _run_jobs(pool, config, name, spec, job=job, workers=workers, kwargs=kwargs,
                         default_lr=default_lr, own=own, fingerprint=fingerprint)
    finally:
        if own:
            pool.shutdown(wait=False)


def _run_jobs(
    pool: Executor,
    config: TuneConfig,
    name: str,
    spec: str,
    *,
    job: Callable[[dict[str, object], bytes], object],
    workers: int,
    kwargs: Mapping[str, object],
    default_lr: float | None,
    own: bool,
    fingerprint: Fingerprint | None,
) -> optuna.Study:
    url = str(config.storage)
    opened = open_study(config, name, default_lr=default_lr, fingerprint=fingerprint)
    study, config = opened.study, opened.config
    if completed(opened) is not None:  # nothing to train: no worker to start
        say_if_complete(opened)
        return study
    total = config.total if opened.spec is None else expected_trials(opened.spec)
    try:
        blob = pickle.dumps(dict(kwargs))
    except Exception as exc:  # noqa: BLE001 - pickling errors come in many types
        raise TypeError(
            f"workers: the keyword arguments passed to run() must be picklable to reach worker "
            f"processes ({type(exc).__name__}: {exc})"
        ) from None
    header: dict[str, object] = {
        "spec": spec, "storage": url, "study_name": name, "n_trials": config.n_trials,
        "timeout": config.timeout, "sys_path": list(sys.path), "parent": os.getpid(),
    }
    futures = [pool.submit(job, dict(header, index=i), blob) for i in range(workers)]
    try:
        _supervise(futures, study, total, config.show_progress_bar)
    except KeyboardInterrupt:
        if isinstance(pool, Processes):
            pool.interrupt()
            # A trial a worker created as the signal came, before it could track it, is left
            # RUNNING by a process that is now gone: record it as interrupted too.
            _record.recover_stale(
                study, views(study.get_trials(deepcopy=False)), url,
                retry=opened.spec is None, reason=StopReason.INTERRUPTED,
            )
        else:
            for f in futures:
                f.cancel()
        print(
            f"\nautolr: interrupted; study {name!r} keeps {_finished(study)} finished trials in "
            f"{_storage.describe(url)}. Run again (train.run()) to resume.",
            file=sys.stderr,
        )
        raise
    failed = [(i, e) for i, e in enumerate(f.exception() for f in futures) if e is not None]
    finished = _finished(study)
    if opened.spec is None:
        complete = finished >= config.total
    else:
        trials = views(study.get_trials(deepcopy=False))
        complete = is_done(opened.spec, trials, direction=config.direction)
    if failed and not complete:
        i, error = failed[0]
        where = "its error is printed above" if own else f"{type(error).__name__}: {error}"
        raise RuntimeError(
            f"autolr: worker {i} failed ({_storage.mask(where)}); study {name!r} keeps "
            f"{finished} finished trials in {_storage.mask(url)}. Run again to resume."
        )
    return study


def _finished(study: optuna.Study) -> int:
    return sum(1 for t in views(study.get_trials(deepcopy=False)) if counted(t))


def _supervise(
    futures: Sequence[Future[object]], study: optuna.Study, n_trials: int, show: bool | None
) -> None:
    bar = ProgressBar(total=n_trials, desc=study.study_name, show=show)
    try:
        while not all(f.done() for f in futures):
            if bar.shown:
                bar.update(_finished(study))
            wait(futures, timeout=0.5)
    finally:
        bar.close()
