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
