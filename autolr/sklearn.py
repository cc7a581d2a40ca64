"""scikit-learn integration: :class:`LRSearchCV` tunes the learning rate of an estimator.

``LRSearchCV`` is a meta-estimator in scikit-learn's own style (like ``GridSearchCV``): give it an
estimator that has a learning rate (``MLPClassifier``, ``SGDRegressor``, ``HistGradientBoosting*``,
``GradientBoosting*``, a ``Pipeline`` ending in one of them, ...) and it runs an autolr study over
that learning rate, cross-validated, stored and resumable like every autolr study.

How a trial is measured (one trial = one learning rate, all CV folds):

* ``partial_fit`` estimators (MLP, SGD, Perceptron): the folds advance in lockstep, one epoch at a
  time; after each epoch the mean validation score over the folds is reported
  (``step = epoch``), so autolr's stability monitor and "too slow" rule see one score-per-epoch
  curve per trial and can stop it early, saving all folds' remaining epochs. The epoch loop ends at
  the estimator's ``max_iter`` or when the mean validation score has not improved by ``tol`` for
  ``n_iter_no_change`` epochs (the estimator's own values).
* boosting estimators (``staged_predict``): each fold is fitted, then the mean validation score
  after every boosting stage is reported (``step = stage``). Stopping a bad trial there saves no
  fit time, but its instability is recorded and the recommendation avoids it.
* anything else: each fold is fitted and scored; no curve.

Scores follow scikit-learn: higher is better, so the study's direction is ``"maximize"`` and both
the stability monitor and the recommendation read the curves that way round.

This module imports scikit-learn (always with absolute imports: ``autolr.sklearn`` never shadows
``sklearn``).
"""

from __future__ import annotations

import math
import re
import time
import warnings
from copy import deepcopy
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from sklearn.base import BaseEstimator, MetaEstimatorMixin, _fit_context, clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import check_scoring, get_scorer
from sklearn.model_selection import check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags, indexable
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import _safe_split, available_if
from sklearn.utils.validation import check_is_fitted

import autolr
from autolr import _storage
from autolr._schema import ATTR_SKLEARN_FIT_TIME, ATTR_SKLEARN_SPLITS, PARAM, counted, views
from autolr._space import resolve_lr

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["LRSearchCV", "LR_PARAM_NAMES"]

#: Learning-rate parameter names looked for, in this order, on the (final) estimator.
LR_PARAM_NAMES = ("learning_rate_init", "eta0", "learning_rate")
#: Decades searched either side of the estimator's own learning rate when ``lr`` is not given.
DEFAULT_DECADES = 2

_PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


# ----------------------------------------------------------------------------- the lr parameter


def _descend(estimator: Any, param: str) -> tuple[list[tuple[str, Any]], Any, str] | None:
    """Follow ``param`` through Pipelines to the final step that owns it.

    Returns ``(preprocessing steps, final estimator, local name)`` when ``param`` belongs to the
    last step of (nested) Pipelines, so the steps before it do not depend on the learning rate;
    ``None`` otherwise.
    """
    pre: list[tuple[str, Any]] = []
    est, local = estimator, param
    while isinstance(est, Pipeline):
        name, last = est.steps[-1]
        if not local.startswith(name + "__"):
            return None
        pre.extend(est.steps[:-1])
        est, local = last, local[len(name) + 2 :]
    if "__" in local or local not in est.get_params(deep=False):
        return None
    return pre, est, local


def _final_path(estimator: Any) -> tuple[str, Any]:
    """``("clf__", final_estimator)`` for a Pipeline (nested ones too), ``("", estimator)`` else."""
    prefix, est = "", estimator
    while isinstance(est, Pipeline):
        name, est = est.steps[-1]
        prefix += name + "__"
    return prefix, est


def find_lr_param(estimator: Any) -> str:
    """The name of ``estimator``'s learning-rate parameter, as ``set_params`` takes it.

    Looks for ``learning_rate_init``, ``eta0`` and ``learning_rate`` (with a positive number as
    value) on the estimator, or on the last step of a Pipeline.

    Example:
        >>> from sklearn.neural_network import MLPClassifier
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.preprocessing import StandardScaler
        >>> find_lr_param(make_pipeline(StandardScaler(), MLPClassifier()))
        'mlpclassifier__learning_rate_init'
    """
    prefix, final = _final_path(estimator)
    params = final.get_params(deep=False) if hasattr(final, "get_params") else {}
    for name in LR_PARAM_NAMES:
        value = params.get(name)
        if isinstance(value, Real) and not isinstance(value, bool) and float(value) > 0:
            return prefix + name
    raise ValueError(
        f"lr_param: cannot find the learning rate of {type(final).__name__} (looked for "
        f"{', '.join(LR_PARAM_NAMES)} with a positive number as value); pass lr_param='<name>'"
    )


def _check_lr_use(final: Any, local: str, lr_param: str) -> None:
    """Refuse settings in which the estimator ignores the learning rate being searched."""
    params = final.get_params(deep=False)
    name = type(final).__name__
    if local == "eta0" and params.get("learning_rate") == "optimal":
        raise ValueError(
            f"lr_param: {name}(learning_rate='optimal') ignores {lr_param}; give the estimator "
            "learning_rate='constant', 'invscaling' or 'adaptive' to tune eta0"
        )
    if local == "learning_rate_init" and params.get("solver") == "lbfgs":
        raise ValueError(
            f"lr_param: {name}(solver='lbfgs') ignores {lr_param}; use solver='adam' or 'sgd'"
        )


# ----------------------------------------------------------------------------- scoring


class _Staged:
    """A fitted boosting model seen at one stage: its predictions come from ``staged_*``.

    The scorer calls ``predict`` / ``predict_proba`` / ``decision_function`` on it; everything
    else (``classes_``, tags) is the real model's. Only valid on the validation set it was built
    for.
    """

    def __init__(self, model: Any, cache: dict[str, list[np.ndarray]], X: Any, stage: int) -> None:
        self._model = model
        self._cache = cache
        self._X = X
        self._stage = stage

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_model", "_cache", "_X", "_stage"):
            raise AttributeError(name)
        if name in _PREDICT_METHODS:
            staged = getattr(self._model, "staged_" + name, None)
            if staged is None:
                raise AttributeError(f"{type(self._model).__name__} has no staged_{name}")

            def method(X: Any) -> np.ndarray:
                if name not in self._cache:
                    self._cache[name] = [np.asarray(p) for p in staged(self._X)]
                stages = self._cache[name]
                return stages[min(self._stage, len(stages) - 1)]

            method.__name__ = name  # scikit-learn's scorers look the method up by this name
            return method
        return getattr(self._model, name)

    def __sklearn_tags__(self) -> Any:
        return get_tags(self._model)


def _n_stages(model: Any, X: Any) -> int:
    n = getattr(model, "n_iter_", None) or getattr(model, "n_estimators_", None)
    if isinstance(n, Integral) and int(n) > 0:
        return int(n)
    return sum(1 for _ in model.staged_predict(X))


def _nonfinite_model(model: Any) -> bool:
    """True when a fitted model's weights hold NaN or inf (the learning rate blew it up)."""
    for attr in ("coef_", "intercept_", "coefs_", "intercepts_"):
        value = getattr(model, attr, None)
        if value is None:
            continue
        arrays = value if isinstance(value, list) else [value]
        for a in arrays:
            a = np.asarray(a, dtype=float)
            if a.size and not np.all(np.isfinite(a)):
                return True
    return False


_OVERFLOW = re.compile(r"overflow", re.I)


def _diverged(model: Any, exc: BaseException) -> bool:
    """Whether ``exc`` (raised while training or scoring) means the model diverged."""
    return isinstance(exc, (ArithmeticError, ValueError)) and (
        _nonfinite_model(model) or bool(_OVERFLOW.search(str(exc)))
    )


def _score(scorer: Callable[..., float], model: Any, X: Any, y: Any) -> float:
    """``scorer(model, X, y)``; NaN when the model's own numbers are no longer finite."""
    try:
        with np.errstate(all="ignore"):
            return float(scorer(model, X, y))
    except (ValueError, ArithmeticError) as exc:
        target = model._model if isinstance(model, _Staged) else model
        if _diverged(target, exc) or "infinity" in str(exc) or "NaN" in str(exc):
            # the inputs were checked when the model was fitted: non-finite predictions
            return math.nan
        raise


# ----------------------------------------------------------------------------- one fold


class _Fold:
    """One CV split, with the lr-independent preprocessing already applied (once per fit)."""

    def __init__(self, X_train: Any, y_train: Any, X_val: Any, y_val: Any) -> None:
        self.X_train, self.y_train, self.X_val, self.y_val = X_train, y_train, X_val, y_val
        self.model: Any = None
        self.broken = False


# ----------------------------------------------------------------------------- the estimator


def _search_estimator_has(attr: str) -> Callable[[LRSearchCV], bool]:
    """Delegate ``attr`` to the best estimator if fitted, else to the unfitted estimator."""

    def check(self: LRSearchCV) -> bool:
        if not self.refit:
            raise AttributeError(
                f"This LRSearchCV instance was initialized with refit=False; {attr} is "
                "available only after refitting on the best parameters"
            )
        if hasattr(self, "best_estimator_"):
            getattr(self.best_estimator_, attr)
            return True
        getattr(self.estimator, attr)
        return True

    return check


class LRSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Search an estimator's learning rate with an autolr study, cross-validated.

    The learning rate is searched by autolr's search (default: two decades either side of the
    value the estimator was given); the first trials measure that value itself, so the study
    always shows how the tuned rate compares with it. Each trial is scored by cross-validation;
    intermediate scores (per epoch or per boosting stage) let autolr pause every trial after two
    of them and resume only the promising ones, and stop unstable ones early.
    ``best_lr_`` is autolr's stability-aware recommendation, and with ``refit=True`` the
    estimator is fitted on all the data with it.

    The study is stored (default ``sqlite:///studies/autolr.db``, or ``$AUTOLR_STORAGE``) under a
    name derived from the estimator, the data and the folds, so fitting again with the same
    inputs resumes the study instead of starting over.

    Args:
        estimator: the estimator (or Pipeline) whose learning rate is searched; it is cloned.
        n_trials: at most this many trials (default: as many as the search needs; with an
            Optuna sampler, a study-wide total, default 12). Resuming runs only the missing ones.
        cv: folds, as in ``GridSearchCV`` (int, splitter or iterable); default 3.
        scoring: a scorer name (``"neg_log_loss"``), a callable ``scorer(est, X, y)`` or
            ``None`` for accuracy (classifiers) / R² (regressors). Higher is better.
        lr_param: the learning-rate parameter, e.g. ``"mlpclassifier__learning_rate_init"``;
            default: found among ``learning_rate_init``, ``eta0``, ``learning_rate``.
        lr: the search range ``(low, high)``; default two decades either side of the
            estimator's value.
        storage: an Optuna storage URL (``"sqlite:///:memory:"`` keeps nothing).
        study_name: default ``"<Estimator>.<lr_param>.<6 hex of data, folds, params>"``, e.g.
            ``"SGDClassifier.eta0.3f9a1c"`` (``autolr studies`` lists it by that name).
        seed: seeds the sampler, so a fresh study samples the same learning rates.
        n_jobs: folds run in this many threads (``None``: one).
        refit: fit ``best_estimator_`` on all the data with ``best_lr_``.
        timeout: seconds per ``fit`` after which no new trial starts.
        sampler: ``"auto"`` (default: autolr's search), ``"tpe"``, ``"random"`` or an Optuna
            sampler.
        pruner: ``False`` runs every trial to its end; with an Optuna sampler also ``None``
            (autolr's peer rule), an ``autolr.Pruning`` or an Optuna pruner.
        stability: an ``autolr.Stability``; default settings when ``None``.
        show_progress_bar: a progress bar over trials.

    Attributes (after ``fit``):
        best_lr_: the recommended learning rate (autolr's stability-aware pick, see
            ``result_.explain()``); if no trial completed, the estimator's own value, with a
            warning.
        best_params_: ``{lr_param_: best_lr_}``.
        best_score_: mean cross-validated score of the recommended trial (NaN if none).
        best_index_: its row in ``cv_results_`` (None if none).
        best_estimator_: the estimator refitted on all the data with ``best_lr_`` (``refit``).
        cv_results_: dict of arrays, one row per finished trial (``pd.DataFrame(cv_results_)``):
            ``trial_number``, ``param_<lr_param>``, ``params``, ``split<k>_test_score``,
            ``mean_test_score``, ``std_test_score``, ``rank_test_score``, ``mean_fit_time``,
            ``state``, ``stop_reason``, ``n_steps``, ``last_reported_score``. Trials autolr
            stopped (PRUNED) or that failed have NaN test scores, like ``error_score=nan``.
        study_: the ``optuna.Study``; result_: the ``autolr.Result``.
        lr_param_, lr_range_, mode_ (``"epochs"``, ``"stages"`` or ``"plain"``), scorer_,
        n_splits_, refit_time_, n_features_in_, classes_.

    Example:
        >>> from sklearn.datasets import load_digits
        >>> from sklearn.linear_model import SGDClassifier
        >>> from autolr.sklearn import LRSearchCV
        >>> X, y = load_digits(return_X_y=True)
        >>> search = LRSearchCV(
        ...     SGDClassifier(learning_rate="constant", max_iter=5, random_state=0),
        ...     n_trials=4, cv=2, seed=0, storage="sqlite:///:memory:",
        ... )
        >>> search.fit(X / 16, y).best_params_  # doctest: +ELLIPSIS
        {'eta0': ...}
        >>> search.score(X / 16, y) > 0.8
        True
    """

    _parameter_constraints: dict[str, list[object] | str] = {
        "estimator": [HasMethods(["fit"])],
        "n_trials": [Interval(Integral, 1, None, closed="left")],
        "cv": ["cv_object"],
        "scoring": [str, callable, None],
        "lr_param": [str, None],
        "lr": [tuple, list, None],
        "storage": [str, optuna.storages.BaseStorage, None],
        "study_name": [str, None],
        "seed": [Interval(Integral, 0, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "refit": ["boolean"],
        "timeout": [Interval(Real, 0, None, closed="neither"), None],
        "sampler": [StrOptions({"auto", "tpe", "random"}), optuna.samplers.BaseSampler, None],
        "pruner": "no_validation",
        "stability": "no_validation",
        "show_progress_bar": ["boolean"],
    }

    def __init__(
        self,
        estimator: Any,
        *,
        n_trials: int = 20,
        cv: Any = 3,
        scoring: str | Callable[..., float] | None = None,
        lr_param: str | None = None,
        lr: tuple[float, float] | None = None,
        storage: str | optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        seed: int | None = None,
        n_jobs: int | None = None,
        refit: bool = True,
        timeout: float | None = None,
        sampler: str | optuna.samplers.BaseSampler | None = None,
        pruner: Any = None,
        stability: autolr.Stability | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        self.estimator = estimator
        self.n_trials = n_trials
        self.cv = cv
        self.scoring = scoring
        self.lr_param = lr_param
        self.lr = lr
        self.storage = storage
        self.study_name = study_name
        self.seed = seed
        self.n_jobs = n_jobs
        self.refit = refit
        self.timeout = timeout
        self.sampler = sampler
        self.pruner = pruner
        self.stability = stability
        self.show_progress_bar = show_progress_bar

    # -- tags and delegation ------------------------------------------------------------------
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        sub = get_tags(self.estimator)
        tags.estimator_type = sub.estimator_type
        tags.classifier_tags = deepcopy(sub.classifier_tags)
        tags.regressor_tags = deepcopy(sub.regressor_tags)
        tags.input_tags.pairwise = sub.input_tags.pairwise
        tags.input_tags.sparse = sub.input_tags.sparse
        return tags

    @available_if(_search_estimator_has("predict"))
    def predict(self, X: Any) -> np.ndarray:
        """Predict with ``best_estimator_``."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    @available_if(_search_estimator_has("predict_proba"))
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities from ``best_estimator_``."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)

    @available_if(_search_estimator_has("predict_log_proba"))
    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log class probabilities from ``best_estimator_``."""
        check_is_fitted(self)
        return self.best_estimator_.predict_log_proba(X)

    @available_if(_search_estimator_has("decision_function"))
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision function of ``best_estimator_``."""
        check_is_fitted(self)
        return self.best_estimator_.decision_function(X)

    @available_if(_search_estimator_has("transform"))
    def transform(self, X: Any) -> Any:
        """Transform with ``best_estimator_``."""
        check_is_fitted(self)
        return self.best_estimator_.transform(X)

    @available_if(_search_estimator_has("inverse_transform"))
    def inverse_transform(self, X: Any) -> Any:
        """Inverse transform with ``best_estimator_``."""
        check_is_fitted(self)
        return self.best_estimator_.inverse_transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """The ``scoring`` of ``best_estimator_`` on ``(X, y)`` (needs ``refit=True``)."""
        _search_estimator_has("predict")(self)
        check_is_fitted(self)
        return float(self.scorer_(self.best_estimator_, X, y))

    @property
    def classes_(self) -> np.ndarray:
        """Class labels of ``best_estimator_``."""
        _search_estimator_has("classes_")(self)
        return self.best_estimator_.classes_

    @property
    def n_features_in_(self) -> int:
        """Number of features seen during ``fit`` (needs ``refit=True``)."""
        try:
            check_is_fitted(self)
        except NotFittedError as exc:
            raise AttributeError(f"{type(self).__name__} object has no n_features_in_ attribute.") from exc
        return self.best_estimator_.n_features_in_

    # -- fit ----------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X: Any, y: Any = None) -> LRSearchCV:
        """Run (or resume) the study, then refit on all the data with the recommended lr.

        Args:
            X: training data.
            y: targets.

        Returns:
            self.
        """
        if y is None:
            raise ValueError("y: LRSearchCV needs targets (classification or regression)")
        X, y = indexable(X, y)
        estimator = self.estimator
        lr_param = self.lr_param if self.lr_param is not None else find_lr_param(estimator)
        all_params = estimator.get_params(deep=True)
        if lr_param not in all_params:
            raise ValueError(
                f"lr_param: {type(estimator).__name__} has no parameter {lr_param!r} "
                f"(looked for {', '.join(LR_PARAM_NAMES)} on the final step)"
            )
        center = all_params[lr_param]
        path = _descend(estimator, lr_param)
        if path is not None:
            _check_lr_use(path[1], path[2], lr_param)
        if self.lr is None:
            if isinstance(center, bool) or not isinstance(center, Real) or not float(center) > 0:
                raise ValueError(
                    f"lr: {lr_param}={center!r} is not a positive number to search around; give "
                    "lr=(low, high)"
                )
            span = 10.0**DEFAULT_DECADES
            lr_range = resolve_lr((float(center) / span, float(center) * span))
        else:
            lr_range = resolve_lr(self.lr)
        if self.study_name is not None and not self.study_name.strip():
            raise ValueError(f"study_name: expected a non-empty string, got {self.study_name!r}")

        scorer = self._make_scorer(estimator)
        cv = check_cv(self.cv, y, classifier=is_classifier(estimator))
        splits = list(cv.split(X, y))
        mode, folds = self._prepare(estimator, path, X, y, splits)

        store = _storage.open_storage(self.storage)
        name = self.study_name or self._default_study_name(
            estimator, lr_param, lr_range, X, y, splits, scorer
        )
        searching = self.sampler in (None, "auto")
        if not searching:
            self._enqueue_default(store, name, center, lr_range)
        default = float(center) if isinstance(center, Real) and not isinstance(center, bool) else None
        objective = self._objective(
            mode, folds, estimator, lr_param, path, scorer, X, y, splits,
            default_lr=default if default is not None and lr_range.contains(default) else None,
        )
        tuned = autolr.tune(
            n_trials=self.n_trials,
            study_name=name,
            storage=store,
            lr=(lr_range.low, lr_range.high),
            direction="maximize",
            seed=self.seed,
            sampler=self.sampler,
            pruner=self.pruner,
            stability=self.stability,
            show_progress_bar=self.show_progress_bar,
        )(objective)
        result = tuned.run(timeout=self.timeout)

        self.lr_param_ = lr_param
        self.lr_range_ = (lr_range.low, lr_range.high)
        self.mode_ = mode
        self.scorer_ = scorer
        self.n_splits_ = len(splits)
        self.result_ = result
        self.study_ = result.study
        self.cv_results_ = self._cv_results(result.study, lr_param, len(splits))
        rec = result.recommendation
        numbers = list(self.cv_results_["trial_number"])
        if rec.lr is not None and rec.trial_number in numbers:
            self.best_lr_ = float(rec.lr)
            self.best_index_: int | None = numbers.index(rec.trial_number)
            self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        elif isinstance(center, Real) and not isinstance(center, bool) and float(center) > 0:
            warnings.warn(
                f"LRSearchCV: no trial completed, so best_lr_ falls back to the estimator's own "
                f"{lr_param}={center!r}. autolr says: {rec.reason}",
                UserWarning,
                stacklevel=3,  # the caller of fit, past _fit_context
            )
            self.best_lr_ = float(center)
            self.best_index_ = None
            self.best_score_ = math.nan
        else:
            raise ValueError(f"LRSearchCV: no trial completed, nothing to recommend: {rec.reason}")
        self.best_params_ = {lr_param: self.best_lr_}
        if self.refit:
            model = clone(estimator).set_params(**{lr_param: self.best_lr_})
            t0 = time.perf_counter()
            with np.errstate(all="ignore"):
                model.fit(X, y)
            self.refit_time_ = time.perf_counter() - t0
            self.best_estimator_ = model
        return self

    # -- pieces of fit ------------------------------------------------------------------------
    def _make_scorer(self, estimator: Any) -> Callable[..., float]:
        if self.scoring is None:
            # estimator.score would bypass the staged predictions: use what it computes
            if is_classifier(estimator):
                return get_scorer("accuracy")
            if get_tags(estimator).estimator_type == "regressor":
                return get_scorer("r2")
        return check_scoring(estimator, scoring=self.scoring)

    def _prepare(
        self, estimator: Any, path: Any, X: Any, y: Any, splits: Sequence[tuple[np.ndarray, np.ndarray]]
    ) -> tuple[str, list[_Fold]]:
        """Pick how trials are measured and apply the lr-independent preprocessing once."""
        if path is None:
            return "plain", []
        pre, final, _ = path
        if hasattr(final, "partial_fit") and "max_iter" in final.get_params(deep=False):
            mode = "epochs"
        elif hasattr(final, "staged_predict"):
            mode = "stages"
        else:
            return "plain", []
        folds = []
        for train, test in splits:
            X_tr, y_tr = _safe_split(final, X, y, train)
            X_va, y_va = _safe_split(final, X, y, test, train)
            if pre:
                transformer = clone(Pipeline(pre))
                X_tr = transformer.fit_transform(X_tr, y_tr)
                X_va = transformer.transform(X_va)
            folds.append(_Fold(X_tr, y_tr, X_va, y_va))
        return mode, folds

    def _default_study_name(
        self, estimator: Any, lr_param: str, lr_range: Any, X: Any, y: Any, splits: Any, scorer: Any
    ) -> str:
        import joblib

        try:
            params = {k: v for k, v in estimator.get_params(deep=True).items() if k != lr_param}
            key: Any = (
                type(estimator).__qualname__,
                repr(sorted((k, repr(v)) for k, v in params.items())),
                lr_param,
                (lr_range.low, lr_range.high),
                [(tr, te) for tr, te in splits],
                repr(scorer),
                X,
                y,
            )
            digest = joblib.hash(key)
        except Exception:  # noqa: BLE001 - an unhashable input: no resume across fits
            digest = joblib.hash((time.time_ns(), id(self)))
        _, final = _final_path(estimator)
        return f"{type(final).__name__}.{lr_param}.{digest[:6]}"

    @staticmethod
    def _enqueue_default(store: Any, name: str, center: Any, lr_range: Any) -> None:
        """A fresh study measures the estimator's own learning rate first."""
        if not isinstance(center, Real) or isinstance(center, bool) or not lr_range.contains(center):
            return
        try:
            store.get_study_id_from_name(name)
        except KeyError:
            try:
                store.create_new_study([optuna.study.StudyDirection.MAXIMIZE], name)
            except optuna.exceptions.DuplicatedStudyError:
                pass  # another worker created it a moment ago
        study = optuna.load_study(study_name=name, storage=store)
        if not study.get_trials(deepcopy=False):
            study.enqueue_trial({PARAM: float(center)}, skip_if_exists=True)

    def _objective(
        self,
        mode: str,
        folds: list[_Fold],
        estimator: Any,
        lr_param: str,
        path: Any,
        scorer: Callable[..., float],
        X: Any,
        y: Any,
        splits: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        default_lr: float | None = None,
    ) -> Callable[..., float]:
        """The train function of the study; its ``lr`` default is the estimator's own value,
        which autolr's search measures first."""
        run = self._parallel_map()
        classes = None
        if mode == "epochs" and is_classifier(path[1]):
            from sklearn.utils.multiclass import unique_labels

            classes = unique_labels(y)  # raises "Unknown label type" for a continuous target

        def train(lr: float = default_lr or 1e-3, trial: optuna.Trial | None = None) -> float:
            assert trial is not None  # autolr passes it
            t0 = time.perf_counter()
            try:
                if mode == "epochs":
                    scores = _run_epochs(folds, path[1], path[2], lr, scorer, run, classes)
                elif mode == "stages":
                    scores = _run_stages(folds, path[1], path[2], lr, scorer, run)
                else:
                    scores = _run_plain(estimator, lr_param, lr, scorer, X, y, splits, run)
            finally:
                trial.set_user_attr(ATTR_SKLEARN_FIT_TIME, time.perf_counter() - t0)
            trial.set_user_attr(ATTR_SKLEARN_SPLITS, [float(s) for s in scores])
            return float(np.mean(scores))

        train.__name__ = "lr_search_cv"
        return train

    def _parallel_map(self) -> Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]:
        n_jobs = self.n_jobs
        if n_jobs is None or n_jobs == 1:
            return lambda f, items: [f(i) for i in items]
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=n_jobs, prefer="threads")
        return lambda f, items: list(parallel(delayed(f)(i) for i in items))

    @staticmethod
    def _cv_results(study: optuna.Study, lr_param: str, n_splits: int) -> dict[str, Any]:
        """One row per trial that counts (:func:`autolr._schema.counted`), by trial number."""
        trials = sorted(
            (t for t in views(study.get_trials(deepcopy=False)) if t.lr is not None and counted(t)),
            key=lambda t: t.number,
        )
        n = len(trials)
        splits = np.full((n, n_splits), np.nan)
        for i, t in enumerate(trials):
            s = t.split_scores
            if t.state == "COMPLETE" and s is not None and len(s) == n_splits:
                splits[i] = s
        with np.errstate(all="ignore"):
            mean = np.array([t.value if t.value is not None else np.nan for t in trials], dtype=float)
            std = np.array([np.std(r) if np.all(np.isfinite(r)) else np.nan for r in splits])
        lrs = np.array([t.lr for t in trials], dtype=float)
        fit_times = [t.fit_time if t.fit_time is not None else np.nan for t in trials]
        out: dict[str, Any] = {
            "trial_number": np.array([t.number for t in trials], dtype=int),
            "mean_fit_time": np.array(fit_times, dtype=float) / n_splits,
            f"param_{lr_param}": lrs,
            "params": [{lr_param: float(v)} for v in lrs],
        }
        for k in range(n_splits):
            out[f"split{k}_test_score"] = splits[:, k]
        out["mean_test_score"] = mean
        out["std_test_score"] = std
        out["rank_test_score"] = _rank(mean)
        out["state"] = np.array([t.state for t in trials], dtype=object)
        out["stop_reason"] = np.array([t.stop_reason for t in trials], dtype=object)
        out["n_steps"] = np.array([len(t.intermediate) for t in trials], dtype=int)
        out["last_reported_score"] = np.array(
            [t.intermediate[max(t.intermediate)] if t.intermediate else np.nan for t in trials],
            dtype=float,
        )
        return out


def _rank(scores: np.ndarray) -> np.ndarray:
    """1 = best; NaN (trials that did not complete) rank last, like ``GridSearchCV``."""
    from scipy.stats import rankdata

    if scores.size == 0:
        return np.array([], dtype=np.int32)
    if np.isnan(scores).all():
        return np.ones(scores.size, dtype=np.int32)
    filled = np.where(np.isnan(scores), np.nanmin(scores) - 1, scores)
    return np.asarray(rankdata(-filled, method="min"), dtype=np.int32)


# ----------------------------------------------------------------------------- the three modes


def _fresh(final: Any, local: str, lr: float) -> Any:
    model = clone(final).set_params(**{local: lr})
    if "early_stopping" in model.get_params(deep=False) and local != "learning_rate":
        # partial_fit refuses early_stopping (MLP) or ignores it (SGD); the epoch loop does it
        model.set_params(early_stopping=False)
    return model


def _patience(final: Any) -> tuple[float | None, int]:
    params = final.get_params(deep=False)
    tol = params.get("tol", 1e-4)
    n = params.get("n_iter_no_change", 10)
    tol = float(tol) if isinstance(tol, Real) and not isinstance(tol, bool) else None
    n = int(n) if isinstance(n, Integral) and not isinstance(n, bool) and int(n) >= 1 else 10
    return tol, n


def _run_epochs(
    folds: list[_Fold],
    final: Any,
    local: str,
    lr: float,
    scorer: Callable[..., float],
    run: Any,
    classes: np.ndarray | None,
) -> list[float]:
    """Folds advance in lockstep, one ``partial_fit`` epoch at a time; report the mean score.

    ``classes`` (all labels of ``y``) goes to the first ``partial_fit`` of a classifier, so a
    fold whose training part lacks a class still knows it.
    """
    max_epochs = int(final.get_params(deep=False)["max_iter"])
    tol, patience = _patience(final)
    for f in folds:
        f.model, f.broken = _fresh(final, local, lr), False

    def epoch(f: _Fold) -> float:
        if f.broken:
            return math.nan
        try:
            with np.errstate(all="ignore"):
                if classes is not None:
                    f.model.partial_fit(f.X_train, f.y_train, classes=classes)
                else:
                    f.model.partial_fit(f.X_train, f.y_train)
        except (ValueError, ArithmeticError) as exc:
            if not _diverged(f.model, exc):
                raise
            f.broken = True
            return math.nan
        s = _score(scorer, f.model, f.X_val, f.y_val)
        if not math.isfinite(s):
            f.broken = True
        return s

    best, stale = -math.inf, 0
    scores: list[float] = []
    for e in range(max_epochs):
        scores = run(epoch, folds)
        mean = float(np.mean(scores))
        autolr.report(mean, step=e)
        if not math.isfinite(mean):
            break
        if tol is not None:
            if mean > best + tol:
                stale = 0
            else:
                stale += 1
            best = max(best, mean)
            if stale >= patience:
                break
    return scores


def _run_stages(
    folds: list[_Fold], final: Any, local: str, lr: float, scorer: Callable[..., float], run: Any
) -> list[float]:
    """Fit every fold, then report the mean validation score after each boosting stage."""

    def fit(f: _Fold) -> list[float]:
        model = clone(final).set_params(**{local: lr})
        with np.errstate(all="ignore"):
            model.fit(f.X_train, f.y_train)
        cache: dict[str, list[np.ndarray]] = {}
        n = _n_stages(model, f.X_val)
        return [_score(scorer, _Staged(model, cache, f.X_val, i), f.X_val, f.y_val) for i in range(n)]

    curves = run(fit, folds)
    n = max(len(c) for c in curves)
    table = np.array([c + [c[-1]] * (n - len(c)) for c in curves], dtype=float)
    with np.errstate(all="ignore"):
        means = table.mean(axis=0)
    for i, m in enumerate(means):
        autolr.report(float(m), step=i)
        if not math.isfinite(m):
            break
    return [float(c[-1]) for c in curves]


def _run_plain(
    estimator: Any,
    lr_param: str,
    lr: float,
    scorer: Callable[..., float],
    X: Any,
    y: Any,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    run: Any,
) -> list[float]:
    """No curve to report: fit and score each fold."""

    def fit(split: tuple[np.ndarray, np.ndarray]) -> float:
        train, test = split
        model = clone(estimator).set_params(**{lr_param: lr})
        X_tr, y_tr = _safe_split(model, X, y, train)
        X_va, y_va = _safe_split(model, X, y, test, train)
        with np.errstate(all="ignore"):
            model.fit(X_tr, y_tr)
        return _score(scorer, model, X_va, y_va)

    return list(run(fit, splits))
