"""Is the process behind a RUNNING trial still alive? Worker identity, heartbeats, staleness.

Every trial carries the identity of the process that runs it (``autolr.worker``, written when the
trial is created, :func:`worker_id`) and, while it runs, a heartbeat (``autolr.heartbeat``,
stamped every ``$AUTOLR_HEARTBEAT_INTERVAL`` seconds by one daemon thread per process,
:class:`Heartbeat`). A trial is stale (:func:`is_stale`) when its process on this host is gone
(seen at once from the pid) or, elsewhere, when its heartbeat is older than the grace period.
:func:`recovery_lock` serializes the recovery of a stale trial between processes on one SQLite
file. Failing and retrying a stale trial is :mod:`autolr._record`'s job.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

import optuna

from autolr import _storage
from autolr._schema import ATTR_HEARTBEAT, TrialView

if TYPE_CHECKING:
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

#: Set in the environment of worker processes (``workers=``/``executor=`` jobs): they leave the
#: one "interrupted" message to the parent, and ``run(workers=)`` refuses to nest.
CHILD_ENV = "AUTOLR_WORKER_CHILD"


def in_worker_job() -> bool:
    """Whether this process runs a job of ``run(workers=)`` or ``run(executor=)``."""
    return bool(os.environ.get(CHILD_ENV))


#: Seconds between two heartbeats (``AUTOLR_HEARTBEAT_INTERVAL`` overrides).
HEARTBEAT_INTERVAL_S = 10.0
#: Seconds without a heartbeat after which a RUNNING trial is failed as ``crashed`` and its
#: learning rate retried (``AUTOLR_HEARTBEAT_GRACE`` overrides). Hosts' clocks must agree to well
#: within this (NTP does).
HEARTBEAT_GRACE_S = 60.0


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


# ----------------------------------------------------------------------------- identity


def _proc_start_time(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # Field 22 (starttime); the command name (field 2) may contain spaces, so split after ')'.
    fields = data.rsplit(")", 1)[-1].split()
    if fields and fields[0] in ("Z", "X"):
        return "dead"  # a zombie (killed, not yet reaped by its parent) runs nothing any more
    return fields[19] if len(fields) > 19 else None


#: A random id for this process, so no two workers ever share an identity (two containers with
#: one hostname may both run their worker as pid 1). Regenerated in a forked child.
_TOKEN: dict[int, str] = {}


def _pid_namespace() -> str:
    """The inode of this process's PID namespace (Linux), or ``?``: pids mean something only
    within one namespace."""
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return "?"
    return "".join(c for c in link if c.isdigit()) or "?"


def worker_id() -> str:
    """``host:pid:start:pidns:token`` naming this process, stored on each trial it runs.

    The random ``token`` makes it unique everywhere; host, PID namespace, pid and start time let
    a worker on the same host and namespace see at once that the process is gone.
    """
    pid = os.getpid()
    token = _TOKEN.get(pid)
    if token is None:
        token = _TOKEN.setdefault(pid, secrets.token_hex(6))
    return f"{socket.gethostname()}:{pid}:{_proc_start_time(pid) or '?'}:{_pid_namespace()}:{token}"


def worker_is_dead(worker: str | None) -> bool:
    """True when ``worker`` (from :func:`worker_id`) names a process on this host that is gone.

    Unknown (another host, another PID namespace, or no record) is not dead: those trials are
    left to heartbeats.
    """
    if not worker or not isinstance(worker, str):
        return False
    parts = worker.split(":")
    if len(parts) == 5:
        host, pid_s, start, ns, _ = parts
        if ns != _pid_namespace():
            return False  # another PID namespace (a container): its pids are not ours
    elif len(parts) == 3:  # written by an older autolr: host:pid:start
        host, pid_s, start = parts
    else:
        return False
    try:
        pid = int(pid_s)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    if pid == os.getpid():  # this pid is ours now: dead only if it was an earlier process's
        return start != "?" and start != _proc_start_time(pid)
    now = _proc_start_time(pid)
    if now is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return start != "?"  # alive but /proc unreadable: only trust a known start time
    return start != "?" and now != start


def is_stale(trial: TrialView | FrozenTrial, *, grace: float, now: float | None = None) -> bool:
    """True when a RUNNING ``trial`` has no living process behind it.

    A process on this host that is gone is seen at once (:func:`worker_is_dead`); elsewhere the
    trial's last heartbeat (unix time) must be older than ``grace`` seconds; a trial that never got
    a heartbeat counts from its start time.
    """
    view = trial if isinstance(trial, TrialView) else TrialView.of(trial)
    if worker_is_dead(view.worker):
        return True
    now = time.time() if now is None else now
    if view.heartbeat is not None:
        return now - view.heartbeat > grace
    if view.started is None:
        return False
    return (datetime.fromtimestamp(now) - view.started).total_seconds() > grace


@contextlib.contextmanager
def recovery_lock(storage: str | BaseStorage | None) -> Iterator[None]:
    """Serialize stale-trial recovery between processes sharing one SQLite file.

    PostgreSQL and MySQL lock the trial row (``SELECT ... FOR UPDATE``) and journal storages reject
    the second of two competing state changes, so a trial is failed (and its lr retried) once;
    SQLite ignores ``FOR UPDATE``, so workers on its (necessarily local) file take an ``flock``.
    """
    url = _storage.default_url() if storage is None else storage
    if not isinstance(url, str) or _storage.check_url(url) != "sqlite":
        yield
        return
    path = _storage.sqlite_path(url)
    lock = path.with_name(path.name + ".autolr-lock")
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- heartbeats


def _in_process(storage: BaseStorage) -> bool:
    """Whether ``storage`` lives in this process's memory (no other process can read it)."""
    if isinstance(storage, optuna.storages.InMemoryStorage):
        return True
    backend = getattr(storage, "_backend", storage)  # Optuna wraps RDB storages in a cache
    return _storage.is_memory_url(getattr(backend, "url", None))


class Heartbeat:
    """One daemon thread per process that stamps ``autolr.heartbeat`` on the trials it runs."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _instance: ClassVar[Heartbeat | None] = None

    def __init__(self) -> None:
        self.trials: dict[int, BaseStorage] = {}
        self.guard = threading.Lock()
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="autolr-heartbeat", daemon=True)
        self.thread.start()

    @classmethod
    def get(cls) -> Heartbeat:
        """This process's heartbeat thread (started on first use, restarted after a fork)."""
        with cls._lock:
            if cls._instance is None or not cls._instance.thread.is_alive():
                cls._instance = cls()
            return cls._instance

    @staticmethod
    def stamp(storage: BaseStorage, trial_id: int) -> bool:
        """Write one heartbeat; False when the trial is finished (nothing more to do for it)."""
        try:
            storage.set_trial_user_attr(trial_id, ATTR_HEARTBEAT, time.time())
        except (optuna.exceptions.UpdateFinishedTrialError, KeyError):
            return False
        except Exception:  # noqa: BLE001 - a storage hiccup must not kill the thread; retry later
            return True
        return True

    def add(self, storage: BaseStorage, trial_id: int) -> None:
        """Start beating for a trial; the first beat is written before this returns.

        A storage in this process's memory gets none: no other process can see it, and its one
        shared SQLite connection must not be written from two threads at once.
        """
        if _in_process(storage):
            return
        self.stamp(storage, trial_id)
        with self.guard:
            self.trials[trial_id] = storage

    def discard(self, trial_id: int) -> None:
        with self.guard:
            self.trials.pop(trial_id, None)

    @contextlib.contextmanager
    def beating(self, storage: BaseStorage, trial_id: int) -> Iterator[None]:
        """Beat for ``trial_id`` while the block runs."""
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
