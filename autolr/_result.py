"""The outcome of a study: :class:`Result` and :func:`load`, read from storage only.

A Result reads the study's trials once (as :class:`~autolr._schema.TrialView`), recommends from
them (:mod:`autolr._recommend`) and hands itself to the reports and plots, which read it through
its public members; nothing here knows how the trials were run.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial

from autolr import _fastread, _plots, _reports, _storage
from autolr._recommend import Recommendation, recommend, recommend_search, summaries
from autolr._schema import STUDY_SEARCH, STUDY_SEARCH_SPEC, TrialView, foreign_reason, lr_kind, views
from autolr._search import SEARCH_NAME, spec_from_json

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


class StudyNotFoundError(LookupError):
    """``autolr.load`` (or the command line) was given a study name the storage does not hold."""


class Result:
    """What a study found, read from storage.

    ``best_lr`` is autolr's stability-aware recommendation, not the argmin of one noisy trial;
    ``best_trial`` keeps the raw argmin. ``explain()`` says why.

    Example:
        >>> import autolr
        >>> @autolr.tune(n_trials=4, seed=0, storage="sqlite:///:memory:", show_progress_bar=False)
        ... def train(lr: float) -> float:
        ...     return abs(lr - 0.01)
        >>> result = train.run()
        >>> result.best_lr > 0
        True
    """

    def __init__(self, study: optuna.Study) -> None:
        self.study = study

    def check_readable(self) -> None:
        """Raise :class:`~autolr._storage.ForeignStudyError` (one line) for a study autolr cannot
        read: several objectives, or an ``lr`` that is not a float."""
        study = self.study
        kind = _fastread.lr_kind(study._storage, study._study_id)
        if kind is _fastread.UNKNOWN:
            kind = lr_kind(self._trials)
        reason = foreign_reason(study.study_name, len(study.directions), kind)
        if reason is not None:
            raise _storage.ForeignStudyError(f"study_name: {reason}")

    def __repr__(self) -> str:
        rec = self.recommendation
        lr = "none" if rec.lr is None else f"{rec.lr:.3g}"
        return f"<autolr.Result study={self.study.study_name!r} trials={len(self._views)} best_lr={lr}>"

    @functools.cached_property
    def _trials(self) -> list[FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    @functools.cached_property
    def _views(self) -> list[TrialView]:
        # On RDB storage, plain SELECTs: a 20,000-trial study in a second, not Optuna's ORM
        fast = _fastread.trial_views(self.study)
        return views(self._trials) if fast is None else fast

    @functools.cached_property
    def recommendation(self) -> Recommendation:
        """The full :class:`~autolr._recommend.Recommendation` (lr, trial, value, reason)."""
        attrs = self.study.user_attrs
        if attrs.get(STUDY_SEARCH) == SEARCH_NAME:
            spec = spec_from_json(attrs.get(STUDY_SEARCH_SPEC))
            return recommend_search(self._views, direction=self.direction, spec=spec)
        return recommend(summaries(self._views), direction=self.direction)

    @property
    def direction(self) -> str:
        return self.study.direction.name.lower()

    @property
    def recommended_trial(self) -> FrozenTrial | None:
        """The trial behind :attr:`best_lr` (None when no trial completed)."""
        number = self.recommendation.trial_number
        return next((t for t in self._trials if t.number == number), None)

    @property
    def best_lr(self) -> float:
        """The recommended learning rate. Raises ValueError when no trial finished.

        When the trial ran an optimizer built by :func:`autolr.torch.optimizer`, this is the
        learning rate that optimizer really used (``autolr.effective_lr``), not the study's
        normalized ``lr`` parameter.
        """
        lr = self.recommendation.lr
        if lr is None:
            raise ValueError(
                f"study {self.study.study_name!r} has no finished trial to recommend from: "
                f"{self.recommendation.reason}"
            )
        number = self.recommendation.trial_number
        trial = next((t for t in self._views if t.number == number), None)
        if trial is not None and trial.effective_lr is not None:
            return trial.effective_lr  # the lr autolr.torch.optimizer really ran at
        return lr

    @property
    def best_value(self) -> float:
        """The objective of the trial behind :attr:`best_lr`."""
        value = self.recommendation.value
        if value is None:
            raise ValueError(f"study {self.study.study_name!r} has no completed trial")
        return value

    @property
    def best_trial(self) -> FrozenTrial | None:
        """The raw argmin (or argmax) over completed trials, as Optuna would pick it."""
        done = [(t.value, t) for t in self._trials if t.state.name == "COMPLETE" and t.value is not None]
        if not done:
            return None
        pick = min if self.direction == "minimize" else max
        return pick(done, key=lambda pair: pair[0])[1]

    def explain(self) -> str:
        """A paragraph that says why :attr:`best_lr` was chosen."""
        return self.recommendation.reason

    @functools.cached_property
    def _table(self) -> pd.DataFrame:
        return _reports.trials_table(self.study, trials=self._views)

    def trials(self) -> pd.DataFrame:
        """One row per trial (a copy); ``autolr.TRIAL_COLUMNS`` says what each column means."""
        return self._table.copy()

    def comparison(self, *, bins: int | Sequence[float] | None = None) -> pd.DataFrame:
        """The learning-rate comparison measured from this study's trials.

        One row per lr range (decades centred on 1e-1, 1e-2, ... by default; ``bins=n`` for
        ``n`` log-equal ranges, or a list of edges): trials, convergence speed, share of
        unstable trials, curve spread, best and median final value and a short verdict
        ("fast, unstable", "best range: moderate, stable", ...). See ``autolr.COMPARISON_COLUMNS``.

        Example:
            >>> result.comparison()[["lr_range", "trials", "verdict"]]  # doctest: +SKIP
        """
        return _reports.comparison_table(
            self.study, bins=bins, table=self._table, recommended_lr=self.recommendation.lr
        )

    def report(self, format: str = "table", *, bins: int | Sequence[float] | None = None) -> str:
        """The whole report as text: ``"table"``, ``"md"``, ``"csv"``, ``"json"`` or ``"html"``.

        ``html`` is one self-contained page (tables and plots embedded, opens offline).
        """
        return _reports.render(self, format, bins=bins)

    def export(
        self,
        path: str | Path,
        *,
        format: str | None = None,
        bins: int | Sequence[float] | None = None,
    ) -> Path:
        """Write the report to ``path`` (replaced if it exists); format from ``format`` or suffix.

        Formats: ``.csv`` (trials), ``.md``, ``.json``, ``.html`` (self-contained, with plots),
        ``.txt`` and ``.parquet`` (trials; needs pyarrow).

        Example:
            >>> result.export("report.html")  # doctest: +SKIP
        """
        return _reports.export(self, path, format=format, bins=bins)

    def plot(self, kind: str = "lr", *, ax: Axes | None = None, path: str | Path | None = None) -> Figure:
        """Draw ``"lr"`` (final value vs lr), ``"curves"`` (all curves) or ``"history"``.

        Needs matplotlib (``pip install 'autolr[plot]'``). Returns the figure; ``path`` also
        saves it (``.png`` or ``.svg``); ``ax`` draws into your own axes.

        Example:
            >>> result.plot("lr", path="lr.png")  # doctest: +SKIP
        """
        fig = _plots.figure(self, kind, ax=ax)
        if path is not None:
            _plots.save(fig, path)
        return fig

    def refresh(self) -> Result:
        """A new Result reading the study again (after other workers added trials)."""
        return Result(self.study)


def load(study_name: str, *, storage: str | optuna.storages.BaseStorage | None = None) -> Result:
    """Read a stored study back without training.

    Args:
        study_name: the study's name (the train function's name by default).
        storage: as in :func:`autolr.tune`; default ``$AUTOLR_STORAGE`` or
            ``sqlite:///studies/autolr.db``.

    Example:
        >>> import autolr
        >>> autolr.load("train", storage="sqlite:///missing.db")  # doctest: +SKIP
    """
    if not isinstance(study_name, str) or not study_name:
        raise ValueError(f"study_name: expected a non-empty string, got {_storage.shown(study_name)}")
    store = _storage.open_storage(storage, create=False)
    try:
        try:
            names = [s.study_name for s in store.get_all_studies()]
        except Exception as exc:  # an empty SQLite file has no tables yet
            if "no such table" in str(exc):
                names = []
            else:
                raise
        if study_name not in names:
            where = _storage.describe(storage)
            known = ", ".join(_storage.shown(n) for n in sorted(names)[:20]) or "none"
            more = f" and {len(names) - 20} more" if len(names) > 20 else ""
            raise StudyNotFoundError(
                f"study_name: no study {_storage.shown(study_name)} in {where}; studies there: "
                f"{known}{more}"
            )
        result = Result(optuna.load_study(study_name=study_name, storage=store))
        result.check_readable()  # reads every trial now: a damaged file fails here, in one line
    except Exception as exc:
        if _storage.is_write_error(exc):  # Optuna's and SQLAlchemy's errors: unreadable storage
            raise _storage.read_error(exc, storage) from None
        raise
    return result
