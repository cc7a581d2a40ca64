"""The examples are documentation: they must run as written (in a scratch working directory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import autolr

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, cwd: Path, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    env.pop("AUTOLR_STORAGE", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_quickstart(tmp_path: Path) -> None:
    out = run_example("quickstart.py", tmp_path)
    assert "recommended lr :" in out and "default lr 1e-3" in out
    assert (tmp_path / "studies" / "autolr.db").is_file()
    result = autolr.load("digits_mlp", storage=f"sqlite:///{tmp_path / 'studies' / 'autolr.db'}")
    assert len(result.trials()) == 20
    assert result.best_value < result.trials().query("lr == 0.001")["value"].iloc[0]


def test_resume(tmp_path: Path) -> None:
    out = run_example("resume.py", tmp_path)
    assert "first run: interrupted after 3 finished trials" in out
    assert "second run: trained 5 more; the study holds 8 finished trials" in out
    again = run_example("resume.py", tmp_path)
    assert "already finished" in again and "trained 0 more" in again
