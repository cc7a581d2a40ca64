"""The core contract of @autolr.tune on real Optuna studies in real SQLite files."""

from __future__ import annotations

import math
import time
import sqlite3
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import autolr


def bowl(lr: float, epochs: int = 5) -> float:
    """A deterministic 'training' whose final loss is lowest near lr = 1e-2."""
    loss = 1.0
    for epoch in range(epochs):
        loss = 0.2 + (math.log10(lr) + 2) ** 2 * 0.1 + 0.8 * 0.5**epoch
        autolr.report(loss, step=epoch)
    return loss


def test_study_runs_stores_and_reports(db: str, tmp_path: Path) -> None:
    train = autolr.tune(n_trials=6, seed=0, storage=db, pruner=False, show_progress_bar=False)(bowl)
    result = train.run()

    assert isinstance(result, autolr.Result)
    trials = result.study.trials
    assert len(trials) == 6
    assert trials[0].params["lr"] == 1e-3  # the classic default is always measured first
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert all(len(t.intermediate_values) == 5 for t in trials)
    assert 1e-5 <= result.best_lr <= 1e-1
    assert result.best_value == pytest.approx(
        next(t.value for t in trials if t.params["lr"] == result.best_lr)
    )
    df = result.trials()
    assert list(df["number"]) == list(range(6))
    assert df.loc[0, "lr"] == 1e-3 and df.loc[0, "steps"] == 5
    # the study is in the file, readable by plain sqlite and by autolr.load
    con = sqlite3.connect(tmp_path / "studies.db")
    assert con.execute("select count(*) from trials").fetchone()[0] == 6
    con.close()
    again = autolr.load("bowl", storage=db)
    assert again.best_lr == result.best_lr
    assert len(again.trials()) == 6


def test_peer_pruning_of_an_optuna_sampler_stops_trailing_trials_and_says_so(db: str) -> None:
    train = autolr.tune(n_trials=12, seed=0, storage=db, sampler="tpe", show_progress_bar=False)(bowl)
    result = train.run()
    trials = result.study.trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "trials far from lr=1e-2 trail at every step and should be stopped"
    for t in pruned:
        assert t.user_attrs["autolr.stop_reason"] == "underperforming"
        step = t.user_attrs["autolr.stop_step"]
        assert 0 < step < 4 and max(t.intermediate_values) == step
    assert len(trials) == 12  # pruned trials count towards the total
    attrs = result.study.user_attrs  # the study records what stopping early saved
    assert attrs["autolr.steps_saved"] == sum(5 - 1 - t.user_attrs["autolr.stop_step"] for t in pruned)
    assert attrs["autolr.steps_run"] == sum(len(t.intermediate_values) for t in trials)
    assert abs(math.log10(result.best_lr) + 2) < 1  # within a decade of the optimum


def test_bare_decorator_and_plain_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    @autolr.tune
    def train(lr: float) -> float:
        autolr.report(lr, step=0)  # outside a study: a no-op
        return lr * 2

    assert train(lr=0.5) == 1.0  # still the user's own function
    assert train.__name__ == "train"
    assert not (tmp_path / "studies").exists()  # decorating and calling write nothing
    result = train.run(n_trials=2, show_progress_bar=False)
    assert (tmp_path / "studies" / "autolr.db").is_file()  # the default storage
    assert len(result.study.trials) == 2


def test_env_var_overrides_default_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOLR_STORAGE", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    train = autolr.tune(n_trials=1, show_progress_bar=False)(bowl)
    train.run()
    assert (tmp_path / "elsewhere.db").is_file()
    assert not (tmp_path / "studies").exists()


def test_n_trials_is_a_study_wide_total(db: str) -> None:
    calls: list[float] = []

    @autolr.tune(n_trials=4, seed=1, storage=db, show_progress_bar=False)
    def train(lr: float) -> float:
        calls.append(lr)
        return abs(math.log10(lr) + 2)

    first = train.run()
    assert len(calls) == 4
    second = train.run()  # everything finished: trains nothing, same answer
    assert len(calls) == 4
    assert second.best_lr == first.best_lr
    train.run(n_trials=6)  # a bigger total runs only the missing trials
    assert len(calls) == 6
    assert len(autolr.load("train", storage=db).study.trials) == 6


def test_seed_gives_the_same_learning_rates(tmp_path: Path) -> None:
    def lrs(path: Path) -> list[float]:
        train = autolr.tune(n_trials=8, seed=7, storage=f"sqlite:///{path}", show_progress_bar=False)(bowl)
        return [t.params["lr"] for t in train.run().study.trials]

    a, b = lrs(tmp_path / "a.db"), lrs(tmp_path / "b.db")
    assert a == b
    assert len(set(a)) == 8


def test_run_kwargs_and_trial_are_passed(db: str) -> None:
    seen: list[tuple[int, str]] = []

    @autolr.tune(n_trials=3, seed=0, storage=db, show_progress_bar=False)
    def train(lr: float, trial: optuna.Trial, epochs: int = 1) -> float:
        width = trial.suggest_int("width", 4, 64, log=True)
        seen.append((epochs, type(trial).__name__))
        return lr * width

    result = train.run(epochs=7)
    assert seen == [(7, "Trial")] * 3
    assert "param_width" in result.trials().columns
    with pytest.raises(TypeError, match="no parameter 'epoch'"):
        train.run(epoch=3)
    with pytest.raises(TypeError, match=r"\['lr'\]"):
        train.run(lr=0.1)


def test_resume_with_other_direction_or_range_is_refused(db: str) -> None:
    autolr.tune(n_trials=1, storage=db, study_name="s", show_progress_bar=False)(bowl).run()
    with pytest.raises(ValueError, match=r"^direction: .*'minimize'"):
        autolr.tune(n_trials=2, storage=db, study_name="s", direction="maximize")(bowl).run()
    with pytest.raises(ValueError, match=r"^lr: .*\(1e-07, 100\), got \(0\.0001, 1\)"):
        autolr.tune(n_trials=2, storage=db, study_name="s", lr=(1e-4, 1.0))(bowl).run()
    with pytest.raises(ValueError, match=r"^sampler: study 's' was run by autolr's own search"):
        autolr.tune(n_trials=2, storage=db, study_name="s", sampler="tpe")(bowl).run()
    autolr.tune(n_trials=1, storage=db, study_name="t", lr=(1e-4, 1e-2))(bowl).run()
    with pytest.raises(ValueError, match=r"^lr: study 't' .*\(0\.0001, 0\.01\), got autolr's own"):
        autolr.tune(n_trials=2, storage=db, study_name="t")(bowl).run()
    assert len(autolr.load("s", storage=db).study.trials) == 1


def test_exceptions_are_data_not_crashes(db: str) -> None:
    @autolr.tune(n_trials=6, seed=0, storage=db, lr=(1e-4, 1.0), show_progress_bar=False)
    def train(lr: float) -> float:
        if lr > 0.05:
            raise FloatingPointError(f"blew up at {lr:.3g}")
        return lr

    result = train.run()
    trials = result.study.trials
    assert len(trials) == 6
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed, "the seed should sample some lr > 0.05"
    for t in failed:
        assert t.user_attrs["autolr.stop_reason"] == "exception"
        assert t.user_attrs["autolr.exception"].startswith("FloatingPointError: blew up at")
    assert result.best_lr <= 0.05
    df = result.trials()
    assert set(df.loc[df.state == "FAIL", "stop_reason"]) == {"exception"}


def test_the_same_exception_from_the_first_trials_is_a_bug(db: str) -> None:
    calls = []

    @autolr.tune(n_trials=10, storage=db, show_progress_bar=False)
    def train(lr: float) -> float:
        calls.append(lr)
        raise KeyError("labels")

    with pytest.raises(KeyError, match="labels"):
        train.run()
    assert len(calls) == 2  # re-raised after two identical failures, not ten
    study = autolr.load("train", storage=db).study
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2


def test_uncaught_exception_types_propagate(db: str) -> None:
    @autolr.tune(n_trials=3, storage=db, catch=(ValueError,), show_progress_bar=False)
    def train(lr: float) -> float:
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        train.run()
    t = autolr.load("train", storage=db).study.trials[0]
    assert t.state == TrialState.FAIL and "out of memory" in t.user_attrs["autolr.exception"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_objective_is_recorded_never_best(db: str, bad: float) -> None:
    @autolr.tune(n_trials=5, seed=3, storage=db, show_progress_bar=False)
    def train(lr: float) -> float:
        return bad if lr > 1e-3 else -lr  # the non-finite ones would "win" an argmin

    result = train.run()
    states = {t.number: t.state for t in result.study.trials}
    assert TrialState.FAIL in states.values()
    for t in result.study.trials:
        if t.state == TrialState.FAIL:
            assert t.user_attrs["autolr.stop_reason"] == ("nan" if math.isnan(bad) else "inf")
    assert math.isfinite(result.best_value)
    assert result.best_lr <= 1e-3


@pytest.mark.parametrize("returned", [None, "0.5", [0.1], {"loss": 1.0}])
def test_returning_a_non_number_is_an_error(db: str, returned: object) -> None:
    @autolr.tune(n_trials=3, storage=db, show_progress_bar=False)
    def train(lr: float) -> object:
        return returned

    with pytest.raises(TypeError, match=r"return value of .*train\(\): expected a real number"):
        train.run()


def test_numpy_and_tensor_objectives_are_accepted(db: str) -> None:
    import numpy as np
    import torch

    values = iter([np.float32(0.5), torch.tensor(0.25), np.array(0.125)])

    @autolr.tune(n_trials=3, storage=db, show_progress_bar=False)
    def train(lr: float) -> object:
        return next(values)

    result = train.run()
    assert sorted(t.value for t in result.study.trials) == [0.125, 0.25, 0.5]


def test_report_rejects_bad_values_and_steps(db: str) -> None:
    errors: list[str] = []

    @autolr.tune(n_trials=1, storage=db, show_progress_bar=False)
    def train(lr: float) -> float:
        autolr.report(1.0)  # step 0
        for value, step in [("x", None), (1.0, 0), (1.0, -1), (1.0, 1.5), (None, 2)]:
            try:
                autolr.report(value, step=step)  # type: ignore[arg-type]
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        autolr.report(0.5)  # step 1
        return 0.5

    result = train.run()
    assert len(errors) == 5
    assert all(e.startswith("autolr.report(") for e in errors)
    assert "steps must increase" in errors[1]
    assert result.study.trials[0].intermediate_values == {0: 1.0, 1: 0.5}


def test_load_of_a_missing_study_lists_the_ones_that_exist(db: str) -> None:
    autolr.tune(n_trials=1, storage=db, study_name="alpha", show_progress_bar=False)(bowl).run()
    with pytest.raises(autolr.StudyNotFoundError, match=r"no study 'beta' .* studies there: 'alpha'"):
        autolr.load("beta", storage=db)


def test_load_from_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(autolr.StorageError, match="no study file"):
        autolr.load("x", storage=f"sqlite:///{tmp_path / 'nope.db'}")
    assert list(tmp_path.iterdir()) == []


def test_timeout_stops_starting_trials(db: str) -> None:
    import time

    @autolr.tune(n_trials=50, storage=db, timeout=0.3, show_progress_bar=False)
    def train(lr: float) -> float:
        time.sleep(0.1)
        return lr

    result = train.run()
    assert 1 <= len(result.study.trials) < 50


def test_progress_bar_shows_study_progress(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    train = autolr.tune(n_trials=3, storage=db, show_progress_bar=True)(bowl)
    train.run()
    err = capsys.readouterr().err
    assert "bowl" in err and "3/3" in err


def test_grid_mode_runs_the_classic_comparison_once_and_resumes(db: str) -> None:
    calls: list[float] = []

    @autolr.tune(sampler="grid", storage=db, show_progress_bar=False)
    def train(lr: float) -> float:
        calls.append(lr)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return abs(math.log10(lr) + 2)

    with pytest.raises(KeyboardInterrupt):
        train.run()
    train.run()
    result = autolr.load("train", storage=db)
    done = sorted(t.params["lr"] for t in result.study.trials if t.state == TrialState.COMPLETE)
    assert done == [1e-4, 1e-3, 1e-2, 1e-1]  # each point once, the interrupted one re-run
    assert result.best_lr == 1e-2
    assert len(calls) == 5


def test_grid_mode_points_per_decade(db: str) -> None:
    train = autolr.tune(
        sampler="grid", points_per_decade=2, lr=(1e-3, 1e-1), storage=db, show_progress_bar=False
    )(bowl)
    lrs = sorted(t.params["lr"] for t in train.run().study.trials)
    assert lrs == [1e-3, 0.00316, 1e-2, 0.0316, 1e-1]
    with pytest.raises(ValueError, match="^points_per_decade: only applies to sampler='grid'"):
        autolr.tune(points_per_decade=2)(bowl)


def test_recheck_reruns_the_best_candidates_with_other_seeds(db: str) -> None:
    seen: list[tuple[float, int]] = []

    @autolr.tune(n_trials=8, seed=0, storage=db, sampler="tpe", pruner=False, show_progress_bar=False)
    def train(lr: float, seed: int = 0) -> float:
        seen.append((lr, seed))
        return abs(math.log10(lr) + 2) + 0.01 * seed

    result = train.run()
    trials = result.study.trials
    assert len(trials) == 8  # re-checks are part of the budget, not extra
    rechecks = [t for t in trials if "autolr.recheck_of" in t.user_attrs]
    assert [t.number for t in rechecks] == [6, 7]
    assert [t.user_attrs["autolr.seed"] for t in rechecks] == [1, 2]
    for t in rechecks:
        original = trials[t.user_attrs["autolr.recheck_of"]]
        assert t.params == original.params and "autolr.recheck_of" not in original.user_attrs
    assert seen[-2:] == [(t.params["lr"], t.user_attrs["autolr.seed"]) for t in rechecks]
    assert all(s == 0 for _, s in seen[:-2])
    # the two re-checked candidates are the two best of the first six
    first6 = sorted(trials[:6], key=lambda t: t.value)
    assert {t.user_attrs["autolr.recheck_of"] for t in rechecks} == {first6[0].number, first6[1].number}


def test_recheck_needs_a_seed_parameter() -> None:
    with pytest.raises(ValueError, match=r"^recheck: .* has no 'seed' parameter"):
        autolr.tune(recheck=2, sampler="tpe")(bowl)
    with pytest.raises(ValueError, match=r"^recheck: expected an int >= 0"):
        autolr.tune(recheck=-1)(bowl)
    with pytest.raises(ValueError, match=r"^recheck: autolr's search .* finishes its two best"):
        autolr.tune(recheck=1)(lambda lr, seed=0: lr)
    assert autolr.tune(bowl).options["recheck"] == 0
    assert autolr.tune(lambda lr, seed=0: lr).options["recheck"] == 0  # the search's default
    assert autolr.tune(lambda lr, seed=0: lr, sampler="tpe").options["recheck"] == 2


def test_best_lr_is_the_lr_the_optimizer_really_ran(db: str) -> None:
    @autolr.tune(n_trials=3, seed=0, storage=db, pruner=False, show_progress_bar=False)
    def train(lr: float, trial: optuna.Trial) -> float:
        trial.set_user_attr("autolr.effective_lr", lr * 30)  # as autolr.torch.optimizer does for SGD
        return abs(math.log10(lr) + 3)

    result = train.run()
    assert result.recommended_trial is not None
    assert result.best_lr == pytest.approx(result.recommended_trial.params["lr"] * 30)
    assert result.study.user_attrs["autolr.recommended_lr"] == pytest.approx(result.best_lr)


def test_a_trial_told_to_stop_is_recorded_as_stopped_even_if_it_returns(db: str) -> None:
    """A framework callback catches autolr.TrialPruned and ends training normally."""

    @autolr.tune(n_trials=3, seed=0, storage=db, show_progress_bar=False, pruner=False)
    def train(lr: float) -> float:
        loss = 1.0
        for step in range(5):
            loss = 1.0 if lr < 0.01 else float("nan")
            try:
                autolr.report(loss, step=step)
            except autolr.TrialPruned:
                break  # as a Lightning/Keras callback would: stop training, return normally
        return 0.5

    result = train.run()
    table = result.trials()
    stopped = table[table["lr"] >= 0.01]
    assert len(stopped) >= 1
    assert set(stopped["state"]) == {"PRUNED"}
    assert set(stopped["stop_reason"]) == {"nan"}
    assert set(table[table["lr"] < 0.01]["state"]) == {"COMPLETE"}


@pytest.mark.parametrize("n_jobs", [1, 3, 6])
def test_rechecks_do_not_shrink_with_workers_nor_crowd_out_a_small_study(db: str, n_jobs: int) -> None:
    def study(n: int, name: str) -> list[optuna.trial.FrozenTrial]:
        @autolr.tune(n_trials=n, seed=0, storage=db, study_name=name, sampler="tpe",
                     pruner=False, show_progress_bar=False)
        def train(lr: float, seed: int = 0) -> float:
            time.sleep(0.02)
            return abs(math.log10(lr) + 2) + 0.01 * seed

        return train.run(n_jobs=n_jobs).study.trials

    trials = [t for t in study(12, "twelve") if t.state.name == "COMPLETE"]  # not given back
    rechecks = {t.user_attrs["autolr.recheck_of"] for t in trials if "autolr.recheck_of" in t.user_attrs}
    assert len(rechecks) == 2 and len(trials) == 12
    small = study(5, "five")  # the five planned points first: no room for re-checks
    assert not any("autolr.recheck_of" in t.user_attrs for t in small)
    assert len({t.params["lr"] for t in small if t.state.name == "COMPLETE"}) == 5


def test_the_default_lr_comes_first_whatever_the_worker_index(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOLR_WORKER_INDEX", "3")  # a lone run under a scheduler's index

    @autolr.tune(n_trials=1, storage=db, sampler="tpe", show_progress_bar=False)
    def train(lr: float) -> float:
        return lr

    assert [t.params["lr"] for t in train.run().study.trials] == [1e-3]
