"""Scale-out: threads and processes on one study, heartbeats, and the ``autolr worker`` command.

Every worker, whether a thread (``train.run(n_jobs=k)``), a process started by
``train.run(workers=k)``, or ``autolr worker path/to/train.py:train --storage URL`` on a cluster
node, runs the same ask/tell loop (:class:`autolr._tune._Runner`) against the same study. The
storage is the only thing they share; there is no coordinator process.

What this module adds around that loop:

* a **heartbeat** thread per process that stamps ``autolr.heartbeat`` (unix time) on each trial the
  process runs, so workers on *other* hosts can tell a dead or hung worker's trial from a slow one
  (:func:`autolr._storage.is_stale`); same-host deaths are seen at once from the pid;
* **per-worker seeds**, so k seeded workers do not all sample the same learning rates;
* the **process launcher** behind ``workers=k`` and the **worker command line**, which import the
  train function by module path and name (a lambda or closure cannot cross a process boundary).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import importlib.util
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autolr import _storage

if TYPE_CHECKING:
    import optuna

    from autolr._result import Result
    from autolr._tune import Tuned

#: Trial user attribute: unix time of the last sign of life of the process running the trial.
ATTR_HEARTBEAT = "autolr.heartbeat"
#: Seconds between two heartbeats (``AUTOLR_HEARTBEAT_INTERVAL`` overrides).
HEARTBEAT_INTERVAL_S = 10.0
#: Seconds without a heartbeat after which a RUNNING trial is failed as ``crashed`` and its
#: learning rate retried (``AUTOLR_HEARTBEAT_GRACE`` overrides). Hosts' clocks must agree to well
#: within this (NTP does).
HEARTBEAT_GRACE_S = 60.0
#: Seconds a worker waits between two looks at the study while other workers hold the last slots.
POLL_S = 0.25

#: Set in the environment of processes started by ``workers=``; ``run(workers=)`` refuses to nest.
CHILD_ENV = "AUTOLR_WORKER_CHILD"
#: Environment variables that carry a worker's index on common schedulers (first one set wins).
INDEX_ENVS = (
    "AUTOLR_WORKER_INDEX",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_PROCID",
    "JOB_COMPLETION_INDEX",  # Kubernetes indexed Job
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
)

_importing: str | None = None  # the spec being imported by a worker (guards run() at import)


# ----------------------------------------------------------------------------- settings


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: expected seconds > 0, got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{name}: expected seconds > 0, got {raw!r}")
    return value


def heartbeat_interval() -> float:
    """Seconds between heartbeats: ``$AUTOLR_HEARTBEAT_INTERVAL`` or 10."""
    return _env_seconds("AUTOLR_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL_S)


def heartbeat_grace() -> float:
    """Seconds of silence before a trial is stale: ``$AUTOLR_HEARTBEAT_GRACE`` or 60."""
    grace = _env_seconds("AUTOLR_HEARTBEAT_GRACE", HEARTBEAT_GRACE_S)
    interval = heartbeat_interval()
    if grace < 2 * interval:
        raise ValueError(
            f"AUTOLR_HEARTBEAT_GRACE: expected at least twice the heartbeat interval "
            f"({2 * interval:g} s), got {grace:g}"
        )
    return grace


# ----------------------------------------------------------------------------- seeds


def worker_index() -> int | None:
    """This worker's index from ``$AUTOLR_WORKER_INDEX`` or a scheduler (Slurm, Kubernetes, MPI)."""
    for name in INDEX_ENVS:
        raw = os.environ.get(name)
        if raw is not None and raw.strip().lstrip("-").isdigit():
            return int(raw)
    return None


def worker_seed(seed: int | None, index: int | None = None) -> int | None:
    """The sampler seed of worker ``index``: the study seed itself for worker 0 (or a lone run).

    Other workers get a seed derived from ``(seed, index)``, so k seeded workers do not sample the
    same learning rates (``autolr worker`` with no known index uses one derived from its pid).
    """
    if seed is None:
        return None
    if index is None:
        index = worker_index()
    if not index:
        return seed
    return int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:4], "little")


# ----------------------------------------------------------------------------- heartbeats


class Heartbeat:
    """One daemon thread per process that stamps ``autolr.heartbeat`` on the trials it runs."""

    _lock = threading.Lock()
    _instance: Heartbeat | None = None

    def __init__(self) -> None:
        self.trials: dict[int, optuna.storages.BaseStorage] = {}
        self.guard = threading.Lock()
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="autolr-heartbeat", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> Heartbeat:
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = cls()
            return cls._instance

    @staticmethod
    def stamp(storage: optuna.storages.BaseStorage, trial_id: int) -> bool:
        """Write one heartbeat; False when the trial is finished (nothing more to do for it)."""
        import optuna

        try:
            storage.set_trial_user_attr(trial_id, ATTR_HEARTBEAT, time.time())
        except (optuna.exceptions.UpdateFinishedTrialError, KeyError):
            return False
        except Exception:  # noqa: BLE001 - a storage hiccup must not kill the thread; retry later
            return True
        return True

    def add(self, storage: optuna.storages.BaseStorage, trial_id: int) -> None:
        """Start beating for a trial; the first beat is written before this returns."""
        self.stamp(storage, trial_id)
        with self.guard:
            self.trials[trial_id] = storage

    def discard(self, trial_id: int) -> None:
        with self.guard:
            self.trials.pop(trial_id, None)

    @contextlib.contextmanager
    def beating(self, storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
        self.add(storage, trial_id)
        try:
            yield
        finally:
            self.discard(trial_id)

    def _beat(self) -> None:
        while True:
            self.wake.wait(heartbeat_interval())
            with self.guard:
                items = list(self.trials.items())
            for trial_id, storage in items:
                if not self.stamp(storage, trial_id):
                    self.discard(trial_id)


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


def check_workers(workers: Any, n_jobs: Any) -> tuple[int, int]:
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


def shareable_url(storage: Any) -> str:
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


def locate(tuned: Tuned[Any, Any]) -> str:
    """``"path/to/file.py:name"`` or ``"package.module:name"`` naming ``tuned`` for another process."""
    fn = tuned.fn
    qual = getattr(fn, "__qualname__", "") or ""
    if "<lambda>" in qual or "<locals>" in qual:
        raise TypeError(
            f"workers: {qual}() is a lambda or a function defined inside another function; "
            "worker processes import the train function by module and name, so define it at module "
            "level (decorated with @autolr.tune), or use n_jobs= to run threads in this process"
        )
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    names = [k for k, v in vars(module).items() if v is tuned] if module is not None else []
    if not names:
        raise TypeError(
            f"workers: cannot find {qual}() as a module-level name of {fn.__module__!r}; worker "
            "processes import it by name, so assign the decorated function at module level "
            "(`train = autolr.tune(...)(fn)` or `@autolr.tune` on a def), or use n_jobs="
        )
    name = fn.__name__ if fn.__name__ in names else names[0]
    if module.__name__ in ("__main__", "__mp_main__"):
        path = getattr(module, "__file__", None)
        if not path:
            raise TypeError(
                "workers: the train function was defined interactively (a notebook or the REPL), "
                "so other processes cannot import it; move it to a .py file, or use n_jobs= "
                "(threads) here"
            )
        return f"{os.path.abspath(path)}:{name}"
    return f"{module.__name__}:{name}"


def load_target(spec: str) -> Tuned[Any, Any]:
    """Import ``path/to/train.py:train`` or ``package.module:train`` and return it as a Tuned.

    A script is loaded under the name ``__mp_main__`` (as multiprocessing does), so its
    ``if __name__ == "__main__":`` block does not run; a plain function is wrapped with
    :func:`autolr.tune`'s defaults.
    """
    from autolr._tune import Tuned, tune

    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise ValueError(
            f"worker: expected 'path/to/train.py:function' or 'package.module:function', got {spec!r}"
        )
    global _importing
    _importing = spec
    try:
        if target.endswith(".py") or os.sep in target or "/" in target:
            path = Path(target).resolve()
            if not path.is_file():
                raise FileNotFoundError(f"worker: no such script {target!r}")
            sys.path.insert(0, str(path.parent))
            mod_spec = importlib.util.spec_from_file_location("__mp_main__", path)
            assert mod_spec is not None and mod_spec.loader is not None
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules["__mp_main__"] = module
            sys.modules["__main__"] = module  # objects pickled from the parent's script resolve
            mod_spec.loader.exec_module(module)
        else:
            if "" not in sys.path:
                sys.path.insert(0, "")
            module = importlib.import_module(target)
    finally:
        _importing = None
    obj = getattr(module, name, None)
    if obj is None:
        raise AttributeError(f"worker: {target!r} has no attribute {name!r}")
    if isinstance(obj, Tuned):
        return obj
    if callable(obj):
        return tune(obj)  # type: ignore[return-value]
    raise TypeError(f"worker: {spec!r} is a {type(obj).__name__}, expected a function")


def check_not_importing() -> None:
    """Raise when ``run()`` is called while a worker imports the user's script (no main guard)."""
    if _importing is not None:
        raise RuntimeError(
            f"autolr: importing {_importing.rpartition(':')[0]!r} for a worker called .run(); "
            "put the call under `if __name__ == \"__main__\":` so workers can import the script "
            "without starting a study"
        )


def _clone(tuned: Tuned[Any, Any], storage: str, study_name: str) -> Tuned[Any, Any]:
    from autolr._tune import Tuned

    return Tuned(tuned.fn, {**tuned.options, "storage": storage, "study_name": study_name})


def run_processes(
    tuned: Tuned[Any, Any],
    *,
    workers: int,
    n_trials: int,
    timeout: float | None,
    show_progress_bar: bool | None,
    kwargs: dict[str, Any],
) -> Result:
    """Start ``workers`` processes on ``tuned``'s study and wait until they all return.

    The study is created here first (so workers do not race to create it); each worker then runs
    the usual loop with its own index (seed) and stops when the study holds ``n_trials``.
    """
    from autolr._result import Result
    from autolr._tune import _Runner

    if os.environ.get(CHILD_ENV):
        raise RuntimeError(
            "autolr: run(workers=...) was called inside a worker process; a worker runs trials "
            "itself (put the call under `if __name__ == \"__main__\":`)"
        )
    url = shareable_url(tuned.options["storage"])
    spec = locate(tuned)
    study_name = tuned.study_name
    runner = _Runner(
        _clone(tuned, url, study_name), n_trials=n_trials, timeout=timeout,
        show_progress_bar=False, kwargs=kwargs,
    )
    study = runner.open_study()
    try:
        header = {
            "spec": spec, "storage": url, "study_name": study_name, "n_trials": n_trials,
            "timeout": timeout, "sys_path": list(sys.path),
        }
        payload = pickle.dumps((header, pickle.dumps(kwargs)))
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
        _supervise(procs, study, n_trials, show_progress_bar)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(job)
    failed = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode != 0]
    finished, _ = runner.slots(study.get_trials(deepcopy=False))
    if failed and finished < n_trials:
        i, rc = failed[0]
        raise RuntimeError(
            f"autolr: worker {i} exited with status {rc} (its error is printed above); study "
            f"{study_name!r} keeps {finished} of {n_trials} trials in {_storage.mask(url)}. "
            "Run again to resume."
        )
    return Result(study)


def _spawn(job: str, index: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env[CHILD_ENV] = "1"
    env["AUTOLR_WORKER_INDEX"] = str(index)
    code = "import sys; from autolr._workers import _child; sys.exit(_child(sys.argv[1]))"
    return subprocess.Popen([sys.executable, "-c", code, job], env=env)


def _supervise(
    procs: Sequence[subprocess.Popen[bytes]],
    study: optuna.Study,
    n_trials: int,
    show_progress_bar: bool | None,
) -> None:
    import signal

    from autolr._tune import counted

    bar = None
    if sys.stderr.isatty() if show_progress_bar is None else show_progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_trials, desc=study.study_name)
    try:
        while any(p.poll() is None for p in procs):
            if bar is not None:
                done = sum(1 for t in study.get_trials(deepcopy=False) if counted(t))
                bar.n = min(done, n_trials)
                bar.refresh()
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
        if bar is not None:
            bar.close()


def _child(job: str) -> int:
    """Entry point of a process started by :func:`run_processes`."""
    with open(job, "rb") as f:
        header, kwargs_blob = pickle.load(f)
    for p in reversed(header["sys_path"]):
        if p not in sys.path:
            sys.path.insert(0, p)
    try:
        tuned = load_target(header["spec"])
        # Unpickled only now: the kwargs may hold objects of classes defined in the script.
        kwargs = pickle.loads(kwargs_blob)
        worker = _clone(tuned, header["storage"], header["study_name"])
        worker.run(
            n_trials=header["n_trials"], timeout=header["timeout"], show_progress_bar=False,
            **kwargs,
        )
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # noqa: BLE001 - print it without the storage password
        sys.stderr.write(_storage.mask("".join(traceback.format_exception(exc))))
        return 1
    return 0


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


def run_worker(args: argparse.Namespace) -> int:
    """Run one worker from parsed ``autolr worker`` options; returns the exit status."""
    from autolr._tune import _check_n_trials

    try:
        if args.worker_index is not None:
            if args.worker_index < 0:
                raise ValueError(f"--worker-index: expected an int >= 0, got {args.worker_index}")
            os.environ["AUTOLR_WORKER_INDEX"] = str(args.worker_index)
        elif worker_index() is None:  # no scheduler index: any distinct number will do
            digest = hashlib.sha256(_storage.worker_id().encode()).digest()
            os.environ["AUTOLR_WORKER_INDEX"] = str(1 + int.from_bytes(digest[:3], "little"))
        n = _check_n_trials(args.n_trials, param="--n-trials") if args.n_trials is not None else None
        tuned = load_target(args.target)
        storage = args.storage or os.environ.get("AUTOLR_STORAGE") or tuned.options["storage"]
        if storage is None:
            storage = _storage.default_url()
        _storage.check_url(storage, param="--storage")
        worker = _clone(tuned, storage, args.study_name or tuned.study_name)
        result = worker.run(n_trials=n, timeout=args.timeout, show_progress_bar=False)
        from autolr._tune import counted

        finished = sum(1 for t in result.study.get_trials(deepcopy=False) if counted(t))
        print(
            f"autolr worker: study {worker.study_name!r} in {_storage.mask(storage)} holds "
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


if __name__ == "__main__":  # pragma: no cover - `python -m autolr._workers path.py:train ...`
    sys.exit(main())
