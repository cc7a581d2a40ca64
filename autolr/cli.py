"""The ``autolr`` command: list studies, print or export reports, draw plots, start the dashboard.

Usage::

    autolr studies [--storage URL]
    autolr delete STUDY [--storage URL] [--yes]
    autolr rename OLD NEW [--storage URL]
    autolr report STUDY [--storage URL] [--format table|md|csv|json|html|parquet] [-o FILE]
    autolr plot STUDY [--storage URL] [-o DIR] [--format png|svg|both]
    autolr best STUDY [--storage URL]
    autolr dashboard [STORAGE] [--host 127.0.0.1] [--port 8080]
    autolr worker path/to/train.py:train [--storage URL] [--n-trials N] [--worker-index I]

The storage defaults to ``$AUTOLR_STORAGE`` or ``sqlite:///studies/autolr.db``; reading never
creates a file. User errors (a missing study or file, a bad option) print one line to stderr
and exit with status 1; passwords in URLs are masked in everything printed.

Each subcommand is one ``_cmd_<name>(args)`` function registered in :func:`build_parser`, so a
new one is a small addition. pandas, matplotlib and optuna-dashboard are imported only by the
subcommand that needs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import optuna
from optuna.storages import BaseStorage

from autolr import _dashboard_server, _lifecycle, _plots, _reports, _storage
from autolr._fingerprint import Fingerprint
from autolr._result import Result, StudyNotFoundError, load
from autolr._schema import (
    STUDY_FINGERPRINT,
    STUDY_RECOMMENDED_LR,
    STUDY_SEARCH,
    STUDY_VERSION,
)
from autolr._version import __version__
from autolr._worker import build_parser as worker_options
from autolr._worker import run_worker

EXIT_OK = 0
EXIT_USER_ERROR = 1


class UserError(Exception):
    """A mistake the user can fix: printed as one line, exit status 1."""


def _say(text: str, *, err: bool = False) -> None:
    print(_storage.mask(text), file=sys.stderr if err else sys.stdout, flush=True)


# ----------------------------------------------------------------------------- storage


def _storage_arg(value: str | None) -> str | None:
    """A URL as given, or a plain file path: SQLite if it is one (or ends .db), else a journal."""
    if value is None or "://" in value:
        return value
    path = Path(value).expanduser().resolve()
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        return f"sqlite:///{path}"
    if path.is_file():
        with open(path, "rb") as f:
            if f.read(16) == b"SQLite format 3\x00":
                return f"sqlite:///{path}"
        return f"journal:///{path}"
    return f"sqlite:///{path}"


def _open(storage: str | None) -> BaseStorage | None:
    """Open the storage for reading; a missing file is a :class:`UserError`; None: no studies."""
    try:
        return _storage.open_storage(storage, create=False)
    except optuna.exceptions.StorageInternalError as exc:  # a database that cannot be reached
        cause = exc.__cause__ or exc
        first = str(getattr(cause, "orig", None) or cause).strip().splitlines()[0]
        if "no such table" in first:
            return None  # a SQLite file Optuna has not written yet: no studies
        raise UserError(f"cannot open {_storage.describe(storage)}: {first}") from None
    except _storage.StorageError as exc:
        if "no such table" in str(exc):
            return None  # a SQLite file autolr/Optuna has not written yet: no studies
        raise UserError(
            f"{exc}; pass --storage URL or set AUTOLR_STORAGE"
            if "no study file" in str(exc) or "no journal file" in str(exc)
            else str(exc)
        ) from None


def _study_names(store: BaseStorage | None) -> list[str]:
    if store is None:
        return []
    try:
        return sorted(s.study_name for s in store.get_all_studies())
    except Exception as exc:  # an empty SQLite file has no tables yet
        if "no such table" in str(exc):
            return []
        raise


def _load(name: str, storage: str | None) -> Result:
    store = _open(storage)
    if store is None:
        raise UserError(f"no study {name!r} in {_storage.describe(storage)}; studies there: none")
    try:
        return load(name, storage=store)
    except StudyNotFoundError:
        known = ", ".join(repr(n) for n in _study_names(store)) or "none"
        raise UserError(
            f"no study {name!r} in {_storage.describe(storage)}; studies there: {known}"
        ) from None


# ----------------------------------------------------------------------------- commands


#: ``autolr studies`` computes the recommendation of studies up to this size; larger ones show
#: the one stored at the end of their last run (reading 20,000 trials takes seconds).
LIST_RECOMPUTE_MAX = 500


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%dT%H:%M") if hasattr(value, "strftime") else "-"


def _best_lr(store: BaseStorage, row: _lifecycle.StudyRow) -> str:
    """The recommended lr: computed for a small study, else the one its last run stored."""
    if len(row.directions) != 1:
        return "-"
    lr: object = row.user_attrs.get(STUDY_RECOMMENDED_LR)
    if sum(row.states.values()) <= LIST_RECOMPUTE_MAX:
        try:
            lr = Result(optuna.load_study(study_name=row.name, storage=store)).recommendation.lr
        except Exception:  # noqa: BLE001 - a foreign study (categorical lr, ...) is flagged
            return "?"
    if isinstance(lr, bool) or not isinstance(lr, (int, float)):
        return "-"
    return f"{lr:.4g}"


def _inputs(row: _lifecycle.StudyRow) -> str:
    """What made the study (its fingerprint's summary), or why there is none."""
    if len(row.directions) != 1:
        return f"not autolr's ({len(row.directions)} objectives)"
    if STUDY_VERSION not in row.user_attrs:
        return "not autolr's"
    fp = Fingerprint.from_json(row.user_attrs.get(STUDY_FINGERPRINT))
    kind = row.user_attrs.get(STUDY_SEARCH)
    kind = "tpe (0.1)" if kind is None else str(kind)  # autolr 0.1 studies ran TPE
    return f"{kind}: {fp.summary() if fp is not None else '(before fingerprints)'}"


def _cmd_studies(args: argparse.Namespace) -> int:
    store = _open(args.storage)
    if store is None or not _study_names(store):
        _say(f"no studies in {_storage.describe(args.storage)} yet")
        return EXIT_OK
    rows = [("study", "direction", "trials", "complete", "pruned", "failed", "best lr",
             "created", "updated", "inputs")]
    for row in _lifecycle.list_studies(store):
        n = row.states
        direction = row.directions[0] if len(row.directions) == 1 else "multi"
        rows.append((
            row.name, direction, str(sum(n.values())), str(n.get("COMPLETE", 0)),
            str(n.get("PRUNED", 0)), str(n.get("FAIL", 0)), _best_lr(store, row),
            _when(row.created), _when(row.updated), _inputs(row),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        _say("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return EXIT_OK


def _known(store: BaseStorage | None, name: str, storage: str | None) -> BaseStorage:
    """``store`` when it holds study ``name``; else a one-line error naming the studies there."""
    if store is None or not _lifecycle.exists(store, name):
        known = ", ".join(repr(n) for n in _study_names(store)) or "none"
        raise UserError(f"no study {name!r} in {_storage.describe(storage)}; studies there: {known}")
    return store


def _cmd_delete(args: argparse.Namespace) -> int:
    store = _known(_open(args.storage), args.study, args.storage)
    n = len(store.get_all_trials(store.get_study_id_from_name(args.study), deepcopy=False))
    where = _storage.describe(args.storage)
    if not args.yes:
        try:
            answer = input(f"delete study {args.study!r} and its {n} trials from {where}? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            _say(f"autolr delete: study {args.study!r} kept (answer y, or pass --yes)", err=True)
            return EXIT_USER_ERROR
    _lifecycle.delete_study(store, args.study)
    _say(f"deleted study {args.study!r} ({n} trials) from {where}", err=True)
    return EXIT_OK


def _cmd_rename(args: argparse.Namespace) -> int:
    store = _known(_open(args.storage), args.old, args.storage)
    if not args.new.strip() or len(args.new) > 512:
        raise UserError(f"NEW: expected a non-empty name of at most 512 characters, got {args.new!r}")
    try:
        _lifecycle.rename_study(store, args.old, args.new)
    except _lifecycle.LifecycleError as exc:
        raise UserError(str(exc)) from None
    _say(f"renamed study {args.old!r} to {args.new!r} in {_storage.describe(args.storage)}",
         err=True)
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    fmt = args.format
    if args.output is not None:
        try:
            fmt = _reports.format_for(args.output, fmt)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    fmt = fmt or "table"
    if fmt == "parquet" and args.output is None:
        raise UserError("--format parquet: needs -o FILE (Parquet is not text)")
    result = _load(args.study, args.storage)
    if args.output is None:
        sys.stdout.write(_storage.mask(_reports.render(result, fmt)))
        return EXIT_OK
    out = Path(args.output)
    existed = out.exists()
    try:
        path = _reports.export(result, out, format=fmt)
    except (ValueError, ImportError, OSError) as exc:
        raise UserError(f"-o {args.output}: {exc}") from None
    _say(f"{'replaced' if existed else 'wrote'} {path} ({fmt})", err=True)
    return EXIT_OK


def _cmd_plot(args: argparse.Namespace) -> int:
    directory = Path(args.output)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"-o: {args.output!r} is a file, expected a directory")
    formats = _plots.IMAGE_FORMATS if args.format == "both" else (args.format,)
    result = _load(args.study, args.storage)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"-o: cannot create {args.output!r}: {exc.strerror}") from None
    try:
        paths = _plots.save_all(result, directory, formats=formats)
    except ImportError as exc:
        raise UserError(str(exc)) from None
    for p in paths:
        _say(str(p))
    return EXIT_OK


def _cmd_best(args: argparse.Namespace) -> int:
    result = _load(args.study, args.storage)
    lr = result.recommendation.lr
    if lr is None:
        raise UserError(f"study {args.study!r}: {result.recommendation.reason}")
    _say(repr(float(lr)))
    return EXIT_OK


def _cmd_dashboard(args: argparse.Namespace) -> int:
    storage = _storage_arg(args.storage)
    store = _open(storage)
    if not _study_names(store):
        raise UserError(
            f"no studies in {_storage.describe(storage)} yet; run a tuned function first "
            "(train.run()), then start the dashboard"
        )
    try:
        run_server = _dashboard_server.load_server()
    except ImportError as exc:
        raise UserError(str(exc)) from None
    if not _dashboard_server.is_loopback(args.host):
        _say(
            f"autolr: warning: binding to {args.host}: anyone who can reach this machine on port "
            f"{args.port} can read and edit these studies (the dashboard has no login)",
            err=True,
        )
    _say(
        f"autolr: optuna-dashboard on http://{args.host}:{args.port}/ for "
        f"{_storage.describe(storage)} (Ctrl-C to stop)",
        err=True,
    )
    try:
        run_server(store, host=args.host, port=args.port)
    except KeyboardInterrupt:
        return EXIT_OK
    except OSError as exc:
        raise UserError(f"--port {args.port}: cannot listen on {args.host}: {exc.strerror}") from None
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


def _storage_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage",
        metavar="URL",
        type=_storage_arg,
        default=None,
        help="Optuna storage URL or SQLite file (default: $AUTOLR_STORAGE or "
        f"{_storage.DEFAULT_STORAGE})",
    )


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {value!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {port}")
    return port


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line and status 1, as for other user errors
        self.print_usage(sys.stderr)
        _say(f"{self.prog}: error: {message}", err=True)
        raise SystemExit(EXIT_USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    """The ``autolr`` argument parser; each subcommand sets ``func``."""
    parser = _Parser(
        prog="autolr",
        description="Read autolr's learning-rate studies: list them, report, plot, and open "
        "optuna-dashboard.",
        epilog="Run 'autolr COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"autolr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add("studies", _cmd_studies, "List the studies: trial counts, recommended lr, first and "
            "last trial time, and what made them (train function and run() keywords).")
    _storage_option(p)

    p = add("delete", _cmd_delete, "Delete a study and its trials (asks first unless --yes).")
    p.add_argument("study", metavar="STUDY")
    _storage_option(p)
    p.add_argument("-y", "--yes", action="store_true", help="do not ask")

    p = add("rename", _cmd_rename, "Rename a study (refused if NEW exists).")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    _storage_option(p)

    p = add("report", _cmd_report, "Print or export a study's report: recommendation, "
            "learning-rate comparison and trials.")
    p.add_argument("study", metavar="STUDY", help="study name (the train function's name by default)")
    _storage_option(p)
    p.add_argument("--format", choices=_FORMATS, default=None,
                   help="table (default on screen), md, csv (trials), json, html (with plots), "
                   "parquet (needs -o); with -o the default comes from the file suffix")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write to FILE (replaced if it exists) instead of printing")

    p = add("plot", _cmd_plot, "Save the plots of a study (final value vs lr, curves, history).")
    p.add_argument("study", metavar="STUDY")
    _storage_option(p)
    p.add_argument("-o", "--output", metavar="DIR", default=".",
                   help="directory for STUDY-lr.png, STUDY-curves.png, ... (created if missing; "
                   "default: .)")
    p.add_argument("--format", choices=("png", "svg", "both"), default="both",
                   help="image format (default: both)")

    p = add("best", _cmd_best, "Print only the recommended learning rate (for shell scripts).")
    p.add_argument("study", metavar="STUDY")
    _storage_option(p)

    p = add("dashboard", _cmd_dashboard, "Start optuna-dashboard on a study storage.")
    p.add_argument("storage", metavar="STORAGE", nargs="?", default=None, type=_storage_arg,
                   help=f"storage URL or file (default: $AUTOLR_STORAGE or {_storage.DEFAULT_STORAGE})")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=8080, help="port (default 8080)")

    p = add("worker", _cmd_worker, "Run trials of a study as one worker; start any number of "
            "them, on any machine that reaches the storage (docs/scaleout.md).")
    worker_options(p)
    return parser


def _cmd_worker(args: argparse.Namespace) -> int:
    """``autolr worker path/to/train.py:train --storage URL``: see :mod:`autolr._worker`."""
    return run_worker(args)


_FORMATS = ("table", "md", "csv", "json", "html", "parquet")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``autolr`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USER_ERROR
    command: Callable[[argparse.Namespace], int] = args.func
    try:
        return command(args)
    except UserError as exc:
        _say(f"autolr {args.command}: {exc}", err=True)
        return EXIT_USER_ERROR
    except _storage.StorageError as exc:
        _say(f"autolr {args.command}: {exc}", err=True)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # `autolr report x | head`
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
