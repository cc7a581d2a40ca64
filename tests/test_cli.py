"""The ``autolr`` command on real SQLite study files: output, exit status, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autolr.cli import main
from test_reports import lr_study


@pytest.fixture
def study_db(db: str) -> str:
    lr_study(db)
    return db


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_studies_lists_counts_and_best_lr(study_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    import autolr

    code, out, err = run(capsys, "studies", "--storage", study_db)
    assert code == 0 and err == ""
    header, row = out.splitlines()
    assert header.split()[:8] == ["study", "direction", "trials", "complete", "pruned", "failed", "best", "lr"]
    assert row.split()[:7] == ["lr", "minimize", "7", "5", "1", "1", f"{autolr.load('lr', storage=study_db).best_lr:.4g}"]


def test_best_prints_only_the_lr(study_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    import autolr

    code, out, _ = run(capsys, "best", "lr", "--storage", study_db)
    assert code == 0 and float(out) == autolr.load("lr", storage=study_db).best_lr
    assert out == f"{float(out)!r}\n"


def test_report_formats(study_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "report", "lr", "--storage", study_db)
    assert code == 0 and "Learning-rate comparison" in out and "best range" in out
    code, out, _ = run(capsys, "report", "lr", "--storage", study_db, "--format", "json")
    assert json.loads(out)["study"] == "lr"
    code, out, _ = run(capsys, "report", "lr", "--storage", study_db, "--format", "csv")
    assert out.splitlines()[0].startswith("number,state,lr,value") and len(out.splitlines()) == 8
    code, out, _ = run(capsys, "report", "lr", "--storage", study_db, "--format", "md")
    assert out.startswith("# autolr report: lr")


def test_report_to_a_file(study_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "r.json"
    code, out, err = run(capsys, "report", "lr", "--storage", study_db, "-o", str(target))
    assert code == 0 and out == "" and err == f"wrote {target} (json)\n"
    assert json.loads(target.read_text())["study"] == "lr"
    code, _, err = run(capsys, "report", "lr", "--storage", study_db, "-o", str(target))
    assert err.startswith("replaced ")  # never silently
    code, _, err = run(capsys, "report", "lr", "--storage", study_db, "-o", str(tmp_path / "r.xyz"))
    assert code == 1 and err.startswith("autolr report: format: cannot tell") and err.count("\n") == 1
    code, _, err = run(capsys, "report", "lr", "--storage", study_db, "--format", "parquet")
    assert code == 1 and "needs -o FILE" in err


def test_plot_writes_png_and_svg(study_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    code, out, _ = run(capsys, "plot", "lr", "--storage", study_db, "-o", str(tmp_path), "--format", "png")
    assert code == 0
    assert sorted(Path(p).name for p in out.split()) == ["lr-curves.png", "lr-history.png", "lr-lr.png"]
    code, out, _ = run(capsys, "plot", "lr", "--storage", study_db, "-o", str(tmp_path / "new") + "/",
                       "--format", "png")  # the README's `-o plots/`: created
    assert code == 0 and (tmp_path / "new" / "lr-lr.png").is_file() and len(out.split()) == 3
    (tmp_path / "file").write_text("")
    code, _, err = run(capsys, "plot", "lr", "--storage", study_db, "-o", str(tmp_path / "file"))
    assert code == 1 and "is a file, expected a directory" in err
    code, _, err = run(capsys, "plot", "nope", "--storage", study_db, "-o", str(tmp_path / "x"))
    assert code == 1 and not (tmp_path / "x").exists()  # nothing created for a missing study


@pytest.mark.parametrize("command", ["report", "plot", "best"])
def test_missing_study_names_what_exists(study_db: str, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, command, "nope", "--storage", study_db)
    assert code == 1 and out == ""
    assert err == f"autolr {command}: no study 'nope' in {study_db}; studies there: 'lr'\n"


def test_missing_storage_is_one_line_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["studies"], ["best", "x"], ["report", "x"], ["dashboard"],
                 ["studies", "--storage", str(tmp_path / "other.db")]):
        code, out, err = run(capsys, *argv)
        assert code == 1 and out == "" and err.count("\n") == 1, argv
        assert "no study file at" in err and "--storage" in err
    assert list(tmp_path.iterdir()) == []  # reading never creates a file or directory


def test_passwords_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "studies", "--storage", "postgresql://me:s3cret@127.0.0.1:1/db")
    assert code == 1 and "s3cret" not in out + err and "me:***@" in err and err.count("\n") == 1


def test_bad_usage_exits_1_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["report"])
    assert exc.value.code == 1
    assert "the following arguments are required: STUDY" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["dashboard", "--port", "99999"])
    assert exc.value.code == 1 and "port number 1-65535" in capsys.readouterr().err
    assert main([]) == 1 and "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["studies"], ["report"], ["plot"], ["best"], ["dashboard"]])
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("usage: autolr")


def test_dashboard_on_a_file_without_studies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("create table t (x)").connection.close()
    code, _, err = run(capsys, "dashboard", str(empty))
    assert code == 1 and "no studies in" in err and "run a tuned function first" in err


def test_console_script_and_python_m_start_lazily(study_db: str) -> None:
    """A real process: no pandas, matplotlib or optuna-dashboard for ``best``; no traceback."""
    code = (
        "import sys; from autolr.cli import main; rc = main(sys.argv[1:]); "
        "print(sorted(m for m in ('pandas', 'matplotlib', 'optuna_dashboard') if m in sys.modules), "
        "file=sys.stderr); raise SystemExit(rc)"
    )
    env = {**os.environ, "AUTOLR_STORAGE": study_db}
    p = subprocess.run([sys.executable, "-c", code, "best", "lr"], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and float(p.stdout) > 0
    assert "matplotlib" not in p.stderr and "optuna_dashboard" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "autolr", "best", "missing"], capture_output=True,
                       text=True, env=env)
    assert p.returncode == 1 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1
