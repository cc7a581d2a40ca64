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
    assert 8 <= len(result.trials()) <= 16
    first = result.study.trials[0]
    assert first.params["lr"] == 1e-3  # the classic default is measured first
    step = max(first.intermediate_values)
    assert result.recommended_trial.intermediate_values[step] < first.intermediate_values[step]


def test_resume(tmp_path: Path) -> None:
    out = run_example("resume.py", tmp_path)
    assert "first run: interrupted after 7 epochs of training" in out
    assert "(4 interrupted)" in out  # the trial Ctrl-C hit, and three paused ones: their epochs count
    again = run_example("resume.py", tmp_path)
    assert "already finished" in again and "trained 0 more epochs" in again


def test_lr_finder(tmp_path: Path) -> None:
    out = run_example("lr_finder.py", tmp_path, str(tmp_path / "finder.png"))
    assert (tmp_path / "finder.png").stat().st_size > 10_000
    assert "suggest" in out.lower()


def test_report(tmp_path: Path) -> None:
    run_example("report.py", tmp_path, str(tmp_path / "out"))
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"report.html", "lr.png", "curves.png", "history.png"} <= written, written
    assert "data:image/png;base64," in (tmp_path / "out" / "report.html").read_text()


def test_optimizer_schedule_search(tmp_path: Path) -> None:
    out = run_example("optimizer_schedule_search.py", tmp_path, "--trials", "6",
                      "--storage", f"sqlite:///{tmp_path / 's.db'}")
    assert "optimizer" in out.lower()
    table = autolr.load("digits_optimizer_schedule", storage=f"sqlite:///{tmp_path / 's.db'}").trials()
    assert len(table) == 6 and "param_optimizer" in table.columns


def test_sklearn_digits(tmp_path: Path) -> None:
    out = run_example("sklearn_digits.py", tmp_path, "--estimator", "mlp", "--n-trials", "6",
                      "--storage", f"sqlite:///{tmp_path / 's.db'}")
    assert "default" in out.lower() and "tuned" in out.lower()


def test_lr_finder_word_language_model(tmp_path: Path) -> None:
    out = run_example("lr_finder_word_language_model.py", tmp_path)
    assert "suggested lr:" in out and "validation loss after 2 epochs" in out


def test_lightning_digits(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'lit.db'}"
    out = run_example("lightning_digits.py", tmp_path, "--trials", "4", "--epochs", "4",
                      "--storage", db)
    assert "recommended lr:" in out and "model.lr = " in out
    assert len(autolr.load("DigitsMLP", storage=db).trials()) == 4


def test_transformers_tiny_bert(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'bert.db'}"
    out = run_example("transformers_tiny_bert.py", tmp_path, "--trials", "3", "--epochs", "2",
                      "--storage", db)
    assert "recommended lr:" in out
    assert len(autolr.load("tiny_bert", storage=db).trials()) == 3


def test_keras_digits(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'keras.db'}"
    out = run_example("keras_digits.py", tmp_path, "--trials", "3", "--epochs", "3",
                      "--storage", db)
    assert "backend: torch" in out and "recommended lr:" in out
    assert len(autolr.load("keras_digits", storage=db).trials()) == 3


def test_executors_dask(tmp_path: Path) -> None:
    out = run_example("executors.py", tmp_path, "dask")
    assert out.strip().endswith("by 2 processes; best lr 3.16e-03"), out


def test_executors_ray(tmp_path: Path) -> None:
    out = run_example("executors.py", tmp_path, "ray")
    assert out.strip().endswith("by 2 processes; best lr 3.16e-03"), out
