"""Reading a stored study's trials straight from Optuna's RDB tables, for large studies.

Optuna builds a full ``FrozenTrial`` (params with distribution objects, every attribute, every
intermediate value, through the ORM) for each trial; for 20,000 trials that is most of a
``autolr best``. autolr's readers need a :class:`~autolr._schema.TrialView` per trial, so on an
``RDBStorage`` the tables are read here with a handful of plain SELECTs (the schema is Optuna's
own, ``optuna/storages/_rdb/models.py``). Any other storage, or a schema this reader does not
recognise, answers :data:`UNKNOWN` / None and the caller falls back to Optuna's API.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any, Final

import optuna
from optuna.distributions import json_to_distribution
from optuna.storages import RDBStorage

from autolr._schema import PARAM, TrialView

#: "This storage cannot be read here": use Optuna's API instead.
UNKNOWN: Final = "?"


def _backend(storage: object) -> Any:
    """The ``RDBStorage`` behind ``storage`` (Optuna wraps it in a cache), or None."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, RDBStorage) else None  # optuna.storages: eager, cheap


def lr_kind(storage: object, study_id: int) -> str | None:
    """The distribution class of ``lr`` in the study's first trial that has one (None: none has
    one), or :data:`UNKNOWN` when ``storage`` is not read here."""
    backend = _backend(storage)
    if backend is None:
        return UNKNOWN
    import sqlalchemy as sa

    query = sa.text(
        "SELECT p.distribution_json FROM trial_params p JOIN trials t ON t.trial_id = p.trial_id "
        "WHERE t.study_id = :sid AND p.param_name = :name ORDER BY t.number LIMIT 1"
    )
    try:
        with backend.engine.connect() as con:
            row = con.execute(query, {"sid": study_id, "name": PARAM}).first()
    except sa.exc.SQLAlchemyError:
        return UNKNOWN
    if row is None:
        return None
    return str(json.loads(row[0]).get("name", UNKNOWN))


def trial_views(study: optuna.Study) -> list[TrialView] | None:
    """Every trial of ``study`` as a TrialView, in number order, read with plain SELECTs; None
    when the study's storage is not an ``RDBStorage`` (the caller then asks Optuna)."""
    backend = _backend(study._storage)
    if backend is None:
        return None
    import sqlalchemy as sa  # SQLAlchemy costs import time: RDB storages only
    from optuna.storages._rdb import models

    sid = int(study._study_id)  # an int from Optuna: inlined, so every driver's cursor takes it
    where = f"JOIN trials t ON t.trial_id = x.trial_id WHERE t.study_id = {sid}"
    queries = [
        f"SELECT trial_id, number, state, datetime_start, datetime_complete FROM trials "
        f"WHERE study_id = {sid} ORDER BY number",
        f"SELECT x.trial_id, x.param_name, x.param_value, x.distribution_json "
        f"FROM trial_params x {where}",
        f"SELECT x.trial_id, x.objective, x.value, x.value_type FROM trial_values x {where}",
        f"SELECT x.trial_id, x.key, x.value_json FROM trial_user_attributes x {where}",
        f"SELECT x.trial_id, x.step, x.intermediate_value, x.intermediate_value_type "
        f"FROM trial_intermediate_values x {where}",
        f"SELECT x.trial_id, x.value_json FROM trial_system_attributes x {where} "
        f"AND x.key = 'fixed_params'",  # an enqueued trial's lr, before it is suggested
    ]
    try:
        # the driver's own cursor: plain tuples, no ORM and no Row objects (400,000 reports)
        con = backend.engine.raw_connection()
        try:
            cursor = con.cursor()
            results = []
            for query in queries:
                cursor.execute(query)
                results.append(cursor.fetchall())
            cursor.close()
        finally:
            con.close()
    except sa.exc.SQLAlchemyError:
        return None  # not the schema this reader knows: Optuna's API reads it
    except Exception as exc:  # the driver's own error (sqlite3.Error, psycopg.Error, ...)
        if type(exc).__name__ not in ("OperationalError", "ProgrammingError", "DatabaseError"):
            raise
        return None
    trials, params, values, attrs, steps, fixed_rows = results

    by_params: dict[int, dict[str, object]] = defaultdict(dict)
    dists: dict[str, Any] = {}
    for tid, name, value, dist_json in params:
        if name == PARAM and '"FloatDistribution"' in dist_json:
            by_params[tid][name] = float(value)  # a float's stored form is its value
            continue
        dist = dists.get(dist_json)
        if dist is None:
            dist = dists[dist_json] = json_to_distribution(dist_json)
        by_params[tid][name] = dist.to_external_repr(value)
    by_values: dict[int, dict[int, float]] = defaultdict(dict)
    to_value = models.TrialValueModel.stored_repr_to_value
    for tid, objective, value, kind in values:
        by_values[tid][objective] = to_value(value, _enum(models.TrialValueModel, kind))
    by_attrs: dict[int, dict[str, object]] = defaultdict(dict)
    for tid, key, value_json in attrs:
        by_attrs[tid][key] = json.loads(value_json)
    by_steps: dict[int, dict[int, float]] = defaultdict(dict)
    to_inter = models.TrialIntermediateValueModel.stored_repr_to_intermediate_value
    finite = _enum(models.TrialIntermediateValueModel, "FINITE")
    for tid, step, value, kind in steps:
        by_steps[tid][step] = (
            float(value) if kind == "FINITE" or kind is finite
            else to_inter(value, _enum(models.TrialIntermediateValueModel, kind))
        )
    fixed: dict[int, dict[str, object]] = {}
    for tid, value_json in fixed_rows:
        loaded = json.loads(value_json)
        if isinstance(loaded, dict):
            fixed[tid] = loaded
    out = []
    for tid, number, state, started, completed in trials:
        vals = by_values.get(tid)
        out.append(TrialView.from_parts(
            number=number,
            trial_id=tid,
            state=getattr(state, "name", str(state)),
            params=by_params.get(tid, {}),
            values=[vals[k] for k in sorted(vals)] if vals else None,
            intermediate=by_steps.get(tid, {}),
            attrs=by_attrs.get(tid, {}),
            started=_when(started),
            completed=_when(completed),
            fixed_params=fixed.get(tid) if PARAM not in by_params.get(tid, {}) else None,
        ))
    return out


def _enum(model: Any, kind: object) -> Any:
    """The value-type enum member of ``model`` for a stored ``kind`` (name or member)."""
    enum = model.TrialValueType if hasattr(model, "TrialValueType") else model.TrialIntermediateValueType
    return kind if isinstance(kind, enum) else enum[str(kind)]


def _when(value: object) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))  # SQLite hands back text
