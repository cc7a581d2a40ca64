"""Tables people read, built from storage only: the trials table (more in the reports issue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from optuna.trial import TrialState

from autolr._context import ATTR_EXCEPTION, ATTR_REASON, ATTR_RETRY_OF, ATTR_STEP
from autolr._space import PARAM

if TYPE_CHECKING:
    import optuna
    import pandas as pd

#: Columns of :func:`trials_table`, in order, with what they mean.
TRIAL_COLUMNS = {
    "number": "Optuna's trial number",
    "state": "COMPLETE, PRUNED (stopped by autolr), FAIL, RUNNING or WAITING",
    "lr": "the learning rate the trial ran",
    "value": "the final objective (empty unless COMPLETE)",
    "best_reported": "the best intermediate value the trial reported",
    "steps": "how many intermediate values the trial reported",
    "stop_reason": "why autolr stopped or failed it (nan, inf, diverged, oscillating, ...)",
    "stop_step": "the step of the report that stopped it",
    "exception": "type and message of the exception the train function raised",
    "retry_of": "the crashed trial whose lr this one re-runs",
    "duration_s": "wall time in seconds",
    "started": "start time",
}


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial of ``study`` with the columns of :data:`TRIAL_COLUMNS`.

    Other parameters the train function suggested follow as ``param_<name>`` columns.
    """
    import pandas as pd

    minimize = study.direction.name == "MINIMIZE"
    rows = []
    extra: set[str] = set()
    for t in study.get_trials(deepcopy=False):
        curve = t.intermediate_values
        finite = [v for v in curve.values() if v == v and abs(v) != float("inf")]
        best = (min(finite) if minimize else max(finite)) if finite else None
        dur = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        row = {
            "number": t.number,
            "state": t.state.name,
            "lr": t.params.get(PARAM),
            "value": t.value if t.state == TrialState.COMPLETE else None,
            "best_reported": best,
            "steps": len(curve),
            "stop_reason": t.user_attrs.get(ATTR_REASON),
            "stop_step": t.user_attrs.get(ATTR_STEP),
            "exception": t.user_attrs.get(ATTR_EXCEPTION),
            "retry_of": t.user_attrs.get(ATTR_RETRY_OF),
            "duration_s": dur,
            "started": t.datetime_start,
        }
        for k, v in t.params.items():
            if k != PARAM:
                row[f"param_{k}"] = v
                extra.add(f"param_{k}")
        rows.append(row)
    columns = list(TRIAL_COLUMNS) + sorted(extra)
    return pd.DataFrame(rows, columns=columns)
