"""Each bad input in tests/bad_inputs.py gets one line naming the parameter, before anything is
written, and docs/errors.md shows exactly what autolr answers today."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bad_inputs import CASES, ROOT, answer, markdown  # noqa: E402

# Cases whose setup stores a study on purpose (to resume or load it) or writes a foreign file.
SETUP_WRITES = {"s.db", "s.db-wal", "s.db-shm", "notes.db", "app.db", "notes.log"}  # -wal, -shm: SQLite WAL mode


@pytest.mark.parametrize("case", CASES, ids=[c.what for c in CASES])
def test_bad_input_gets_one_clear_line(case) -> None:  # type: ignore[no-untyped-def]
    kind, message, files = answer(case)
    assert kind not in ("nothing",), f"{case.what} was accepted"
    assert message and "\n" not in message.strip()
    assert case.names in message
    assert "Traceback" not in message and "hunter2" not in message
    assert set(files) <= SETUP_WRITES, files


def test_docs_table_is_what_autolr_says() -> None:
    docs = (ROOT / "docs" / "errors.md").read_text()
    assert markdown() in docs, "regenerate with: python tests/bad_inputs.py"
    assert len(CASES) >= 20
