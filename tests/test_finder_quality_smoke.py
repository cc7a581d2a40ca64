"""``python -m benchmarks.finder_quality`` on one task: it runs and prints both tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_finder_quality_prints_ratios_for_autolr_and_the_peer_rules() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.finder_quality", "--tasks", "digits_adam",
         "--seeds", "1", "--train-seeds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=200,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in proc.stdout.splitlines()
            if line.startswith("| ")}
    for rule in ("autolr (default)", "torch-lr-finder min / 10", "torch-lr-finder steepest",
                 "fastai valley"):
        ratio = float(rows[rule].split(" | ")[1])
        assert ratio >= 0.8, rows[rule]  # the grid's best is ~1.00: nothing is far below it
    assert "| digits_adam | " in proc.stdout
