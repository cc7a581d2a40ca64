"""autolr's search on real studies: paused and resumed trials, growth, anchors, crashes, workers."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
import torch

import autolr
from autolr._schema import STUDY_SEARCH, views
from autolr._search import SearchSpec, is_done, spec_from_json

ROOT = Path(__file__).resolve().parents[1]


def valley(lr: float, epochs: int = 8, best: float = 0.03) -> float:
    """A loss that falls fastest and lowest near ``best`` and diverges above ``best * 10``."""
    loss = 1.0
    for epoch in range(epochs):
        if lr > best * 10:
            loss *= 3.0
        else:
            rate = min(0.9, 0.5 * (lr / best) ** 0.5)
            loss = loss * (1 - rate) + 0.02 * abs(math.log10(lr / best))
        autolr.report(loss, step=epoch)
    return loss


def test_a_paused_and_resumed_run_ends_exactly_as_an_uninterrupted_one(db: str) -> None:
    """Trials interleave (each reseeds the global generator), yet a resumed run draws what an
    uninterrupted one would: the saved random states are put back when it resumes."""

    def train(lr: float) -> float:
        torch.manual_seed(0)
        x = torch.randn(64, 8)
        y = (x[:, 0] > 0).long()
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(),
                                    torch.nn.Dropout(0.3), torch.nn.Linear(16, 2))
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        loss = torch.tensor(0.0)
        for epoch in range(6):
            for idx in torch.randperm(64).split(16):  # the global generator, as many scripts do
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
                loss.backward()
                opt.step()
            with torch.no_grad():  # parked inside no_grad: other trials still train
                autolr.report(float(loss.detach()), step=epoch)
        return float(loss.detach())

    result = autolr.tune(storage=db, show_progress_bar=False)(train).run()
    finished = [t for t in result.study.trials if t.state.name == "COMPLETE"]
    assert len(finished) >= 2
    for t in finished:
        assert t.value == pytest.approx(train(lr=t.params["lr"]), rel=1e-6)
    paused = [t for t in result.study.trials if "autolr.paused_at" in t.user_attrs]
    assert paused, "the search pauses trials"


def test_the_search_grows_its_range_to_a_far_optimum_and_says_so(db: str) -> None:
    result = autolr.tune(storage=db, show_progress_bar=False)(
        lambda lr: valley(lr, best=20.0)
    ).run()
    assert 20.0 / 10**0.5 <= result.best_lr <= 20.0 * 10**0.5
    assert max(t.params["lr"] for t in result.study.trials) > 0.1 * 10
    assert "The range grew up to" in result.explain()
    assert result.study.user_attrs[STUDY_SEARCH] == "halving"
    assert is_done(
        spec_from_json(result.study.user_attrs["autolr.search_spec"]) or SearchSpec.build(default_lr=None),
        views(result.study.trials),
        direction="minimize",
    )


def test_the_functions_own_default_is_measured_first(db: str) -> None:
    def train(lr: float = 1.0) -> float:
        return valley(lr, best=1.0)

    result = autolr.tune(storage=db, show_progress_bar=False)(train).run()
    first = {round(t.params["lr"], 9) for t in result.study.trials[:2]}
    assert first == {1e-3, 1.0}
    assert abs(math.log10(result.best_lr)) <= 0.5


def test_a_range_the_user_gave_is_kept_and_an_edge_pick_is_said(db: str) -> None:
    result = autolr.tune(lr=(1e-5, 1e-2), storage=db, show_progress_bar=False)(valley).run()
    lrs = [t.params["lr"] for t in result.study.trials]
    assert min(lrs) >= 1e-5 and max(lrs) <= 1e-2
    assert result.best_lr == pytest.approx(1e-2)
    assert "top of the range you gave" in result.explain()


def test_a_function_that_reports_nothing_gets_full_runs(db: str) -> None:
    result = autolr.tune(storage=db, show_progress_bar=False)(
        lambda lr: abs(math.log10(lr) + 2) + 0.1
    ).run()
    states = {t.state.name for t in result.study.trials}
    assert states == {"COMPLETE"}
    assert len(result.study.trials) <= 9
    assert abs(math.log10(result.best_lr) + 2) <= 0.5


def test_pruner_false_runs_every_trial_to_its_end(db: str) -> None:
    result = autolr.tune(storage=db, pruner=False, show_progress_bar=False)(valley).run()
    for t in result.study.trials:  # only instability stops a trial early
        reason = t.user_attrs.get("autolr.stop_reason")
        assert len(t.intermediate_values) == 8 or reason in ("diverged", "nan", "inf"), reason
    assert "underperforming" not in {t.user_attrs.get("autolr.stop_reason") for t in result.study.trials}


def test_unstable_trials_are_stopped_and_never_picked(db: str) -> None:
    def train(lr: float) -> float:
        loss = 1.0
        for epoch in range(10):
            loss = loss * (0.7 if lr < 0.1 else 5.0)
            autolr.report(loss if lr < 1.0 else float("nan"), step=epoch)
        return loss

    result = autolr.tune(storage=db, show_progress_bar=False)(train).run()
    assert result.best_lr < 0.1
    reasons = {t.user_attrs.get("autolr.stop_reason") for t in result.study.trials
               if t.params["lr"] >= 1.0}
    assert reasons <= {"nan", "diverged", "underperforming"}


def test_n_trials_caps_the_search(db: str) -> None:
    result = autolr.tune(n_trials=5, storage=db, show_progress_bar=False)(valley).run()
    assert len(result.study.trials) == 5
    again = autolr.tune(n_trials=5, storage=db, show_progress_bar=False)(valley).run()
    assert len(again.study.trials) == 5  # a finished search trains nothing more


def test_two_threads_share_one_search(db: str) -> None:
    result = autolr.tune(storage=db, show_progress_bar=False)(valley).run(n_jobs=2)
    trials = result.study.trials
    assert not [t for t in trials if t.state.name == "RUNNING"]
    assert abs(math.log10(result.best_lr / 0.03)) <= 0.5
    assert is_done(SearchSpec.build(default_lr=None), views(trials), direction="minimize")


def test_timeout_leaves_no_trial_running_and_a_resume_finishes(db: str) -> None:
    def slow(lr: float) -> float:
        time.sleep(0.05)
        return valley(lr)

    first = autolr.tune(storage=db, timeout=0.3, show_progress_bar=False)(slow).run()
    assert not [t for t in first.study.trials if t.state.name == "RUNNING"]
    done = autolr.tune(storage=db, show_progress_bar=False)(slow).run()
    assert abs(math.log10(done.best_lr / 0.03)) <= 0.5


def test_a_study_of_autolr_0_1_resumes_with_tpe(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    study = optuna.create_study(storage=db, study_name="old")
    for k, v in {"autolr.version": "0.1.0", "autolr.direction": "minimize",
                 "autolr.lr_high": 0.1, "autolr.lr_low": 1e-5}.items():
        study.set_user_attr(k, v)
    for lr in (1e-3, 1e-2):
        study.enqueue_trial({"lr": lr})
        t = study.ask({"lr": optuna.distributions.FloatDistribution(1e-5, 0.1, log=True)})
        study.tell(t, abs(math.log10(lr) + 1.5))
    result = autolr.tune(n_trials=5, storage=db, study_name="old", show_progress_bar=False)(valley).run()
    assert "resumes the same way" in capsys.readouterr().err
    assert STUDY_SEARCH not in result.study.user_attrs
    with_lr = [t for t in result.study.trials if "lr" in t.params]
    assert len(with_lr) == 5 and all(1e-5 <= t.params["lr"] <= 0.1 for t in with_lr)


SCRIPT = textwrap.dedent(
    """
    import math, sys, time
    import autolr

    @autolr.tune(storage=sys.argv[1], show_progress_bar=False)
    def train(lr: float) -> float:
        loss = 1.0
        for epoch in range(6):
            time.sleep(0.03)
            loss = loss * (1 - min(0.9, 0.5 * (lr / 0.03) ** 0.5)) + 0.02 * abs(math.log10(lr / 0.03))
            print(f"report {lr:.3g} {epoch}", flush=True)
            autolr.report(loss, step=epoch)
        return loss

    if __name__ == "__main__":
        result = train.run()
        print("best", result.best_lr, flush=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_search_stopped_mid_way_resumes_to_the_same_plan(tmp_path: Path, sig: int) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    url = f"sqlite:///{tmp_path / 's.db'}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(script), url], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    reports = 0
    for line in proc.stdout:  # stop it once a few trials are parked, mid-way through rung 0
        reports += line.startswith("report")
        if reports >= 9:
            break
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode != 0 and "Run again (train.run()) to resume" in err
        assert "Traceback" not in err.split("resume")[-1] or "KeyboardInterrupt" in err
    study = autolr.load("train", storage=url).study
    if sig == signal.SIGINT:
        assert not [t for t in study.trials if t.state.name == "RUNNING"]
        assert {t.user_attrs.get("autolr.stop_reason") for t in study.trials
                if t.state.name == "FAIL"} <= {"interrupted"}
    again = subprocess.run([sys.executable, str(script), url], env=env, text=True,
                           capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    trials = autolr.load("train", storage=url).study.trials
    assert not [t for t in trials if t.state.name == "RUNNING"]
    lost = [t for t in trials if t.user_attrs.get("autolr.stop_reason") in ("crashed", "interrupted")]
    assert lost, "the stop caught trials mid-way"
    grid = SearchSpec.build(default_lr=None).grid()
    for x in grid:  # every planned lr ran once: what a lost trial reported counts, the rest re-runs
        at_x = [t for t in trials if round(math.log10(t.params["lr"]), 6) == x]
        assert any(len(t.intermediate_values) >= 2 for t in at_x), x
        assert sum(t not in lost for t in at_x) <= 1, x
    assert is_done(SearchSpec.build(default_lr=None), views(trials), direction="minimize")
