"""Reliability round 2 (issue 18): no trial lost to a header check, foreign files untouched,
a full disk costs one trial, secrets masked in every output, exports that cannot run code.
Real processes, real files, real servers."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autolr

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


# ----------------------------------------------------------------------------- live SQLite file

LIVE_WRITER = textwrap.dedent(
    """
    import sys, optuna, autolr
    from autolr import _storage
    url = sys.argv[1]
    study = optuna.create_study(study_name="live", storage=_storage.open_storage(url))
    def add(v):
        t = study.ask()
        study.tell(t, v)
    add(1.0)
    autolr.load("live", storage=url)   # the same file, opened again in this process
    print("loaded", flush=True)
    sys.stdin.readline()               # meanwhile another process lists the file
    add(2.0)
    add(3.0)
    print("wrote", flush=True)
    sys.stdin.readline()
    """
)


def test_loading_a_live_file_in_the_writing_process_loses_no_trial(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    url = f"sqlite:///{path}"
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == "loaded"
        lister = subprocess.run([sys.executable, "-m", "autolr", "studies", "--storage", url],
                                env=ENV, capture_output=True, text=True, timeout=60)
        assert lister.returncode == 0, lister.stderr
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "wrote"
        # A new process, while the writer still runs: every committed trial is there.
        seen = subprocess.run(
            [sys.executable, "-c", "import sqlite3, sys; print(sqlite3.connect(sys.argv[1])"
             ".execute('select count(*) from trials').fetchone()[0])", str(path)],
            capture_output=True, text=True, timeout=60)
        assert seen.stdout.strip() == "3", seen.stderr
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.wait(timeout=60) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
    con = sqlite3.connect(path)
    assert con.execute("select count(*) from trials").fetchone()[0] == 3
    con.close()


# ----------------------------------------------------------------------------- foreign SQLite file

def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["app", "alembic"])
def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.execute("create table users (id integer primary key, name text)")
    con.execute("insert into users (name) values ('ada')")
    if kind == "alembic":  # another SQLAlchemy application, migrated with alembic
        con.execute("create table alembic_version (version_num varchar(32) not null)")
        con.execute("insert into alembic_version values ('ae1027a6acf')")
    con.commit()
    con.close()
    before = _digest(path)
    url = f"sqlite:///{path}"
    attempts = [
        lambda: autolr.tune(n_trials=1, storage=url, show_progress_bar=False)(lambda lr: lr).run(),
        lambda: autolr.load("x", storage=url),
    ]
    for attempt in attempts:
        with pytest.raises(autolr.StorageError) as info:
            attempt()
        message = str(info.value)
        assert "\n" not in message and "another application" in message and "older Optuna" not in message
    cli = subprocess.run([sys.executable, "-m", "autolr", "studies", "--storage", url],
                         env=ENV, capture_output=True, text=True, timeout=60)
    assert cli.returncode != 0 and len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no -wal, no -shm, no lock
    con = sqlite3.connect(path)
    assert con.execute("pragma journal_mode").fetchone()[0] == "delete"
    con.close()


# ----------------------------------------------------------------------------- full disk, journal

JOURNAL_FULL_CHILD = textwrap.dedent(
    """
    import os, resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    import autolr
    path = sys.argv[1]
    limit = os.path.getsize(path) + 6000
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # the disk is "full" beyond this

    @autolr.tune(n_trials=30, storage="journal:///" + path, study_name="full", sampler="tpe",
                 pruner=False, show_progress_bar=False)
    def train(lr):
        for step in range(20):
            autolr.report(1.0 / (step + 1) + lr, step=step)
        return lr

    train.run()
    """
)


def _counted(study: object) -> int:
    return sum(1 for t in study.trials if t.state.is_finished()  # type: ignore[attr-defined]
               and t.user_attrs.get("autolr.stop_reason") not in ("crashed", "interrupted", "surplus"))


def test_a_full_disk_costs_a_journal_at_most_the_running_trial(tmp_path: Path) -> None:
    path = tmp_path / "full.log"
    url = f"journal:///{path}"
    autolr.tune(n_trials=1, storage=url, study_name="full", sampler="tpe",
                show_progress_bar=False)(lambda lr: lr).run()
    proc = subprocess.run([sys.executable, "-c", JOURNAL_FULL_CHILD, str(path)], env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "StorageError: storage: cannot write to" in last and "File too large" in last, proc.stderr[-1500:]
    assert path.read_bytes().endswith(b"\n")  # the failed append was cut back: no torn line
    finished_before = _counted(autolr.load("full", storage=url).study)
    # A process killed in the middle of a write leaves a torn last record: readers skip it, the
    # next writer cuts it off, and nothing finished is lost.
    with open(path, "ab") as f:
        f.write(b'{"op_code":5,"worker_id":"x","trial_id":')
    assert _counted(autolr.load("full", storage=url).study) == finished_before
    cli = subprocess.run([sys.executable, "-m", "autolr", "report", "full", "--storage", url],
                         env=ENV, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr

    @autolr.tune(n_trials=30, storage=url, study_name="full", sampler="tpe", pruner=False,
                 show_progress_bar=False)
    def train(lr: float) -> float:
        return lr

    assert _counted(train.run().study) == 30
    cli = subprocess.run([sys.executable, "-m", "autolr", "studies", "--storage", url],
                         env=ENV, capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and "full" in cli.stdout, cli.stderr
    assert finished_before <= _counted(autolr.load("full", storage=url).study)


def test_a_text_file_is_not_taken_for_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "notes.log"
    path.write_text("my notes, no newline at the end")
    before = path.read_bytes()
    with pytest.raises(autolr.StorageError, match="not an Optuna journal file"):
        autolr.tune(n_trials=1, storage=f"journal:///{path}", show_progress_bar=False)(lambda lr: lr).run()
    with pytest.raises(autolr.StorageError, match="not an Optuna journal file"):
        autolr.load("x", storage=f"journal:///{path}")
    assert path.read_bytes() == before


# ----------------------------------------------------------------------------- passwords

#: URL forms whose secret contains "SECRET"; none of it may reach any output.
SECRET_URLS = [
    "postgresql://postgres:tiger SECRETlily@127.0.0.1:1/test",  # a raw space in the password
    "postgresql://me:SECRET%40x@127.0.0.1:1/test",
    "postgresql+psycopg2://me@127.0.0.1:1/test?sslmode=require&sslpassword=SECRETkey",
    "postgresql://me:SECRETone@127.0.0.1:1,you:SECRETtwo@127.0.0.2:2/test",  # multi-host
    "mysql+pymysql://me@127.0.0.1:1/test?password=SECRETq&charset=utf8",
    "redis://:SECRET redis@127.0.0.1:1/0",
    "postgresql://me@127.0.0.1:1/test?PassWord=SECRET'quoted",
]


@pytest.mark.parametrize("url", SECRET_URLS)
def test_mask_hides_every_password_form(url: str) -> None:
    from autolr._storage import mask

    masked = mask(f"cannot reach {url}: refused")
    assert "SECRET" not in masked and "127.0.0.1:1" in masked and masked.endswith("refused")


def test_no_password_reaches_any_output(tmp_path: Path) -> None:
    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    import json as jsonlib
    import threading
    import urllib.request
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from autolr import _dashboard_server, _reports
    from autolr._storage import open_storage

    db = f"sqlite:///{tmp_path / 's.db'}"

    @autolr.tune(n_trials=len(SECRET_URLS), storage=db, study_name="leak", sampler="tpe",
                 pruner=False, show_progress_bar=False)
    def leak(lr: float, trial: object) -> float:
        raise ConnectionError(f"cannot reach {SECRET_URLS[trial.number % len(SECRET_URLS)]}")  # type: ignore[attr-defined]

    result = leak.run()
    outputs: dict[str, str] = {}
    for t in result.study.trials:
        outputs[f"attr {t.number}"] = str(t.user_attrs.get("autolr.exception"))
    assert any("ConnectionError" in v for v in outputs.values())
    for fmt in ("table", "md", "csv", "json", "html"):
        outputs[fmt] = _reports.render(result, fmt)
    for fmt in ("md", "csv"):
        outputs[f"cli {fmt}"] = subprocess.run(
            [sys.executable, "-m", "autolr", "report", "leak", "--storage", db, "--format", fmt],
            env=ENV, capture_output=True, text=True, timeout=60).stdout
    assert "cannot reach" in outputs["csv"] and "cannot reach" in outputs["cli md"]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    port = _free_port()
    app = _dashboard_server.guarded_app(open_storage(db, create=False), host="127.0.0.1", port=port)
    server = make_server("127.0.0.1", port, app, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/api/studies", timeout=10) as r:
            sid = jsonlib.loads(r.read())["study_summaries"][0]["study_id"]
        with urllib.request.urlopen(f"{base}/api/studies/{sid}?after=0", timeout=10) as r:
            outputs["dashboard api"] = r.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert "cannot reach" in outputs["dashboard api"]
    outputs["note"] = optuna_dashboard.get_note(result.study)
    # Error messages and the dashboard banner, for each URL form (nothing listens on port 1).
    for url in SECRET_URLS:
        for name, attempt in [("load", lambda: autolr.load("x", storage=url)),
                              ("run", lambda: autolr.tune(n_trials=1, storage=url)(lambda lr: lr).run())]:
            try:
                attempt()
            except BaseException as exc:  # noqa: BLE001 - each message is what the user sees
                outputs[f"{name} {url}"] = f"{type(exc).__name__}: {exc}"
    for url in SECRET_URLS[::3]:  # the command's banner and errors
        cli = subprocess.run([sys.executable, "-m", "autolr", "dashboard", url,
                              "--port", "1"], env=ENV, capture_output=True, text=True, timeout=60)
        outputs[f"dashboard {url}"] = cli.stdout + cli.stderr
        assert cli.returncode != 0 and "127.0.0.1" in cli.stderr
    leaks = {k: v for k, v in outputs.items() if "SECRET" in v}
    assert not leaks, {k: v[:300] for k, v in leaks.items()}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- exports

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3",
            "\tTAB", "\rCR"]


def test_csv_cells_cannot_run_formulas_and_markdown_shows_html_as_text(db: str) -> None:
    import csv
    import io

    from autolr import _reports

    @autolr.tune(n_trials=len(FORMULAS), storage=db, study_name="<script>alert(1)</script>",
                 sampler="tpe", pruner=False, show_progress_bar=False)
    def train(lr: float, trial: object) -> float:
        choice = trial.suggest_categorical("opt", FORMULAS)  # type: ignore[attr-defined]
        trial.set_user_attr("note", FORMULAS[trial.number % len(FORMULAS)])  # type: ignore[attr-defined]
        autolr.report(-0.5, step=0)
        return -1.5 - len(choice)

    result = train.run()
    rows = list(csv.DictReader(io.StringIO(_reports.render(result, "csv"), newline="")))
    cells = [v for row in rows for v in row.values() if v]
    assert any(c.lstrip("'") in FORMULAS for c in cells)  # the values are there ...
    dangerous = [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")
                 or (c.startswith("-") and not _is_number(c))]
    assert not dangerous  # ... but none can start a formula
    assert any(_is_number(c) and float(c) < 0 for c in cells)  # negative numbers stay numbers
    md = _reports.render(result, "md")
    assert "<script>" not in md and "&lt;script&gt;" in md


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- dashboard Host

def _request(url: str, *, method: str = "GET", host: str | None = None) -> int:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, method=method)
    if host is not None:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_dashboard_refuses_a_foreign_host_header(db: str) -> None:
    pytest.importorskip("optuna_dashboard")
    import time

    autolr.tune(n_trials=2, storage=db, study_name="keep", show_progress_bar=False)(lambda lr: lr).run()
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "autolr", "dashboard", db, "--port", str(port)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status = _request(f"{base}/api/studies")
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the dashboard did not start in 60 s"
                time.sleep(0.3)
        assert status == 200
        sid = autolr.load("keep", storage=db).study._study_id
        # A page on another site that re-points its name at 127.0.0.1 (DNS rebinding):
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", ""):
            assert _request(f"{base}/api/studies/{sid}", method="DELETE", host=host) == 403
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
            assert _request(f"{base}/api/studies", host=host) == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert len(autolr.load("keep", storage=db).study.trials) == 2  # the study survived


# ----------------------------------------------------------------------------- report() in a thread

def _threaded(lr: float) -> float:
    import threading

    def epochs() -> None:
        for step in range(5):
            autolr.report(1.0 / (step + 1) + lr, step=step)

    worker = threading.Thread(target=epochs)
    worker.start()
    worker.join()
    return lr


@pytest.mark.parametrize("sampler", [None, "tpe"])  # autolr's search (paused trials), a sampler
def test_report_from_a_thread_the_train_function_starts_is_kept(db: str, sampler: str | None) -> None:
    options = {} if sampler is None else {"sampler": sampler, "pruner": False}
    result = autolr.tune(n_trials=4, storage=db, study_name="threads", seed=0,
                         show_progress_bar=False, **options)(_threaded).run()  # type: ignore[arg-type]
    done = [t for t in result.study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(done) == 4
    assert all(len(t.intermediate_values) >= 1 for t in done)
    assert any(len(t.intermediate_values) == 5 for t in done)


def test_report_from_an_untied_thread_among_several_trials_is_a_clear_error() -> None:
    import threading

    import optuna

    from autolr._context import ReportThreadError, TrialContext, active

    study = optuna.create_study()
    contexts = [TrialContext(study.ask()), TrialContext(study.ask())]
    errors: list[BaseException] = []

    def helper() -> None:
        try:
            autolr.report(0.5, step=0)
        except ReportThreadError as exc:
            errors.append(exc)

    with active(contexts[0]), active(contexts[1]):
        thread = threading.Thread(target=helper, name="helper")
        thread.start()
        thread.join()
    assert len(errors) == 1 and "'helper'" in str(errors[0]) and "\n" not in str(errors[0])
    assert not contexts[0].values and not contexts[1].values
    autolr.report(0.5, step=0)  # no trial runs: a no-op, as outside a study


# ----------------------------------------------------------------------------- foreign studies

def _poke_attrs(path: Path, edits: list[tuple[int, str, object]], running: int) -> None:
    """Write attribute values autolr never writes, the way another tool could."""
    import json as jsonlib

    con = sqlite3.connect(path)
    ids = [r[0] for r in con.execute("select trial_id from trials order by trial_id")]
    for index, key, value in edits:
        con.execute("delete from trial_user_attributes where trial_id = ? and key = ?", (ids[index], key))
        con.execute("insert into trial_user_attributes (trial_id, key, value_json) values (?, ?, ?)",
                    (ids[index], key, jsonlib.dumps(value)))
    con.execute("update trials set state = 'RUNNING', datetime_complete = null, "  # long dead
                "datetime_start = '2000-01-01 00:00:00' where trial_id = ?", (ids[running],))
    con.commit()
    con.close()


def test_foreign_studies_and_attributes_do_not_break_readers(tmp_path: Path) -> None:
    import optuna

    from autolr import _reports

    path = tmp_path / "f.db"
    db = f"sqlite:///{path}"
    autolr.tune(n_trials=3, storage=db, study_name="mine", seed=0, sampler="tpe", pruner=False,
                show_progress_bar=False)(lambda lr: lr).run()
    _poke_attrs(path, [(0, "autolr.stop_reason", ["nan", "inf"]), (1, "autolr.worker", 12),
                       (1, "autolr.heartbeat", "soon"), (2, "autolr.exception", {"x": 1})], running=1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    multi = optuna.create_study(study_name="multi", storage=db, directions=["minimize", "maximize"])
    multi.optimize(lambda t: (t.suggest_float("lr", 1e-4, 1.0, log=True), 1.0), n_trials=2)
    cat = optuna.create_study(study_name="cat", storage=db)
    cat.optimize(lambda t: float(len(t.suggest_categorical("lr", ["a", "bb"]))), n_trials=2)

    result = autolr.load("mine", storage=db)
    assert result.best_lr > 0
    for fmt in ("table", "md", "csv", "json", "html"):
        assert "mine" in _reports.render(result, fmt) or fmt == "csv"
    more = autolr.tune(n_trials=5, storage=db, study_name="mine", sampler="tpe", pruner=False,
                       show_progress_bar=False)(lambda lr: lr).run()
    assert more.best_lr > 0
    for name, what in (("multi", "2 objectives"), ("cat", "CategoricalDistribution")):
        for attempt in (lambda: autolr.load(name, storage=db),
                        lambda: autolr.tune(n_trials=3, storage=db, study_name=name,
                                            show_progress_bar=False)(lambda lr: lr).run()):
            with pytest.raises(autolr.StorageError, match=what) as info:
                attempt()
            assert "\n" not in str(info.value)
        cli = subprocess.run([sys.executable, "-m", "autolr", "best", name, "--storage", db],
                             env=ENV, capture_output=True, text=True, timeout=60)
        assert cli.returncode == 1 and cli.stderr.count("\n") == 1 and what in cli.stderr, cli.stderr
    assert len(optuna.load_study(study_name="cat", storage=db).trials) == 2  # untouched


# ----------------------------------------------------------------------------- one line, not a traceback

def _one_line(attempt: object, match: str) -> str:
    with pytest.raises((ValueError, LookupError)) as info:
        attempt()  # type: ignore[operator]
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    assert match in message, message
    assert info.value.__suppress_context__ or info.value.__cause__ is None  # no chained traceback
    return message


def test_damaged_or_unreachable_storages_are_one_line(tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    autolr.tune(n_trials=3, storage=f"sqlite:///{good}", study_name="f", sampler="tpe", pruner=False,
                show_progress_bar=False)(lambda lr: lr).run()
    malformed = tmp_path / "malformed.db"
    malformed.write_bytes(good.read_bytes())
    with open(malformed, "r+b") as f:  # pages 3-5 overwritten (this process holds no engine on it)
        f.seek(4096 * 2)
        f.write(b"\xff" * 4096 * 3)
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(good.read_bytes()[: 4096 * 2 + 100])
    for path in (malformed, truncated):
        url = f"sqlite:///{path}"
        _one_line(lambda: autolr.load("f", storage=url), "malformed")
        _one_line(lambda: autolr.tune(n_trials=5, storage=url, study_name="f",
                                      show_progress_bar=False)(lambda lr: lr).run(), "malformed")
    _one_line(lambda: autolr.load("f", storage="postgresql://postgres@127.0.0.1:1/test"), "refused")
    _one_line(lambda: autolr.load("f", storage="redis://127.0.0.1:1"), "cannot reach redis://127.0.0.1:1")
    _one_line(lambda: autolr.tune(n_trials=1, storage="redis://127.0.0.1:1",
                                  show_progress_bar=False)(lambda lr: lr).run(), "cannot reach")


def test_bad_options_are_one_line_before_any_file_is_written(tmp_path: Path) -> None:
    import numpy as np

    path = tmp_path / "never.db"
    url = f"sqlite:///{path}"

    def run(**options: object) -> None:
        autolr.tune(n_trials=1, storage=url, show_progress_bar=False, **options)(lambda lr: lr).run()  # type: ignore[arg-type]

    _one_line(lambda: run(seed=2**32), "seed: expected an int >= 0 and <= 4294967295")
    _one_line(lambda: run(lr=np.array([1e-4, 1e-1])), "lr: expected a (low, high) pair")
    message = _one_line(lambda: run(study_name="x" * 10_000), "(10000 characters)")
    assert len(message) < 200
    _one_line(lambda: autolr.tune(show_progress_bar="yes"), "show_progress_bar")  # type: ignore[arg-type]
    assert not path.exists()


@pytest.mark.services
def test_redis_runs_without_an_experimental_warning_each_time() -> None:
    import uuid
    import warnings

    pytest.importorskip("redis")
    url = f"redis://127.0.0.1:6379?prefix=autolr-reliab-{uuid.uuid4().hex}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            autolr.tune(n_trials=2, storage=url, study_name="warn", sampler="tpe", pruner=False,
                        show_progress_bar=False)(lambda lr: lr).run()
        autolr.load("warn", storage=url)
    assert not [w for w in caught if "Experimental" in type(w.message).__name__
                or "experimental" in str(w.message).lower()], [str(w.message) for w in caught]


# ----------------------------------------------------------------------------- scale

@pytest.mark.parametrize("server", [
    "sqlite", pytest.param("postgresql", marks=pytest.mark.services),
    pytest.param("mysql", marks=pytest.mark.services)])
def test_the_sql_reader_reads_what_optuna_reads(db: str, server: str) -> None:
    import math
    import uuid

    import optuna

    from autolr import _fastread
    from autolr._schema import views

    name = f"same-{uuid.uuid4().hex}"
    if server == "postgresql":
        db = "postgresql://postgres@127.0.0.1:5432/test"
    elif server == "mysql":
        pytest.importorskip("pymysql")
        db = "mysql+pymysql://root@127.0.0.1:3306/test"

    @autolr.tune(n_trials=8, storage=db, study_name=name, seed=0, sampler="tpe", pruner=False,
                 show_progress_bar=False)
    def train(lr: float, trial: object) -> float:
        trial.suggest_categorical("opt", ["adam", "sgd"])  # type: ignore[attr-defined]
        trial.suggest_int("width", 1, 9)  # type: ignore[attr-defined]
        trial.set_user_attr("note", {"a": [1, 2]})  # type: ignore[attr-defined]
        n = trial.number  # type: ignore[attr-defined]
        for step in range(4):
            autolr.report([1.0, math.inf, -math.inf, 0.5][step] if n == 3 else 1.0 / (step + 1), step=step)
        if n == 5:
            raise RuntimeError("boom")
        return math.nan if n == 6 else lr

    study = train.run().study
    study = optuna.load_study(study_name=name, storage=db)
    study.enqueue_trial({"lr": 0.0123})  # WAITING, its lr in Optuna's fixed_params
    fast = _fastread.trial_views(study)
    slow = views(study.get_trials())
    assert fast is not None and len(fast) == len(slow) == 9
    assert fast[-1].lr == slow[-1].lr == 0.0123

    def same(a: object, b: object) -> bool:
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        return a == b

    for f, s in zip(fast, slow):
        for name in f.__dataclass_fields__:
            assert same(dict(getattr(f, name)) if name in ("params", "intermediate") else getattr(f, name),
                        dict(getattr(s, name)) if name in ("params", "intermediate") else getattr(s, name)), (f.number, name)
    assert _fastread.lr_kind(study._storage, study._study_id) == "FloatDistribution"
    assert _fastread.trial_views(optuna.create_study()) is None  # in memory: Optuna's API


def test_a_trial_that_reports_very_often_stores_a_thinned_curve(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from autolr import _context

    monkeypatch.setattr(_context, "REPORT_CAP", 50)
    calls = 1_000

    @autolr.tune(n_trials=1, storage=db, study_name="often", sampler="tpe", pruner=False,
                 show_progress_bar=False)
    def often(lr: float) -> float:
        for step in range(calls):
            autolr.report(1.0 / (step + 1) + lr, step=step)
        return lr

    (trial,) = often.run().study.trials
    steps = sorted(trial.intermediate_values)
    assert steps[:50] == list(range(50))  # every report up to the cap
    assert steps[-1] == calls - 1  # and always the last one
    assert 50 < len(steps) <= 50 + 25 * 6  # then every 2nd, 4th, ... (log-many per doubling)
    gaps = [b - a for a, b in zip(steps[50:], steps[51:-1])]
    assert gaps == sorted(gaps)  # thinner and thinner, never lumpy: the shape is kept
    assert trial.user_attrs["autolr.reports"] == calls
    assert autolr.load("often", storage=db).best_lr > 0


def test_a_torn_record_shorter_than_its_first_key_is_still_repaired(tmp_path: Path) -> None:
    path = tmp_path / "short.log"
    url = f"journal:///{path}"
    autolr.tune(n_trials=2, storage=url, study_name="s", sampler="tpe", pruner=False,
                show_progress_bar=False)(lambda lr: lr).run()
    with open(path, "ab") as f:
        f.write(b'{"op_')  # killed a few bytes into a record
    result = autolr.tune(n_trials=4, storage=url, study_name="s", sampler="tpe", pruner=False,
                         show_progress_bar=False)(lambda lr: lr).run()
    assert _counted(result.study) == 4 and path.read_bytes().endswith(b"\n")


def test_host_guard_rules() -> None:
    from autolr._dashboard_server import HostGuard

    def app(environ: object, start: object) -> list[bytes]:
        return [b"ok"]

    local = HostGuard(app, host="127.0.0.1", port=8080)
    assert all(local.allows(h) for h in ("127.0.0.1:8080", "LOCALHOST:8080", "[::1]:8080"))
    assert not any(local.allows(h) for h in ("127.0.0.1:8081", "evil.example:8080", "localhost",
                                             "192.168.1.5:8080", "", None))
    wide = HostGuard(app, host="0.0.0.0", port=8080)
    assert wide.allows("192.168.1.5:8080") and wide.allows("[fe80::1]:8080")
    assert not wide.allows("evil.example:8080") and not wide.allows("192.168.1.5:9")
    named = HostGuard(app, host="box.lan", port=8080)
    assert named.allows("box.lan:8080") and not named.allows("evil.example:8080")


def test_storage_scale_benchmark_runs_small() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.storage_scale", "--trials", "200",
                           "--reports", "5", "--calls", "3000"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| autolr best |" in proc.stdout and "stored of 3000" in proc.stdout
    assert "command: python -m benchmarks.storage_scale" in proc.stdout
    assert "| 1 |" not in proc.stdout  # every command exited 0
