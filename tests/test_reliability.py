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
