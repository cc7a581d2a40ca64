"""A stored study's life after its run: renamed, archived to start over, deleted on request.

Optuna has no rename. On an RDB storage (SQLite, PostgreSQL, MySQL) a study is renamed by one
SQL update of its name, atomic, the trials untouched; on other storages (a journal file, Redis)
it is copied under the new name, the copy checked trial by trial, and only then the original
deleted. Nothing is deleted here except by :func:`delete_study`, which the CLI calls after
asking.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import optuna
from optuna.storages import BaseStorage, RDBStorage


class LifecycleError(ValueError):
    """A rename or delete that cannot be done (unknown name, name taken): one line."""


def _rdb(storage: BaseStorage) -> RDBStorage | None:
    """The RDBStorage under ``storage`` (Optuna wraps it in a private cache), else None."""
    if isinstance(storage, RDBStorage):
        return storage
    backend = getattr(storage, "_backend", None)  # optuna.storages._CachedStorage
    return backend if isinstance(backend, RDBStorage) else None


def exists(storage: BaseStorage, name: str) -> bool:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def archive_name(name: str, now: datetime | None = None) -> str:
    """``NAME.old-20261129-214005``: where ``fresh=True`` keeps the old trials.

    Example:
        >>> archive_name("train", datetime(2026, 11, 29, 21, 40, 5, tzinfo=timezone.utc))
        'train.old-20261129-214005'
    """
    now = now or datetime.now(timezone.utc)
    return f"{name}.old-{now.strftime('%Y%m%d-%H%M%S')}"


def free_archive_name(storage: BaseStorage, name: str) -> str:
    """An :func:`archive_name` not used yet in ``storage`` (a suffix is added if needed)."""
    base = archive_name(name)
    candidate, i = base, 1
    while exists(storage, candidate):
        i += 1
        candidate = f"{base}-{i}"
    return candidate


def rename_study(storage: BaseStorage, old: str, new: str) -> None:
    """Rename study ``old`` to ``new``; refuses an unknown ``old`` or an existing ``new``."""
    if not exists(storage, old):
        raise LifecycleError(f"no study {old!r}")
    if exists(storage, new):
        raise LifecycleError(f"a study {new!r} exists already; delete it first or pick another name")
    rdb = _rdb(storage)
    if rdb is not None:
        from sqlalchemy import text

        with rdb.engine.begin() as conn:
            changed = conn.execute(
                text("UPDATE studies SET study_name = :new WHERE study_name = :old"),
                {"new": new, "old": old},
            ).rowcount
        if changed != 1:
            raise LifecycleError(f"no study {old!r}")
        _forget_cached_name(storage, old)
        return
    optuna.copy_study(from_study_name=old, from_storage=storage, to_storage=storage,
                      to_study_name=new)
    _check_copy(storage, old, new)
    storage.delete_study(storage.get_study_id_from_name(old))


def _forget_cached_name(storage: BaseStorage, old: str) -> None:
    """Optuna's cache keeps a study's name by id: drop the stale one after a SQL rename."""
    studies = getattr(storage, "_studies", None)
    if isinstance(studies, dict):
        for info in studies.values():
            if getattr(info, "name", None) == old:
                info.name = None


def _trial_key(t: optuna.trial.FrozenTrial) -> tuple[object, ...]:
    return (t.number, t.state, t.values, sorted(t.params.items()),
            sorted(t.intermediate_values.items()), sorted(map(str, t.user_attrs.items())))


def _check_copy(storage: BaseStorage, old: str, new: str) -> None:
    a = storage.get_all_trials(storage.get_study_id_from_name(old), deepcopy=False)
    b = storage.get_all_trials(storage.get_study_id_from_name(new), deepcopy=False)
    if [_trial_key(t) for t in a] != [_trial_key(t) for t in b]:
        raise LifecycleError(
            f"the copy {new!r} of {old!r} differs from it; {old!r} was kept, check {new!r}"
        )


def delete_study(storage: BaseStorage, name: str) -> int:
    """Delete study ``name`` and its trials; returns how many trials it held."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        raise LifecycleError(f"no study {name!r}") from None
    n = len(storage.get_all_trials(study_id, deepcopy=False))
    storage.delete_study(study_id)
    return n


# ----------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class StudyRow:
    """One study as ``autolr studies`` lists it, read from SQL aggregates on RDB storage."""

    name: str
    directions: tuple[str, ...]
    user_attrs: dict[str, object]
    states: dict[str, int]
    created: datetime | None
    updated: datetime | None


def list_studies(storage: BaseStorage) -> list[StudyRow]:
    """Every study with its trial counts by state and first/last trial time.

    RDB storage: three grouped queries, however many trials (20,000 trials: well under a
    second); other storages: Optuna's summaries and each study's trials.
    """
    rdb = _rdb(storage)
    if rdb is not None:
        return _rdb_rows(rdb)
    rows = []
    for s in storage.get_all_studies():
        trials = storage.get_all_trials(s._study_id, deepcopy=False)
        states: dict[str, int] = {}
        for t in trials:
            states[t.state.name] = states.get(t.state.name, 0) + 1
        starts = [t.datetime_start for t in trials if t.datetime_start is not None]
        ends = [t.datetime_complete or t.datetime_start for t in trials]
        ends_known = [e for e in ends if e is not None]
        rows.append(StudyRow(
            s.study_name, tuple(d.name.lower() for d in s.directions), dict(s.user_attrs),
            states, min(starts, default=None), max(ends_known, default=None),
        ))
    return sorted(rows, key=lambda r: r.name)


def _rdb_rows(rdb: RDBStorage) -> list[StudyRow]:
    # Optuna's tables, named through SQLAlchemy so each dialect quotes them (MySQL: `key`).
    from sqlalchemy import column, func, select, table

    studies = table("studies", column("study_id"), column("study_name"))
    dirs_t = table("study_directions", column("study_id"), column("objective"), column("direction"))
    attrs_t = table("study_user_attributes", column("study_id"), column("key"), column("value_json"))
    trials = table("trials", column("study_id"), column("state"), column("datetime_start"),
                   column("datetime_complete"))
    with rdb.engine.connect() as conn:
        names = conn.execute(select(studies.c.study_id, studies.c.study_name)).all()
        dirs: dict[int, list[tuple[int, str]]] = {}
        for sid, obj, d in conn.execute(
            select(dirs_t.c.study_id, dirs_t.c.objective, dirs_t.c.direction)
        ):
            dirs.setdefault(sid, []).append((obj, str(getattr(d, "name", d))))
        attrs: dict[int, dict[str, object]] = {}
        for sid, key, value in conn.execute(
            select(attrs_t.c.study_id, attrs_t.c.key, attrs_t.c.value_json)
        ):
            try:
                attrs.setdefault(sid, {})[key] = json.loads(value)
            except (TypeError, ValueError):
                attrs.setdefault(sid, {})[key] = value
        counts: dict[int, dict[str, int]] = {}
        for sid, state, n in conn.execute(
            select(trials.c.study_id, trials.c.state, func.count())
            .group_by(trials.c.study_id, trials.c.state)
        ):
            counts.setdefault(sid, {})[str(getattr(state, "name", state))] = int(n)
        last = func.coalesce(trials.c.datetime_complete, trials.c.datetime_start)
        times = {
            sid: (_dt(lo), _dt(hi))
            for sid, lo, hi in conn.execute(
                select(trials.c.study_id, func.min(trials.c.datetime_start), func.max(last))
                .group_by(trials.c.study_id)
            )
        }
    rows = []
    for sid, name in names:
        lo, hi = times.get(sid, (None, None))
        rows.append(StudyRow(
            name, tuple(d.lower() for _, d in sorted(dirs.get(sid, []))), attrs.get(sid, {}),
            counts.get(sid, {}), lo, hi,
        ))
    return sorted(rows, key=lambda r: r.name)


def _dt(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):  # SQLite returns text from aggregates
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None

