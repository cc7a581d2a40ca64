"""Where studies live: storage URLs, the default SQLite file, opening, password masking.

Everything that turns what a user wrote in ``storage=`` into an Optuna storage object is here, so
the runner, :func:`autolr.load` and the command line all agree on it. Which process runs a trial,
and whether it is still alive, is :mod:`autolr._liveness`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import re
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalRedisBackend

#: The default storage, relative to the working directory (``AUTOLR_STORAGE`` overrides it).
DEFAULT_STORAGE = "sqlite:///studies/autolr.db"
#: How long a SQLite writer waits for a lock held by another process or reader, in seconds.
SQLITE_TIMEOUT_S = 60.0

#: Attempts at opening a database whose Optuna tables other workers are creating at the same time.
SCHEMA_RETRIES = 8

_SQLITE_MAGIC = b"SQLite format 3\x00"
_CREATE_RACE_RE = re.compile(
    r"already exists|duplicate key|UniqueViolation|Duplicate entry|1050|1062|deadlock", re.I
)
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_URL_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.S)
_PASSWORD_RE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<at>@)")
_QUERY_PASSWORD_RE = re.compile(r"(?P<head>[?&](?:password|passwd|pwd)=)(?P<pw>[^&\s'\"]*)", re.I)


def is_write_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a storage failing to write (disk full, read-only file, lost server).

    Checks SQLAlchemy's errors only when SQLAlchemy is loaded (an RDB storage was opened), so
    ``import autolr`` does not pay for importing it.
    """
    if isinstance(exc, optuna.exceptions.StorageInternalError):
        return True
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    return sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.SQLAlchemyError)


def write_error(exc: BaseException, storage: str | BaseStorage | None) -> StorageError:
    """One line for a failed write: where, and the database's own reason (not Optuna's guess)."""
    root: BaseException = exc
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    reason = mask(str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__)
    return StorageError(
        f"storage: cannot write to {describe(storage)}: {reason}; finished trials are kept and "
        "the running one is re-run when you resume"
    )


class StorageError(ValueError):
    """A storage URL or file that autolr cannot use (malformed, unwritable, not a database)."""


def mask(text: str) -> str:
    """Return ``text`` with the password of every URL in it replaced by ``***``.

    Example:
        >>> mask("postgresql://me:s3cret@db:5432/test")
        'postgresql://me:***@db:5432/test'
    """
    text = _PASSWORD_RE.sub(lambda m: f"{m.group('head')}***{m.group('at')}", text)
    return _QUERY_PASSWORD_RE.sub(lambda m: f"{m.group('head')}***", text)


def default_url() -> str:
    """The storage used when none is given: ``$AUTOLR_STORAGE`` or ``sqlite:///studies/autolr.db``."""
    return os.environ.get("AUTOLR_STORAGE") or DEFAULT_STORAGE


def describe(storage: str | BaseStorage | None) -> str:
    """A printable, password-free name for a storage argument."""
    if storage is None:
        return mask(default_url())
    if isinstance(storage, str):
        return mask(storage)
    return type(storage).__name__


def check_url(url: object, *, param: str = "storage") -> str:
    """Validate a storage URL's shape without touching the network or the disk.

    Returns the scheme family: ``"sqlite"``, ``"rdb"``, ``"redis"`` or ``"journal"``.
    Raises :class:`StorageError` naming ``param`` for anything else.
    """
    if not isinstance(url, str) or not url.strip():
        raise StorageError(
            f"{param}: expected an Optuna storage URL such as {DEFAULT_STORAGE!r} or an "
            f"optuna.storages.BaseStorage, got {url!r}"
        )
    m = _URL_RE.match(url)
    if m is None:
        raise StorageError(
            f"{param}: expected a URL like {DEFAULT_STORAGE!r}, 'postgresql://user@host/db', "
            f"'redis://host:6379' or 'journal:///path/to/file.log', got {mask(url)!r}"
        )
    scheme = m.group("scheme").lower()
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        if not m.group("rest").startswith("/") or m.group("rest") in ("/", "//"):
            raise StorageError(
                f"{param}: a SQLite URL needs a file path, like {DEFAULT_STORAGE!r} (relative) "
                f"or 'sqlite:////abs/path.db', got {mask(url)!r}"
            )
        if m.group("rest") == "/:memory:":
            return "rdb"
        return "sqlite"
    if base in _RDB_SCHEMES:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(url)
        except (ArgumentError, ValueError) as exc:
            raise StorageError(f"{param}: malformed database URL {mask(url)!r} ({exc})") from None
        return "rdb"
    if base in _REDIS_SCHEMES:
        return "redis"
    if base == "journal":
        if not m.group("rest").startswith("/") or len(m.group("rest")) < 2:
            raise StorageError(
                f"{param}: a journal URL needs a file path, like 'journal:///studies/autolr.log', "
                f"got {mask(url)!r}"
            )
        return "journal"
    raise StorageError(
        f"{param}: unknown storage scheme {scheme!r} in {mask(url)!r}; expected sqlite://, "
        "postgresql://, mysql://, redis:// or journal://"
    )


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:///...`` URL points at (relative to the working directory)."""
    rest = _URL_RE.match(url).group("rest")  # type: ignore[union-attr]
    path = rest[1:]  # "sqlite:///rel" -> "rel", "sqlite:////abs" -> "/abs"
    return Path(path.split("?", 1)[0])


def _journal_path(url: str) -> Path:
    rest = _URL_RE.match(url).group("rest")  # type: ignore[union-attr]
    return Path(rest[1:])


def check_sqlite_file(path: Path, *, param: str = "storage") -> None:
    """Refuse a file that exists but is not a SQLite database; it is never overwritten."""
    if path.exists():
        if path.is_dir():
            raise StorageError(f"{param}: {str(path)!r} is a directory, expected a SQLite file")
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
        if head and head != _SQLITE_MAGIC:
            raise StorageError(
                f"{param}: {str(path)!r} exists but is not a SQLite database; autolr will not "
                "overwrite it (move it away or choose another storage)"
            )


def ensure_writable_dir(directory: Path, *, param: str = "storage") -> None:
    """Create ``directory`` if missing; raise a one-line error if it cannot be written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"{param}: cannot create the studies directory {str(directory)!r} ({exc.strerror})"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StorageError(
            f"{param}: the studies directory {str(directory)!r} is not writable; choose another "
            "storage or fix its permissions"
        )


def open_storage(storage: str | BaseStorage | None, *, create: bool = True) -> BaseStorage:
    """Turn a ``storage=`` argument into an Optuna storage object.

    Args:
        storage: ``None`` (the default SQLite file), a URL, or an Optuna storage object.
        create: when False, a SQLite or journal file that does not exist is an error instead of
            being created (used by :func:`autolr.load` and the reports).
    """
    if storage is not None and not isinstance(storage, str):
        if isinstance(storage, optuna.storages.BaseStorage):
            return storage
        raise StorageError(
            "storage: expected a URL string or an optuna.storages.BaseStorage, "
            f"got {type(storage).__name__}"
        )
    url = default_url() if storage is None else storage
    family = check_url(url, param="AUTOLR_STORAGE" if storage is None and os.environ.get("AUTOLR_STORAGE") else "storage")
    if family == "sqlite":
        path = sqlite_path(url)
        check_sqlite_file(path)
        if not path.exists():
            if not create:
                raise StorageError(f"storage: no study file at {str(path)!r} (from {mask(url)!r})")
            ensure_writable_dir(path.parent if str(path.parent) else Path("."))
        elif not os.access(path, os.W_OK) and create:
            raise StorageError(f"storage: the study file {str(path)!r} is read-only")
        return _rdb(url, sqlite=True, create=create)
    if family == "rdb":
        return _rdb(url, sqlite=False, create=create)
    if family == "redis":
        url, prefix = _redis_prefix(url)
        try:
            return JournalStorage(JournalRedisBackend(url, prefix=prefix))
        except ImportError:
            raise ImportError(
                "storage: redis:// needs the redis client: pip install 'autolr[redis]'"
            ) from None
    # journal file
    path = _journal_path(url)
    if not path.exists():
        if not create:
            raise StorageError(f"storage: no journal file at {str(path)!r}")
        ensure_writable_dir(path.parent)
    return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path))))


def _redis_prefix(url: str) -> tuple[str, str]:
    """Split autolr's ``?prefix=NAME`` (a key namespace, so projects can share one Redis) off a URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = "".join(v for k, v in query if k == "prefix")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def _sqlite_wal(path: Path) -> None:
    """Put a SQLite study file in write-ahead-log mode (it stays so; readers never block writers).

    With WAL, optuna-dashboard or a second reader can hold the file while a study writes
    (optuna-dashboard#545), and each commit appends to the log instead of rewriting pages.
    """
    con = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StorageError(
                f"storage: {str(path)!r} is not a SQLite database; autolr will not overwrite it"
            ) from None
        raise
    finally:
        con.close()


def _sqlite_pragmas(storage: RDBStorage) -> None:
    """``synchronous=NORMAL`` on every connection: in WAL mode a commit then needs no fsync.

    A process killed with SIGKILL loses nothing it committed (the log is in the OS cache); only a
    power cut or kernel crash can lose the last commits. That trade makes a SQLite write cost
    about as much as a journal-file append (benchmarks/overhead.py).
    """
    from sqlalchemy import event  # SQLAlchemy costs import time: RDB storages only

    engine = storage.engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    engine.dispose()  # connections made while creating the tables reconnect with the pragma


#: Seconds a storage call is retried on a lost connection or a locked database before it fails
#: (``AUTOLR_STORAGE_RETRY`` overrides).
STORAGE_RETRY_S = 300.0
_TRANSIENT_RE = re.compile(
    r"database is locked|database table is locked|server closed the connection|terminating "
    r"connection|connection (?:was |is )?(?:closed|refused|reset|lost)|lost connection|gone away|"
    r"could not connect|SSL SYSCALL|broken pipe|deadlock|could not serialize",
    re.I,
)
_said_retrying: list[bool] = []


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise StorageError(f"{name}: expected seconds > 0, got {raw!r}") from None
    if not value > 0:
        raise StorageError(f"{name}: expected seconds > 0, got {raw!r}")
    return value


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a storage error that a retry may cure: a dropped connection (a server
    restarted, ``pg_terminate_backend``), a locked SQLite file, a deadlock."""
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if (
            sqlalchemy_exc is not None and isinstance(seen, sqlalchemy_exc.DBAPIError)
            and seen.connection_invalidated
        ):
            return True
        if _TRANSIENT_RE.search(str(seen)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retrying(method: Callable[..., object]) -> Callable[..., object]:
    @functools.wraps(method)
    def call(self: object, *args: object, **kwargs: object) -> object:
        bound = _env_float("AUTOLR_STORAGE_RETRY", STORAGE_RETRY_S)
        deadline = time.monotonic() + bound
        delay = 0.05
        while True:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - only transient ones are retried
                if not is_transient(exc):
                    raise
                if time.monotonic() + delay > deadline:
                    raise StorageError(
                        f"storage: still failing after {bound:g} s of retries: "
                        f"{mask(_first_line(exc))}"
                    ) from exc
                if not _said_retrying:
                    _said_retrying.append(True)
                    print(
                        f"autolr: the storage failed ({mask(_first_line(exc))}); reconnecting "
                        f"and retrying for up to {bound:g} s",
                        file=sys.stderr,
                    )
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)

    return call


def _first_line(exc: BaseException) -> str:
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    text = str(root).strip()
    return f"{type(root).__name__}: {text.splitlines()[0] if text else ''}"[:300]


class _ResilientRDBStorage(RDBStorage):
    """Optuna's RDB storage, whose every call reconnects and retries transient errors
    (bounded, :data:`STORAGE_RETRY_S`), saying so once per process."""


for _name in [n for n in dir(BaseStorage) if not n.startswith("_")] + ["_get_trials"]:
    if _name in ("get_heartbeat_interval", "get_heartbeat_stale_trial_callback"):
        continue
    _method = getattr(RDBStorage, _name, None)
    if callable(_method):
        setattr(_ResilientRDBStorage, _name, _retrying(_method))


#: Set by a worker job to :func:`schema_token` of the URL whose schema its parent checked (and
#: created): the worker skips Optuna's table creation and Alembic's version check (~0.4 s each).
SCHEMA_CHECKED_ENV = "AUTOLR_SCHEMA_CHECKED"


def schema_token(url: str) -> str:
    """A digest naming ``url`` (never the URL itself: it may hold a password)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def is_memory_url(url: object) -> bool:
    """Whether ``url`` is SQLite in the memory of this process (``sqlite:///:memory:``)."""
    return isinstance(url, str) and url.split("?", 1)[0].lower() == "sqlite:///:memory:"


def _rdb(url: str, *, sqlite: bool, create: bool) -> BaseStorage:
    from sqlalchemy.exc import SQLAlchemyError  # SQLAlchemy costs import time: RDB storages only

    engine_kwargs: dict[str, object] = {}
    if sqlite:
        timeout = _env_float("AUTOLR_SQLITE_TIMEOUT", SQLITE_TIMEOUT_S)
        engine_kwargs["connect_args"] = {"timeout": timeout}
        if create:
            _sqlite_wal(sqlite_path(url))
    elif is_memory_url(url):
        # One database shared by every thread of the process (autolr's search runs each trial
        # in a thread of its own); SQLAlchemy would otherwise give each thread its own, empty one.
        from sqlalchemy.pool import StaticPool

        engine_kwargs["poolclass"] = StaticPool
        engine_kwargs["connect_args"] = {"check_same_thread": False}
    else:  # a server: test a pooled connection before use (it may have been dropped meanwhile)
        engine_kwargs["pool_pre_ping"] = True
    checked = os.environ.get(SCHEMA_CHECKED_ENV) == schema_token(url)
    try:
        for attempt in range(SCHEMA_RETRIES):
            try:
                storage = _ResilientRDBStorage(
                    url, engine_kwargs=engine_kwargs, skip_table_creation=not create or checked,
                    skip_compatibility_check=checked,
                )
                if sqlite:
                    _sqlite_pragmas(storage)
                return storage
            except SQLAlchemyError as exc:
                # k workers starting on a fresh database race to create Optuna's tables
                # (PostgreSQL: duplicate pg_type; MySQL: table exists): the winner's schema is
                # there a moment later.
                if not create or not _CREATE_RACE_RE.search(str(exc)) or attempt == SCHEMA_RETRIES - 1:
                    raise
                time.sleep(0.2 + random.random() * 0.5)
        raise AssertionError("unreachable")  # pragma: no cover
    except RuntimeError as exc:
        if "upgrade" in str(exc).lower() or "schema" in str(exc).lower():
            raise StorageError(
                f"storage: {mask(url)!r} was written by an older Optuna; back it up, then run "
                f"`optuna storage upgrade --storage '{mask(url)}'`"
            ) from None
        raise
    except ImportError as exc:
        raise ImportError(f"storage: the driver for {mask(url)!r} is missing ({exc})") from None
    except SQLAlchemyError as exc:
        msg = str(exc).splitlines()[0]
        if "file is not a database" in msg:
            raise StorageError(
                f"storage: {mask(url)!r} is not a SQLite database; autolr will not overwrite it"
            ) from None
        raise StorageError(f"storage: cannot open {mask(url)!r}: {mask(msg)}") from None
