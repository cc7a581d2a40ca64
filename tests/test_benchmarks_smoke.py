"""Smoke test: ``python -m benchmarks --quick`` runs and prints its tables (no thresholds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_prints_tables() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "### Summary per tuner" in out
    assert "| tuner | mean cost (runs) |" in out
    assert "### Per-report overhead" in out
    assert "command: `python -m benchmarks --quick`" in out
