from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A fresh SQLite storage URL in the test's own directory."""
    return f"sqlite:///{tmp_path / 'studies.db'}"


@pytest.fixture(autouse=True)
def _no_env_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOLR_STORAGE", raising=False)


def _fresh_postgres_database(driver: str) -> Iterator[str]:
    """A PostgreSQL database of its own for one test (tests of several sessions may run at once
    on this server), dropped after."""
    import psycopg

    name = f"autolr_test_{uuid.uuid4().hex[:10]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    yield f"{driver}://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, as the plain ``postgresql://`` URL users write."""
    yield from _fresh_postgres_database("postgresql")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, with the driver named (``postgresql+psycopg://``)."""
    yield from _fresh_postgres_database("postgresql+psycopg")
