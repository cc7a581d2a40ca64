"""Where studies live: storage URLs, the default SQLite file, opening, password masking.

Everything that turns what a user wrote in ``storage=`` into an Optuna storage object is here, so
the runner, :func:`autolr.load` and the command line all agree on it. Which process runs a trial,
and whether it is still alive, is :mod:`autolr._liveness`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import random
import re
import sqlite3
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalRedisBackend
from optuna.storages.journal._file import get_lock_file

#: The default storage, relative to the working directory (``AUTOLR_STORAGE`` overrides it).
DEFAULT_STORAGE = "sqlite:///studies/autolr.db"
#: How long a SQLite writer waits for a lock held by another process or reader, in seconds.
SQLITE_TIMEOUT_S = 60.0

#: Attempts at opening a database whose Optuna tables other workers are creating at the same time.
SCHEMA_RETRIES = 8

_CREATE_RACE_RE = re.compile(
    r"already exists|duplicate key|UniqueViolation|Duplicate entry|1050|1062|deadlock"
    r"|UNIQUE constraint failed|database is locked",  # SQLite: alembic_version, two writers
    re.I,
)
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_URL_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.S)
#: A URL's authority: from ``scheme://`` to the first ``/ ? #``, quote, angle bracket or line end.
#: Spaces are kept inside, so a raw space in a password cannot cut the password in two.
_AUTHORITY_RE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<auth>[^/?#'\"<>\n\r]*)")
#: Query parameters whose value is a secret (libpq, SQLAlchemy drivers, redis-py, cloud tokens).
SECRET_PARAMS = ("password", "passwd", "pwd", "pass", "sslpassword", "secret", "token",
                 "access_token", "auth_token", "api_key", "apikey", "private_key")
_QUERY_PASSWORD_RE = re.compile(
    r"(?P<head>[?&;](?:" + "|".join(SECRET_PARAMS) + r")=)(?P<pw>[^&;'\"<>\s]*)", re.I
)


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


class ForeignStudyError(StorageError):
    """A stored study autolr did not write and cannot read (several objectives, a categorical
    ``lr``): refused with one line, never changed."""


def _mask_authority(auth: str) -> str:
    """``user:pw@host,user2:pw2@host2`` -> ``user:***@host,user2:***@host2``."""
    parts = auth.split("@")
    if len(parts) == 1:
        return auth
    out = []
    for i, part in enumerate(parts[:-1]):
        head, sep, info = part.rpartition(",") if i else ("", "", part)
        user, colon, _pw = info.partition(":")
        out.append(head + sep + (f"{user}:***" if colon else info))
    return "@".join(out + [parts[-1]])


def mask(text: str) -> str:
    """Return ``text`` with every password in a URL replaced by ``***``.

    Masks ``user:password@`` (raw spaces included, every host of a multi-host URL) and query
    parameters that carry secrets (:data:`SECRET_PARAMS`: ``password``, ``sslpassword``, ...).

    Example:
        >>> mask("postgresql://me:s3cret@db:5432/test")
        'postgresql://me:***@db:5432/test'
        >>> mask("postgresql://me:tiger lily@db/test?sslpassword=k3y")
        'postgresql://me:***@db/test?sslpassword=***'
    """
    text = _AUTHORITY_RE.sub(lambda m: m.group("head") + _mask_authority(m.group("auth")), text)
    return _QUERY_PASSWORD_RE.sub(lambda m: f"{m.group('head')}***", text)


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` for a one-line message: passwords masked, at most ``limit`` characters.

    Example:
        >>> print(shown("x" * 10_000))
        'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (10000 characters)
    """
    text = mask(repr(value)).replace("\n", " ")
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return text[: limit - 10] + "'..." + size if isinstance(value, str) else text[: limit - 3] + "..."


def read_error(exc: BaseException, storage: str | BaseStorage | None) -> StorageError:
    """One line for a storage that cannot be read (unreachable server, damaged file)."""
    root: BaseException = exc
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    text = str(root).strip()
    reason = mask(text.splitlines()[0] if text else type(root).__name__)
    return StorageError(f"storage: cannot read {describe(storage)}: {reason[:300]}")


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
            # the parser's reason may quote a piece of the URL holding a password: only when not
            detail = mask(str(exc)) if "@" not in str(exc) else "cannot parse its user/host part"
            raise StorageError(f"{param}: malformed database URL {mask(url)!r} ({detail})") from None
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


def sqlite_tables(path: Path, *, param: str = "storage") -> set[str]:
    """The table names in the SQLite file ``path``, read through SQLite itself, read-only.

    Never ``open()`` a SQLite file that may be live: SQLite's locks are POSIX locks held per
    process and file, and closing *any* descriptor of the file drops all of this process's locks,
    so another process may checkpoint and delete the write-ahead log under a connection still
    writing to it (sqlite.org "How To Corrupt An SQLite Database File", 2.2). A connection of
    SQLite's own shares the process's descriptor bookkeeping and defers that close. An empty file
    is an empty database (no tables).
    """
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise StorageError(f"{param}: cannot open {str(path)!r}: {exc}") from None
    try:
        rows = con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StorageError(
                f"{param}: {str(path)!r} exists but is not a SQLite database; autolr will not "
                "overwrite it (move it away or choose another storage)"
            ) from None
        if "malformed" in str(exc):
            raise StorageError(
                f"{param}: {str(path)!r} is a damaged SQLite database ({exc}); autolr will not "
                "write to it (restore a backup, or try `sqlite3 FILE .recover`)"
            ) from None
        raise StorageError(f"{param}: cannot read {str(path)!r}: {exc}") from None
    finally:
        con.close()
    return {str(name) for (name,) in rows}


#: Tables every Optuna RDB schema has; a SQLite file with tables but none of these is foreign.
_OPTUNA_TABLES = frozenset({"studies", "version_info"})


def check_sqlite_file(path: Path, *, param: str = "storage") -> None:
    """Refuse a file that exists but is not an Optuna SQLite database; it is never touched.

    An empty database (no tables) is fine: Optuna creates its tables there. A database of another
    application (tables, but not Optuna's ``studies``/``version_info``) is refused before anything
    is written, its journal mode included.
    """
    if not path.exists():
        return
    if path.is_dir():
        raise StorageError(f"{param}: {str(path)!r} is a directory, expected a SQLite file")
    tables = sqlite_tables(path, param=param)
    if tables and not tables & _OPTUNA_TABLES:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise StorageError(
            f"{param}: {str(path)!r} is a SQLite database of another application (tables: "
            f"{shown}), not an Optuna study file; autolr will not touch it (choose another storage)"
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
        return _redis(url)
    # journal file
    path = _journal_path(url)
    if not path.exists():
        if not create:
            raise StorageError(f"storage: no journal file at {str(path)!r}")
        ensure_writable_dir(path.parent)
    else:
        check_journal_file(path)
    return JournalStorage(JournalFile(str(path), lock_obj=JournalFileOpenLock(str(path))))


class JournalFile(JournalFileBackend):
    """Optuna's journal file, safe on a full disk: a failed append leaves no torn line behind.

    Optuna appends one JSON line per operation; a write cut short (disk full, quota, a process
    killed mid-write) leaves a partial last line, which Optuna's reader skips while it is last but
    which breaks every later read once the next record is appended onto it. Here each append
    first cuts off a torn tail left by someone else (it holds no complete record), and a failed
    append cuts the file back to where it began and raises one line
    (``optuna.exceptions.StorageInternalError``, turned into a :class:`StorageError` by the
    runner). Both happen under the journal's lock.
    """

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode()
        with get_lock_file(self._lock):
            fd = os.open(self._file_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                start = _complete_end(fd)
                size = os.fstat(fd).st_size
                if start != size and not _RECORD_START.startswith(os.pread(fd, len(_RECORD_START), start)):
                    raise optuna.exceptions.StorageInternalError(
                        f"the journal file {self._file_path!r} ends with a line that is not a "
                        "journal record; autolr will not overwrite it"
                    )
                try:
                    if start != size:
                        os.ftruncate(fd, start)  # a torn last record: it never held a whole line
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                except OSError as exc:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, start)
                    raise optuna.exceptions.StorageInternalError(
                        f"cannot append to the journal file {self._file_path!r}: "
                        f"{exc.strerror or exc}"
                    ) from exc
            finally:
                os.close(fd)


#: How every record of Optuna's journal begins (``json.dumps`` of a dict whose first key is it).
_RECORD_START = b'{"op_code":'


def check_journal_file(path: Path, *, param: str = "storage") -> None:
    """Refuse a non-empty file whose first line is not an Optuna journal record; never touched."""
    if path.is_dir():
        raise StorageError(f"{param}: {str(path)!r} is a directory, expected a journal file")
    with open(path, "rb") as f:  # a journal file has no POSIX locks to lose (not SQLite)
        head = f.read(len(_RECORD_START))
    if head and not _RECORD_START.startswith(head):  # (a first record being written: a prefix)
        raise StorageError(
            f"{param}: {str(path)!r} exists but is not an Optuna journal file; autolr will not "
            "touch it (move it away or choose another storage)"
        )


def _complete_end(fd: int, chunk: int = 1 << 16) -> int:
    """The size of the file's complete lines: just past its last newline (0 if it has none)."""
    end = os.fstat(fd).st_size
    pos = end
    while pos > 0:
        start = max(0, pos - chunk)
        block = os.pread(fd, pos - start, start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        pos = start
    return 0


def _redis(url: str) -> BaseStorage:
    """A journal on Redis: reached once now, so a wrong address is one line, not a traceback.

    Optuna marks ``JournalRedisBackend`` experimental and warns on every use; autolr relies on it
    knowingly, so that warning is silenced here.
    """
    bare, prefix = _redis_prefix(url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return JournalStorage(JournalRedisBackend(bare, prefix=prefix))
    except ImportError:
        raise ImportError(
            "storage: redis:// needs the redis client: pip install 'autolr[redis]'"
        ) from None
    except Exception as exc:  # redis.exceptions.* (redis is an optional dependency)
        if type(exc).__module__.split(".")[0] != "redis":
            raise
        raise StorageError(f"storage: cannot reach {mask(url)}: {mask(str(exc))[:300]}") from None


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
                if sqlite and create:
                    _sqlite_wal(sqlite_path(url))
                storage = _ResilientRDBStorage(
                    url, engine_kwargs=engine_kwargs, skip_table_creation=not create or checked,
                    skip_compatibility_check=checked,
                )
                if sqlite:
                    _sqlite_pragmas(storage)
                return storage
            except (SQLAlchemyError, sqlite3.OperationalError) as exc:
                # k workers starting on a fresh database race to create Optuna's tables
                # (PostgreSQL: duplicate pg_type; MySQL: table exists; SQLite: alembic_version's
                # row twice, or "locked" at once while another switches the file to WAL): the
                # winner's schema is there a moment later.
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
    except optuna.exceptions.StorageInternalError as exc:  # Optuna's wrapper of the reason
        error = read_error(exc, url)
        if "no such table" in str(error):
            raise StorageError(f"storage: cannot open {mask(url)!r}: no such table") from None
        raise error from None
    except SQLAlchemyError as exc:
        msg = str(exc).splitlines()[0]
        if "file is not a database" in msg:
            raise StorageError(
                f"storage: {mask(url)!r} is not a SQLite database; autolr will not overwrite it"
            ) from None
        raise StorageError(f"storage: cannot open {mask(url)!r}: {mask(msg)}") from None
