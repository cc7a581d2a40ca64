"""Values and steps no storage can hold, and SystemExit in train: no trial is left RUNNING, the
reason is one line, and the next run works (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

import autolr


def _states(storage: str, name: str) -> list[TrialState]:
    return [t.state for t in autolr.load(name, storage=storage).study.get_trials(deepcopy=False)]


@pytest.mark.parametrize("sampler", ["auto", "random"])
def test_a_return_past_float_range_is_inf_and_the_study_goes_on(
    tmp_path: Path, sampler: str
) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"

    @autolr.tune(n_trials=4, storage=storage, sampler=sampler, show_progress_bar=False)
    def train(lr: float) -> object:
        return 10**400 if abs(lr - 0.001) > 1e-9 else 0.5

    result = train.run()
    trials = result.study.get_trials(deepcopy=False)
    assert TrialState.RUNNING not in [t.state for t in trials]
    huge = [t for t in trials if abs(t.params["lr"] - 0.001) > 1e-9]
    assert huge and all(t.state == TrialState.FAIL for t in huge)
    assert {t.user_attrs["autolr.stop_reason"] for t in huge} == {"inf"}
    assert result.best_lr is not None


@pytest.mark.parametrize("step", [2**31, 2**63, -1])
def test_a_step_no_storage_holds_is_refused_naming_step(tmp_path: Path, step: int) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    calls: list[int] = []

    @autolr.tune(n_trials=3, storage=storage, sampler="random", show_progress_bar=False)
    def train(lr: float) -> float:
        calls.append(1)
        if len(calls) <= 2:
            autolr.report(1.0, step=step)
        return lr

    expected = r"autolr.report\(step\): expected an int from 0 to 2147483647"
    with pytest.raises(ValueError, match=expected):
        train.run()
    assert TrialState.RUNNING not in _states(storage, "train")
    assert train.run().best_lr is not None  # the next run works
    assert TrialState.RUNNING not in _states(storage, "train")


def test_systemexit_in_train_leaves_no_trial_running(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    exits = [True]

    @autolr.tune(n_trials=3, storage=storage, show_progress_bar=False)
    def train(lr: float) -> float:
        autolr.report(lr, step=0)
        if exits and lr > 0.002:
            raise SystemExit(3)
        return lr

    with pytest.raises(SystemExit):
        train.run()
    trials = autolr.load("train", storage=storage).study.get_trials(deepcopy=False)
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert any(t.user_attrs.get("autolr.exception") == "SystemExit: 3" for t in trials)
    exits.clear()
    assert train.run().best_lr is not None



@pytest.mark.services
def test_a_step_past_int32_on_postgres_is_refused_and_the_rerun_works(postgres_url: str) -> None:
    big = [True]

    @autolr.tune(n_trials=3, storage=postgres_url, sampler="random", show_progress_bar=False)
    def train(lr: float) -> float:
        autolr.report(1.0, step=2**31 if big else 0)
        return lr

    with pytest.raises(ValueError, match="step"):
        train.run()
    assert TrialState.RUNNING not in _states(postgres_url, "train")
    big.clear()
    assert train.run().best_lr is not None
