"""autolr in optuna-dashboard: the recommendation as study attributes and a study note.

What optuna-dashboard shows of autolr:

* per trial, the user attributes autolr writes (``autolr.stop_reason``, ``autolr.stop_step``,
  ``autolr.exception``, ...) and the intermediate curves;
* per study, the user attributes ``autolr.recommended_lr``, ``autolr.recommendation``,
  ``autolr.steps_run`` and ``autolr.steps_saved``, and a Markdown note (the dashboard's "Note"
  panel) with the recommendation, why, and the learning-rate comparison table.

:func:`record_recommendation` writes them; every ``run()`` calls it at its end. Serving the
dashboard is :mod:`autolr._dashboard_server`.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import warnings
from collections.abc import Callable, Sequence

import optuna

from autolr import _reports
from autolr._recommend import Recommendation
from autolr._result import Result
from autolr._schema import (
    STUDY_RECOMMENDATION,
    STUDY_RECOMMENDED_LR,
    STUDY_STEPS_RUN,
    STUDY_STEPS_SAVED,
    TrialView,
    views,
)

#: optuna-dashboard's ``save_note(study, text)``.
NoteWriter = Callable[[optuna.Study, str], None]


def note_text(study: optuna.Study, recommendation: Recommendation, *, comparison: str = "") -> str:
    """The Markdown note autolr writes on a study.

    Example:
        >>> from autolr._recommend import Recommendation
        >>> import optuna
        >>> study = optuna.create_study(study_name="demo")
        >>> note_text(study, Recommendation(0.003, 4, 0.21, "because")).splitlines()[0]
        '## autolr recommends lr = 0.003'
    """
    rec = recommendation
    if rec.lr is None:
        head = "## autolr has no learning rate to recommend yet"
    else:
        head = f"## autolr recommends lr = {rec.lr:.4g}"
    lines = [head, ""]
    if rec.lr is not None:
        lines.append(f"Trial #{rec.trial_number}, final value {rec.value:.4g}.")
        lines.append("")
    lines += [rec.reason, ""]
    if comparison:
        lines += ["### Learning-rate comparison", "", comparison, ""]
    lines += [
        "Each trial's user attributes say why autolr stopped it (`autolr.stop_reason`) and at "
        "which step (`autolr.stop_step`). Command line: "
        f"`autolr report {study.study_name}`.",
    ]
    return "\n".join(lines)


@functools.lru_cache(maxsize=1)
def _note_writer() -> NoteWriter | None:
    """optuna-dashboard's ``save_note``, or None when optuna-dashboard is not installed.

    Importing ``optuna_dashboard`` loads its web app and scikit-learn (about 3 s, measured), so
    when it is not imported yet its small, self-contained ``_note`` module is loaded on its own;
    if that ever fails (a future layout), the public import is used.
    """
    mod = sys.modules.get("optuna_dashboard")
    if mod is not None and hasattr(mod, "save_note"):
        writer: NoteWriter = mod.save_note
        return writer
    spec = importlib.util.find_spec("optuna_dashboard")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        note_spec = importlib.util.spec_from_file_location(
            "autolr._vendored_dashboard_note", f"{location}/_note.py"
        )
        if note_spec is None or note_spec.loader is None:
            continue
        try:
            module = importlib.util.module_from_spec(note_spec)
            note_spec.loader.exec_module(module)
            writer = module.save_note
            return writer
        except (OSError, ImportError, AttributeError, SyntaxError):
            break
    from optuna_dashboard import save_note  # optional; slow to import (see above)

    writer = save_note
    return writer


def steps_saved(trials: Sequence[TrialView]) -> tuple[int, int]:
    """(steps reported, steps saved) over ``trials``: what early stopping spared.

    A trial stopped at step ``s`` saved ``L - 1 - s`` steps, ``L`` being the longest curve of a
    trial that ran to the end (COMPLETE); with no complete trial nothing is known to be saved.

    Example:
        >>> from optuna.trial import TrialState, create_trial
        >>> full = create_trial(value=0.1, intermediate_values={i: 1.0 for i in range(10)})
        >>> stopped = create_trial(state=TrialState.PRUNED, intermediate_values={0: 9.0, 1: 99.0},
        ...                        user_attrs={"autolr.stop_step": 1})
        >>> steps_saved(views([full, stopped]))
        (12, 8)
    """
    run = sum(len(t.intermediate) for t in trials)
    full = [max(t.intermediate) + 1 for t in trials if t.state == "COMPLETE" and t.intermediate]
    if not full:
        return run, 0
    length = max(full)
    saved = 0
    for t in trials:
        step = t.stop_step
        if t.state != "COMPLETE" and step is not None and step < length - 1:
            saved += length - 1 - step
    return run, saved


def record_recommendation(
    study: optuna.Study, result: Result | None = None, *, note: bool = True
) -> None:
    """Store autolr's recommendation on ``study`` so optuna-dashboard shows it.

    Writes the study user attributes ``autolr.recommended_lr`` (a float, or None) and
    ``autolr.recommendation`` (the reason), and, when optuna-dashboard is installed and ``note``
    is true, the study note (Markdown, with the learning-rate comparison table). A note that
    cannot be written is a warning, never an error: the study's trials are what matter.

    Args:
        study: the study (``result.study``).
        result: the study's :class:`autolr.Result` when the caller has one (its trials and
            recommendation are reused, not read and computed again); default: read ``study``.
        note: also write the optuna-dashboard note.

    Example:
        >>> import optuna
        >>> study = optuna.create_study()
        >>> record_recommendation(study)
        >>> study.user_attrs["autolr.recommended_lr"] is None
        True
    """
    if result is None:
        result = Result(study)
    rec = result.recommendation
    best_lr = result.best_lr if rec.lr is not None else None  # the lr the optimizer really ran
    study.set_user_attr(STUDY_RECOMMENDED_LR, best_lr)
    study.set_user_attr(STUDY_RECOMMENDATION, rec.reason)
    run, saved = steps_saved(views(study.get_trials(deepcopy=False)))
    study.set_user_attr(STUDY_STEPS_RUN, run)
    study.set_user_attr(STUDY_STEPS_SAVED, saved)
    if not note:
        return
    save_note = _note_writer()
    if save_note is None:
        return
    try:
        table = _reports.build(result).comparison
        comparison = _reports.markdown_table(table) if len(table) else ""
        save_note(study, note_text(study, rec, comparison=comparison))
    except Exception as exc:  # noqa: BLE001 - a note is a courtesy; the trials are stored
        warnings.warn(
            f"autolr: could not write the optuna-dashboard note on study {study.study_name!r}: "
            f"{type(exc).__name__}: {exc}",
            RuntimeWarning,
            stacklevel=2,
        )
