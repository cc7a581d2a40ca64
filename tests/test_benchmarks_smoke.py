"""Smoke tests of ``benchmarks/``: ``--quick`` runs and prints its tables; the split is the fixed
hash rule; the judge separates the oracle's best from a bad lr; the replay counts reports."""

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
    assert "## Tuning half (1 tasks x 1 tuner seeds)" in out
    assert "## Held-out half (1 tasks x 1 tuner seeds)" in out
    assert "| tuner | hits | hit % | mean cost (runs) |" in out
    assert "| autolr | " in out and "| sh_plain | " in out
    assert "crashed" not in out
    assert "command: `python -m benchmarks --quick`" in out


def test_split_is_the_hash_rule_and_balanced() -> None:
    pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT))
    from benchmarks.split import HELDOUT, TUNING, split
    from benchmarks.tasks import TASKS

    assert len(TASKS) >= 28
    assert not set(TUNING) & set(HELDOUT) and set(TUNING) | set(HELDOUT) == set(TASKS)
    assert abs(len(TUNING) - len(HELDOUT)) <= 1
    assert split(TASKS) == (TUNING, HELDOUT)
    # adding a task never moves the others except by the rule itself (the order is by hash)
    t2, h2 = split([*TASKS, "zz_new_task"])
    assert len(set(TUNING) ^ set(t2) - {"zz_new_task"}) <= 1


def test_judge_and_replay_on_the_cached_oracle() -> None:
    pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT))
    from benchmarks.judge import Judge
    from benchmarks.replay import Curves

    judge, curves = Judge(), Curves()
    for name, tj in judge.tasks.items():
        assert judge(name, tj.best_lr).hit, name
        assert judge(name, tj.best_lr).regret == 0
        assert not judge(name, None).hit
        assert 0 < tj.hit_share() < 0.75, name  # the rule rejects a good part of the grid
    name = next(iter(judge.tasks))
    rt = curves.task(name)
    seen: list[tuple[float, int]] = []
    rt.train(1e-3, seed=5, report=lambda v, e: seen.append((v, e)))
    assert [e for _, e in seen] == list(range(1, len(seen) + 1))
    assert rt.reports == len(seen) and rt.cost == len(seen) / rt.epochs


def test_search_simulation_picks_what_the_library_picks_on_replay() -> None:
    """The policy sweep's simulation of autolr's search (benchmarks/search_sweep.py) must make
    the real library's pick at the real library's cost; when autolr's loop changes, the sim
    has to follow."""
    pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT))
    from benchmarks.replay import Curves
    from benchmarks.search_sweep import round_robin, simulate
    from benchmarks.tuners import TUNERS

    curves = Curves()
    for name in ("diabetes_wide_adam", "heavy_tail_sgdm", "mnist_adadelta"):
        real_task, sim_task = curves.task(name), curves.task(name)
        real = TUNERS["autolr"](real_task, seed=1)
        lr = simulate(sim_task, round_robin(1), {})
        assert real.lr is not None and lr is not None
        assert abs(real.lr / lr - 1) < 1e-6, (name, real.lr, lr)
        assert real_task.reports == sim_task.reports, name


def test_oracle_cache_notices_a_changed_task() -> None:
    pytest.importorskip("torch")
    sys.path.insert(0, str(ROOT))
    import dataclasses

    from benchmarks.oracle import task_config
    from benchmarks.tasks import TASKS

    t = TASKS["digits_adam"]
    assert task_config(t) != task_config(dataclasses.replace(t, settings=t.settings + "x"))
    assert task_config(t) != task_config(dataclasses.replace(t, epochs=t.epochs + 1))
    assert task_config(t) == task_config(dataclasses.replace(t, description="other words"))
