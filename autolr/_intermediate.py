"""Writing a running trial's buffered reports to storage: one INSERT per batch on RDB storage.

Optuna writes one intermediate value per transaction, with two SELECTs each (about 5 ms on
SQLite, ``docs/reports.md``). :class:`autolr._context.TrialContext` buffers reports and hands them
here in batches; on an RDB storage the batch goes in one multi-row INSERT through Optuna's own
table model (there is no public API for it), anything else takes Optuna's public one-by-one path.
"""

from __future__ import annotations

import optuna


def write(trial: optuna.Trial, items: list[tuple[int, float]]) -> None:
    """Store ``items`` (new steps, each written exactly once) as ``trial``'s intermediate values.

    Optuna's per-trial cache (``trial._cached_frozen_trial``, which ``trial.should_prune`` and
    Optuna's pruners read) is kept in step, as ``trial.report`` does.
    """
    storage = trial.storage
    backend = getattr(storage, "_backend", storage)  # Optuna's cache wraps the RDB storage
    if not _insert_rdb(backend, trial._trial_id, items):
        for step, value in items:
            storage.set_trial_intermediate_value(trial._trial_id, step, value)
    frozen = trial._cached_frozen_trial
    for step, value in items:
        frozen.intermediate_values[step] = value


def _insert_rdb(backend: object, trial_id: int, items: list[tuple[int, float]]) -> bool:
    """One multi-row INSERT on an ``RDBStorage``; False for other storages or a refused batch."""
    try:  # imported here: SQLAlchemy costs import time, and only RDB storages need it
        import sqlalchemy
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import RDBStorage, _create_scoped_session
    except ImportError:  # pragma: no cover - Optuna moved its internals
        return False
    if not isinstance(backend, RDBStorage):
        return False
    model = models.TrialIntermediateValueModel
    rows = []
    for step, value in items:
        stored, kind = model.intermediate_value_to_stored_repr(value)
        rows.append(
            {"trial_id": trial_id, "step": step, "intermediate_value": stored,
             "intermediate_value_type": kind}
        )
    try:
        with _create_scoped_session(backend.scoped_session, True) as session:
            trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
            # Optuna's model column reads as a TrialState at run time; its typing says Column
            backend.check_trial_is_updatable(trial_id, trial.state)  # type: ignore[arg-type]
            session.execute(sqlalchemy.insert(model), rows)
    except optuna.exceptions.StorageInternalError:
        # A step already stored, or a lost connection: write row by row through the storage,
        # which updates a stored step and reconnects and retries (autolr._storage).
        return False
    return True
