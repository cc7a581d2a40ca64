"""autolr.sklearn.LRSearchCV on real scikit-learn estimators and real Optuna studies."""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
)
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402
from sklearn.model_selection import PredefinedSplit, StratifiedKFold  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_estimators_overwrite_params,
    parametrize_with_checks,
)

from autolr.sklearn import LRSearchCV, find_lr_param  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning", "ignore:.*existing study.*"
)
optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """400 digits of 4 classes, scaled to [0, 1]: small enough for a few hundred epochs."""
    X, y = load_digits(n_class=4, return_X_y=True)
    return X[:400] / 16.0, y[:400]


class Memory(optuna.storages.InMemoryStorage):
    """Optuna's in-memory storage with a stable repr, so test ids are the same on every run."""

    def __repr__(self) -> str:
        return "InMemoryStorage()"


def memory() -> optuna.storages.InMemoryStorage:
    return Memory()


# ----------------------------------------------------------------------------- finding the lr


@pytest.mark.parametrize(
    ("estimator", "name"),
    [
        (MLPClassifier(), "learning_rate_init"),
        (MLPRegressor(), "learning_rate_init"),
        (SGDClassifier(learning_rate="constant"), "eta0"),  # not SGD's string 'learning_rate'
        (SGDRegressor(), "eta0"),
        (HistGradientBoostingClassifier(), "learning_rate"),
        (GradientBoostingRegressor(), "learning_rate"),
        (make_pipeline(StandardScaler(), MLPClassifier()), "mlpclassifier__learning_rate_init"),
    ],
)
def test_finds_the_learning_rate_parameter(estimator: object, name: str) -> None:
    assert find_lr_param(estimator) == name


def test_unknown_estimator_names_lr_param_and_what_was_looked_for(digits) -> None:  # type: ignore[no-untyped-def]
    X, y = digits
    with pytest.raises(ValueError, match=r"^lr_param: .*LogisticRegression.*learning_rate_init, eta0, learning_rate"):
        LRSearchCV(LogisticRegression(), storage=memory()).fit(X, y)
    with pytest.raises(ValueError, match=r"^lr_param: .*no parameter 'nope'"):
        LRSearchCV(MLPClassifier(), lr_param="nope", storage=memory()).fit(X, y)


def test_sgd_optimal_schedule_and_lbfgs_are_refused_clearly(digits) -> None:  # type: ignore[no-untyped-def]
    X, y = digits
    with pytest.raises(ValueError, match=r"^lr_param: SGDClassifier\(learning_rate='optimal'\) ignores eta0"):
        LRSearchCV(SGDClassifier(), storage=memory()).fit(X, y)
    with pytest.raises(ValueError, match=r"solver='lbfgs'\) ignores .*learning_rate_init"):
        LRSearchCV(
            make_pipeline(StandardScaler(), MLPClassifier(solver="lbfgs")), storage=memory()
        ).fit(X, y)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_trials": 0}, "'n_trials' parameter"),
        ({"cv": "five"}, "'cv' parameter"),
        ({"lr": (0.1, 0.01)}, r"^lr: low must be < high"),
        ({"storage": "nosuch://x"}, r"^storage: unknown storage scheme"),
        ({"seed": -1}, "'seed' parameter"),
    ],
)
def test_bad_parameters_are_named_at_fit(digits, params: dict, match: str) -> None:  # type: ignore[no-untyped-def]
    X, y = digits
    search = LRSearchCV(MLPClassifier(max_iter=2), **params)  # __init__ stores, never validates
    assert search.get_params()[next(iter(params))] == next(iter(params.values()))
    with pytest.raises(ValueError, match=match):
        search.fit(X, y)


# ----------------------------------------------------------------------------- real estimators


def test_mlp_pipeline_epoch_curves_default_first_and_refit(digits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    X, y = digits
    est = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=6, random_state=0)
    )
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    search = LRSearchCV(est, n_trials=5, cv=2, seed=0, storage=db).fit(X, y)

    assert search.lr_param_ == "mlpclassifier__learning_rate_init"
    assert search.mode_ == "epochs"
    study = search.study_
    trials = sorted(study.trials, key=lambda t: t.number)
    assert len(trials) == 5
    assert trials[0].params["lr"] == 1e-3  # the estimator's own value is measured first
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.user_attrs["autolr.lr_low"] == pytest.approx(1e-5)  # two decades either side
    assert study.user_attrs["autolr.lr_high"] == pytest.approx(1e-1)
    for t in trials:
        steps = sorted(t.intermediate_values)
        assert steps == list(range(len(steps))) and 1 <= len(steps) <= 6  # one per epoch
        if t.state == TrialState.COMPLETE:
            # the trial's value is the mean over folds of the scores after the last epoch
            assert t.intermediate_values[steps[-1]] == pytest.approx(t.value)
            assert np.mean(t.user_attrs["autolr.sklearn.split_scores"]) == pytest.approx(t.value)

    res = pd.DataFrame(search.cv_results_)
    assert list(res["trial_number"]) == [0, 1, 2, 3, 4]
    assert {"params", "param_mlpclassifier__learning_rate_init", "split0_test_score",
            "split1_test_score", "mean_test_score", "std_test_score", "rank_test_score",
            "mean_fit_time", "state", "stop_reason", "n_steps"} <= set(res.columns)
    done = res[res["state"] == "COMPLETE"]
    assert (done["mean_test_score"] == (done["split0_test_score"] + done["split1_test_score"]) / 2).all()
    assert res.loc[res["mean_test_score"].idxmax(), "rank_test_score"] == 1

    assert search.best_lr_ == search.result_.best_lr
    assert search.best_params_ == {"mlpclassifier__learning_rate_init": search.best_lr_}
    assert search.best_score_ == res.loc[search.best_index_, "mean_test_score"]
    assert search.best_estimator_.get_params()["mlpclassifier__learning_rate_init"] == search.best_lr_
    assert search.n_features_in_ == 64
    assert list(search.classes_) == [0, 1, 2, 3]
    assert search.predict_proba(X[:3]).shape == (3, 4)
    assert search.score(X, y) == pytest.approx(np.mean(search.predict(X) == y))
    assert not hasattr(search, "decision_function")  # MLP has none
    # stored where asked: plain sqlite sees the trials
    con = sqlite3.connect(tmp_path / "studies.db")
    assert con.execute("select count(*) from trials").fetchone()[0] == 5
    con.close()


def test_sgd_partial_fit_gets_all_classes_when_a_fold_lacks_one(digits) -> None:  # type: ignore[no-untyped-def]
    X, y = digits
    # fold 0 trains on classes 0..2 only and validates on everything else: without classes=,
    # partial_fit would learn 3 classes on one fold and 4 on the other
    test_fold = np.where(y == 3, 0, np.arange(len(y)) % 2)
    assert 3 not in y[test_fold != 0]
    search = LRSearchCV(
        SGDClassifier(learning_rate="constant", max_iter=4, random_state=0),
        n_trials=3, cv=PredefinedSplit(test_fold), seed=0, storage=memory(),
    ).fit(X, y)
    assert search.mode_ == "epochs" and search.lr_param_ == "eta0"
    assert search.study_.trials[0].params["lr"] == 0.01
    assert all(len(t.intermediate_values) >= 1 for t in search.study_.trials)
    assert search.decision_function(X[:2]).shape == (2, 4)


def test_hist_gradient_boosting_reports_every_stage(digits) -> None:  # type: ignore[no-untyped-def]
    X, y = digits
    search = LRSearchCV(
        HistGradientBoostingClassifier(max_iter=5, max_leaf_nodes=4, random_state=0),
        n_trials=4, cv=2, seed=0, storage=memory(), scoring="neg_log_loss",
    ).fit(X, y)
    assert search.mode_ == "stages" and search.lr_param_ == "learning_rate"
    t0 = min(search.study_.trials, key=lambda t: t.number)
    assert t0.params["lr"] == 0.1 and t0.state == TrialState.COMPLETE
    assert sorted(t0.intermediate_values) == [0, 1, 2, 3, 4]  # one report per boosting stage
    curve = [t0.intermediate_values[i] for i in range(5)]
    assert all(v < 0 for v in curve)  # neg_log_loss: higher is better, maximized
    assert curve[-1] > curve[0]  # boosting improves the log loss at lr = 0.1
    assert curve[-1] == pytest.approx(t0.value)
    # the reported curve is the real staged log loss, averaged over folds
    scores = []
    for train, test in StratifiedKFold(2).split(X, y):
        m = clone(search.estimator).fit(X[train], y[train])
        scores.append(-log_loss(y[test], next(m.staged_predict_proba(X[test])), labels=[0, 1, 2, 3]))
    assert curve[0] == pytest.approx(np.mean(scores))


def test_regressor_with_scorer_name_is_maximized_consistently() -> None:
    X, y = make_regression(n_samples=200, n_features=5, noise=5.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    y = y / y.std()
    search = LRSearchCV(
        MLPRegressor(hidden_layer_sizes=(8,), max_iter=8, random_state=0),
        n_trials=5, cv=2, seed=1, storage=memory(), scoring="neg_mean_squared_error",
    ).fit(X, y)
    done = [t for t in search.study_.trials if t.state == TrialState.COMPLETE]
    assert all(t.value < 0 for t in done)  # negated MSE, as scikit-learn reports it
    assert search.best_score_ <= 0
    assert search.score(X, y) == pytest.approx(-np.mean((search.predict(X) - y) ** 2))
    # the recommendation comes from the maximized side: not the worst completed trial
    assert search.best_score_ > min(t.value for t in done) or len(done) == 1


def test_a_learning_rate_that_blows_up_is_recorded_not_raised() -> None:
    X, y = make_regression(n_samples=120, n_features=4, random_state=0)
    search = LRSearchCV(  # plain SGD on an MLP with lr >= 10 explodes in the second epoch
        MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", max_iter=5, random_state=0),
        n_trials=3, cv=2, seed=0, lr=(10.0, 1000.0), storage=memory(), refit=False,
    )
    with pytest.warns(UserWarning, match="no trial completed, so best_lr_ falls back"):
        search.fit(X, y)
    trials = search.study_.trials
    assert all(t.state == TrialState.PRUNED for t in trials)
    assert {t.user_attrs["autolr.stop_reason"] for t in trials} <= {"nan", "inf", "diverged"}
    assert all(len(t.intermediate_values) < 5 for t in trials)  # stopped early
    assert search.best_lr_ == 1e-3 and np.isnan(search.best_score_)  # the estimator's own
    assert "unstable" in search.result_.explain()


def test_fitting_again_resumes_the_same_study_and_other_data_starts_another(
    digits, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    X, y = digits
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    est = SGDClassifier(learning_rate="constant", max_iter=3, random_state=0)
    first = LRSearchCV(est, n_trials=3, cv=2, seed=0, storage=db).fit(X, y)
    first_lrs = [t.params["lr"] for t in first.study_.trials]
    again = LRSearchCV(est, n_trials=4, cv=2, seed=0, storage=db).fit(X, y)
    assert again.study_.study_name == first.study_.study_name
    assert len(first_lrs) == 3 and len(again.study_.trials) == 4  # only the missing trial ran
    assert [t.params["lr"] for t in again.study_.trials][:3] == first_lrs
    assert list(again.cv_results_["trial_number"]) == [0, 1, 2, 3]
    other = LRSearchCV(est, n_trials=2, cv=2, seed=0, storage=db).fit(X[:300], y[:300])
    assert other.study_.study_name != first.study_.study_name
    assert len(optuna.get_all_study_names(db)) == 2
    named = LRSearchCV(est, n_trials=2, cv=2, storage=db, study_name="mine").fit(X, y)
    assert named.study_.study_name == "mine"


def test_n_jobs_runs_folds_in_threads_with_the_same_results(digits) -> None:  # type: ignore[no-untyped-def]
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, random_state=0)
    one = LRSearchCV(est, n_trials=3, cv=3, seed=0, storage=memory()).fit(X, y)
    two = LRSearchCV(est, n_trials=3, cv=3, seed=0, storage=memory(), n_jobs=2).fit(X, y)
    np.testing.assert_allclose(
        one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"]
    )


# ----------------------------------------------------------------------------- the contract


def test_clone_params_round_trip_and_not_fitted(digits) -> None:  # type: ignore[no-untyped-def]
    X, y = digits
    search = LRSearchCV(
        MLPClassifier(max_iter=3), n_trials=3, cv=2, lr=(1e-4, 1e-2), seed=3, storage=memory()
    )
    params = search.get_params()
    assert params["estimator__max_iter"] == 3 and params["lr"] == (1e-4, 1e-2)
    copy = clone(search)
    assert copy.get_params()["lr"] == (1e-4, 1e-2) and copy.estimator is not search.estimator
    copy.set_params(n_trials=2, estimator__max_iter=2)
    assert copy.n_trials == 2 and copy.estimator.max_iter == 2 and search.n_trials == 3
    with pytest.raises(NotFittedError):
        search.predict(X)
    assert not hasattr(search, "n_features_in_") and not hasattr(search, "best_lr_")
    copy.fit(X, y)
    assert 1e-4 <= copy.best_lr_ <= 1e-2
    no_refit = clone(copy).set_params(refit=False).fit(X, y)
    assert not hasattr(no_refit, "best_estimator_")
    with pytest.raises(AttributeError, match="no attribute .predict"):
        no_refit.predict(X)


@parametrize_with_checks(
    [
        LRSearchCV(
            SGDClassifier(learning_rate="constant", max_iter=3, random_state=0),
            n_trials=2, cv=2, seed=0, storage=Memory(),
        ),
        LRSearchCV(
            SGDRegressor(max_iter=3, random_state=0),
            n_trials=2, cv=2, seed=0, storage=Memory(),
        ),
    ],
    expected_failed_checks=lambda est: {
        "check_estimators_overwrite_params": (
            "the storage object holds the study: fitting writes to it by design; with a URL "
            "storage the check passes (test_overwrite_params_with_url_storage)"
        ),
    },
)
def test_sklearn_estimator_checks(estimator, check) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_overwrite_params_with_url_storage(tmp_path: Path) -> None:
    est = LRSearchCV(
        SGDClassifier(learning_rate="constant", max_iter=3, random_state=0),
        n_trials=2, cv=2, seed=0, storage=f"sqlite:///{tmp_path / 's.db'}",
    )
    check_estimators_overwrite_params("LRSearchCV", est)


@pytest.mark.parametrize("sampler", ["auto", "tpe"])
def test_study_names_are_readable_and_a_fit_logs_one_line(
    digits, tmp_path: Path, sampler: str, capfd: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    X, y = digits
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    est = SGDClassifier(learning_rate="constant", max_iter=3, random_state=0)
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    capfd.readouterr()
    try:
        _fit_twice(est, X, y, db, sampler, capfd)
    finally:
        optuna.logging.set_verbosity(level)


def _fit_twice(est, X, y, db: str, sampler: str, capfd: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    search = LRSearchCV(est, n_trials=2, cv=2, seed=0, storage=db, sampler=sampler).fit(X, y)
    err = capfd.readouterr().err
    name = search.study_.study_name
    assert name.startswith("SGDClassifier.eta0.") and len(name.rsplit(".", 1)[1]) == 6
    assert err.count("A new study created") == 1 and "Using an existing study" not in err, err
    LRSearchCV(est, n_trials=2, cv=2, seed=0, storage=db, sampler=sampler).fit(X, y)
    err = capfd.readouterr().err
    assert "Using an existing study" not in err and "nothing was trained" in err, err
