"""Overhead: what one intermediate report costs, and how long autolr takes to start.

Per-report cost, measured side by side in one process with a trivial objective (no training):

- raw Optuna: ``trial.report`` + ``trial.should_prune()`` with ``MedianPruner`` on SQLite, a
  journal file (``JournalStorage(JournalFileBackend(path))``) and in memory;
- autolr: ``autolr.report`` inside ``@autolr.tune`` with its default storage (the default
  ``sqlite:///studies/autolr.db``, made inside a temporary working directory), and with a
  journal file and in-memory storage passed explicitly.

Each objective reports ``1 / (step + 1)`` (the same decreasing curve in every trial, so nothing
is pruned or stopped as unstable) ``n_reports`` times. The amortized cost per report is the wall
time of the whole study (trial creation and bookkeeping included) minus the same study with no
reports, divided by the reports actually made.

Start-up: ``import autolr`` (and ``import optuna`` for scale) in a fresh interpreter, best of N;
``autolr --help`` once the CLI exists.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Measure", "per_report", "startup", "render", "run"]


@dataclass(frozen=True)
class Measure:
    """One measured configuration."""

    tool: str
    storage: str
    trials: int
    reports: int
    seconds: float
    baseline_seconds: float
    note: str = ""

    @property
    def ms_per_report(self) -> float:
        """Amortized milliseconds per report (study time minus the no-report study)."""
        return 1000 * max(self.seconds - self.baseline_seconds, 0.0) / max(self.reports, 1)


@contextlib.contextmanager
def _chdir(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _optuna_storage(kind: str, tmp: Path, tag: str) -> object:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if kind == "sqlite":
        return f"sqlite:///{tmp / f'{tag}.db'}"
    if kind == "journal":
        return JournalStorage(JournalFileBackend(str(tmp / f"{tag}.log")))
    return optuna.storages.InMemoryStorage()


def _raw_optuna(kind: str, tmp: Path, n_trials: int, n_reports: int, tag: str) -> tuple[float, int]:
    import optuna

    count = 0
    study = optuna.create_study(
        storage=_optuna_storage(kind, tmp, tag),  # type: ignore[arg-type]
        study_name=tag,
        pruner=optuna.pruners.MedianPruner(),
        sampler=optuna.samplers.TPESampler(seed=0),
    )

    def objective(trial: optuna.Trial) -> float:
        nonlocal count
        trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        for step in range(n_reports):
            trial.report(1.0 / (step + 1), step)
            count += 1
            if trial.should_prune():
                raise optuna.TrialPruned()
        return 1.0 / max(n_reports, 1)

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    return time.perf_counter() - t0, count


def _autolr(kind: str, tmp: Path, n_trials: int, n_reports: int, tag: str) -> tuple[float, int]:
    import autolr

    count = 0

    def objective(lr: float) -> float:
        nonlocal count
        for step in range(n_reports):
            autolr.report(1.0 / (step + 1), step=step)
            count += 1
        return 1.0 / max(n_reports, 1)

    work = tmp / tag
    work.mkdir()
    with _chdir(work):
        storage = None if kind == "default" else _optuna_storage(kind, tmp, tag)
        tuned = autolr.tune(
            n_trials=n_trials, seed=0, storage=storage, study_name=tag, show_progress_bar=False
        )(objective)
        t0 = time.perf_counter()
        tuned.run()
        return time.perf_counter() - t0, count


def per_report(
    n_trials: int = 30, n_reports: int = 100, *, with_autolr: bool = True
) -> list[Measure]:
    """Measure every configuration (raw Optuna first, then autolr) in this process."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    configs: list[tuple[str, str, Callable[[str, Path, int, int, str], tuple[float, int]]]] = [
        ("optuna + MedianPruner", "sqlite", _raw_optuna),
        ("optuna + MedianPruner", "journal", _raw_optuna),
        ("optuna + MedianPruner", "memory", _raw_optuna),
    ]
    if with_autolr:
        configs += [
            ("autolr", "default", _autolr),
            ("autolr", "journal", _autolr),
            ("autolr", "memory", _autolr),
        ]
    out: list[Measure] = []
    with tempfile.TemporaryDirectory(prefix="autolr-bench-") as d:
        tmp = Path(d)
        for i, (tool, kind, fn) in enumerate(configs):
            base_s, _ = fn(kind, tmp, n_trials, 0, f"b{i}")
            secs, count = fn(kind, tmp, n_trials, n_reports, f"m{i}")
            label = "sqlite (autolr default)" if kind == "default" else kind
            out.append(Measure(tool, label, n_trials, count, secs, base_s))
    return out


def _best_of(cmd: list[str], n: int) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def startup(n: int = 5) -> list[tuple[str, str]]:
    """``(what, seconds or why not)`` for the interpreter, ``import optuna``/``autolr`` and the CLI."""
    py = sys.executable
    rows: list[tuple[str, str]] = [
        ("python -c pass", f"{_best_of([py, '-c', 'pass'], n):.3f}"),
        ("python -c 'import optuna'", f"{_best_of([py, '-c', 'import optuna'], n):.3f}"),
    ]
    try:
        rows.append(("python -c 'import autolr'", f"{_best_of([py, '-c', 'import autolr'], n):.3f}"))
    except subprocess.CalledProcessError as e:
        rows.append(("python -c 'import autolr'", f"failed: {e.stderr.decode()[-100:]!r}"))
    exe = shutil.which("autolr") or str(Path(py).with_name("autolr"))
    if Path(exe).exists():
        try:
            rows.append(("autolr --help", f"{_best_of([exe, '--help'], n):.3f}"))
        except subprocess.CalledProcessError as e:
            rows.append(("autolr --help", f"failed (exit {e.returncode})"))
    else:
        rows.append(("autolr --help", "pending: no `autolr` console script installed"))
    return rows


def render(measures: list[Measure], start: list[tuple[str, str]]) -> str:
    """Markdown tables: per-report cost (with ratios to raw Optuna on the same storage) and start-up."""
    raw = {m.storage: m.ms_per_report for m in measures if m.tool.startswith("optuna")}
    raw["sqlite (autolr default)"] = raw.get("sqlite", float("nan"))
    lines = [
        "### Per-report overhead\n",
        "| tool | storage | trials | reports made | study s | same study, 0 reports, s "
        "| ms per report | vs raw Optuna, same storage |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in measures:
        ref = raw.get(m.storage, float("nan"))
        ratio = m.ms_per_report / ref if ref > 0 else float("nan")
        lines.append(
            f"| {m.tool} | {m.storage} | {m.trials} | {m.reports} | {m.seconds:.2f} "
            f"| {m.baseline_seconds:.2f} | {m.ms_per_report:.4f} | {ratio:.2f}x |"
        )
    lines += ["", "### Start-up (fresh interpreter, best of N, seconds)\n", "| command | s |", "| --- | ---: |"]
    lines += [f"| `{what}` | {s} |" for what, s in start]
    return "\n".join(lines) + "\n"


def run(n_trials: int = 30, n_reports: int = 100, n_startup: int = 5) -> str:
    """Measure everything and return the markdown."""
    from benchmarks.tuners import available

    why = available("autolr")
    measures = per_report(n_trials, n_reports, with_autolr=why is None)
    text = render(measures, startup(n_startup))
    if why is not None:
        text += f"\nautolr per-report rows {why}\n"
    return text


if __name__ == "__main__":
    print(run())
