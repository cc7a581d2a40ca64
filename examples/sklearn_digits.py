"""Tune the learning rate of a scikit-learn estimator on the digits data set.

``autolr.sklearn.LRSearchCV`` searches the learning rate of an MLP (``learning_rate_init``), an
SGD classifier (``eta0``) or a histogram gradient-boosting classifier (``learning_rate``) by
cross-validation on the training split, then refits with the recommended rate. The script prints
the test accuracy of the estimator with its own (default) learning rate next to the tuned one.

The study is stored (default ``studies/autolr.db``); running the script again resumes it instead
of starting over. Run::

    python examples/sklearn_digits.py                       # MLPClassifier
    python examples/sklearn_digits.py --estimator sgd
    python examples/sklearn_digits.py --estimator hgb --n-trials 12
    python examples/sklearn_digits.py --storage sqlite:///:memory:   # keep nothing
"""

from __future__ import annotations

import argparse
import time
import warnings

import optuna
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from autolr.sklearn import LRSearchCV


def make_estimator(name: str):  # type: ignore[no-untyped-def]
    """The estimator to tune, with scikit-learn's default learning rate."""
    if name == "mlp":
        return make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), max_iter=40, random_state=0)
        )
    if name == "sgd":
        # eta0 is only used by the constant / invscaling / adaptive schedules
        return make_pipeline(
            StandardScaler(),
            SGDClassifier(learning_rate="constant", max_iter=30, random_state=0),
        )
    return HistGradientBoostingClassifier(max_iter=60, random_state=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--estimator", choices=("mlp", "sgd", "hgb"), default="mlp")
    parser.add_argument("--n-trials", type=int, default=16)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", default=None, help="default: sqlite:///studies/autolr.db")
    args = parser.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )

    estimator = make_estimator(args.estimator)
    t0 = time.perf_counter()
    default = clone(estimator).fit(X_train, y_train)
    default_time = time.perf_counter() - t0

    search = LRSearchCV(
        estimator, n_trials=args.n_trials, cv=args.cv, seed=args.seed, storage=args.storage
    )
    t0 = time.perf_counter()
    search.fit(X_train, y_train)
    search_time = time.perf_counter() - t0

    import pandas as pd

    results = pd.DataFrame(search.cv_results_)
    columns = ["trial_number", f"param_{search.lr_param_}", "mean_test_score", "state",
               "stop_reason", "n_steps"]
    print(f"study {search.study_.study_name!r}: {len(results)} trials, mode {search.mode_!r}")
    print(results[columns].to_string(index=False))
    print()
    print(search.result_.explain())
    print()
    default_lr = estimator.get_params()[search.lr_param_]
    print(f"{search.lr_param_:>34}  {'test accuracy':>13}  {'time (s)':>8}")
    print(f"{'default ' + format(default_lr, '.3g'):>34}  {default.score(X_test, y_test):13.4f}"
          f"  {default_time:8.1f}")
    print(f"{'tuned ' + format(search.best_lr_, '.3g'):>34}  {search.score(X_test, y_test):13.4f}"
          f"  {search_time:8.1f} (search + refit)")


if __name__ == "__main__":
    main()
