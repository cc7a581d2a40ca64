"""Opening a study for a run: create or load it, refuse a mismatched resume, record its plan.

Optuna's ``create_study(load_if_exists=True)`` returns a stored study without checking its
direction, and stores neither sampler nor search range. autolr checks the stored direction and
records, on a new study, the lr range (``autolr.lr_low`` / ``autolr.lr_high``, with
``autolr.version`` and ``autolr.direction``) and, for its own search, the search's plan
(``autolr.search``, ``autolr.search_spec``), so a resume with another range is refused with one
line and every worker follows the same plan.

A study written by autolr 0.1 (a range, no ``autolr.search``) is resumed the way it was run:
TPE over its stored range, 12 trials, unless the call says otherwise.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from datetime import datetime, timezone

import optuna
from optuna.storages import BaseStorage

from autolr import _lifecycle, _storage
from autolr._config import TuneConfig
from autolr._fingerprint import Fingerprint, changes
from autolr._sampling import build_sampler, study_total
from autolr._schema import (
    STUDY_DIRECTION,
    STUDY_FINGERPRINT,
    STUDY_FINGERPRINT_CHANGES,
    STUDY_LR_HIGH,
    STUDY_LR_LOW,
    STUDY_SEARCH,
    STUDY_SEARCH_SPEC,
    STUDY_VERSION,
    counted,
    views,
)
from autolr._search import (
    LIMITS,
    SEARCH_NAME,
    SearchSpec,
    is_done,
    spec_from_json,
    spec_to_json,
)
from autolr._space import LRRange
from autolr._version import __version__

#: The value of ``autolr.search`` on a study run by an Optuna sampler.
OPTUNA_NAME = "optuna"


@dataclass(frozen=True)
class Opened:
    """An open study, the config its run follows, and autolr's search plan (when searching)."""

    study: optuna.Study
    config: TuneConfig
    spec: SearchSpec | None


class StudyChangedError(ValueError):
    """A stored study was made with another train function, kwargs or lr range: one line."""


def open_study(
    config: TuneConfig,
    name: str,
    *,
    default_lr: float | None = None,
    fingerprint: Fingerprint | None = None,
) -> Opened:
    """The study ``name`` in ``config.storage``, created if new, with this worker's sampler.

    Args:
        config: the run's options (``fresh``: archive a stored study first; ``allow_changed``:
            resume one whose fingerprint differs).
        name: the study's name.
        default_lr: the train function's own default lr (autolr's search measures it first).
        fingerprint: what defines this run (:mod:`autolr._fingerprint`); checked on resume,
            stored on a new study (and on one written before fingerprints existed).
    """
    storage = _storage.open_storage(config.storage)
    stored = _stored_attrs(storage, name)
    if stored is not None and config.fresh:
        _archive(storage, name, config)
        stored = None
    config = _as_run_before(config, stored, name)
    pruner = config.pruner  # autolr's own Pruning runs inside the trial (autolr._stopping)
    if not isinstance(pruner, optuna.pruners.BasePruner):
        pruner = optuna.pruners.NopPruner()
    if stored is not None:  # load_study: no "Using an existing study" INFO line from Optuna
        study = optuna.load_study(
            study_name=name, storage=storage, sampler=build_sampler(config), pruner=pruner
        )
    else:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction=config.direction,
            sampler=build_sampler(config),
            pruner=pruner,
            load_if_exists=True,
        )
    spec = search_spec(config, default_lr) if config.searching else None
    spec = check_or_record(study, config, spec, fingerprint)
    return Opened(study, config, spec)


def _archive(storage: BaseStorage, name: str, config: TuneConfig) -> None:
    """``fresh=True``: keep the stored study's trials under ``NAME.old-<time>``, said once."""
    study_id = storage.get_study_id_from_name(name)
    n = len(storage.get_all_trials(study_id, deepcopy=False))
    archived = _lifecycle.free_archive_name(storage, name)
    _lifecycle.rename_study(storage, name, archived)
    print(
        f"autolr: study {name!r} starts over (fresh=True); its {n} trials are kept as "
        f"{archived!r} in {_storage.describe(config.storage)}",
        file=sys.stderr,
    )


def completed(opened: Opened) -> int | None:
    """The finished trials of a study that needs no more (None while it does)."""
    trials = views(opened.study.get_trials(deepcopy=False))
    finished = sum(1 for t in trials if counted(t))
    if opened.spec is not None:
        done = is_done(opened.spec, trials, direction=opened.config.direction)
    else:
        done = finished >= study_total(opened.config)
    return finished if done else None


def say_if_complete(opened: Opened) -> None:
    """One line when a run has nothing to train: the study already holds its result."""
    finished = completed(opened)
    if finished is None:
        return
    print(
        f"autolr: study {opened.study.study_name!r} in {_storage.describe(opened.config.storage)} "
        f"is already complete ({finished} trials): nothing was trained, the result is read "
        "from it (a larger n_trials extends it, fresh=True starts over)",
        file=sys.stderr,
    )


def _stored_attrs(storage: BaseStorage, name: str) -> dict[str, object] | None:
    """The user attributes of the stored study ``name``, or None when there is no such study."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    return dict(storage.get_study_user_attrs(study_id))


def _as_run_before(config: TuneConfig, stored: dict[str, object] | None, name: str) -> TuneConfig:
    """A study resumes the way it was run: one line refuses another kind of search, and a
    study written by autolr 0.1 resumes with TPE over its own range (said once)."""
    if stored is None:
        return config
    kind = stored.get(STUDY_SEARCH)
    if kind == SEARCH_NAME and not config.searching:
        raise ValueError(
            f"sampler: study {name!r} was run by autolr's own search (sampler='auto'); resume it "
            "with the default sampler, or give another study_name"
        )
    if kind == OPTUNA_NAME and config.searching:
        raise ValueError(
            f"sampler: study {name!r} was run with an Optuna sampler; pass the same sampler= "
            "to resume it, or give another study_name"
        )
    if kind is not None or not config.searching:
        return config
    low, high = stored.get(STUDY_LR_LOW), stored.get(STUDY_LR_HIGH)
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        return config
    print(
        f"autolr: study {name!r} was started by autolr 0.1 with TPE; it resumes the same way "
        "(a new study_name gets autolr's own search)",
        file=sys.stderr,
    )
    lr = config.lr if config.lr is not None else LRRange(float(low), float(high))
    return dataclasses.replace(config, sampler="tpe", lr=lr)


def search_spec(config: TuneConfig, default_lr: float | None) -> SearchSpec:
    """The plan of autolr's search for a new study run with ``config``."""
    given = None if config.lr is None else (config.lr.low, config.lr.high)
    return SearchSpec.build(
        default_lr=default_lr,
        lr_range=given,
        max_trials=config.n_trials,
        full_runs=config.pruner is None,
    )


def _range_of(config: TuneConfig, spec: SearchSpec | None) -> tuple[float, float]:
    """What ``autolr.lr_low`` / ``lr_high`` hold: the range given, else the search's limits."""
    if config.lr is not None:
        return config.lr.low, config.lr.high
    if spec is not None:
        return 10.0 ** LIMITS[0], 10.0 ** LIMITS[1]
    rng = config.lr_range
    return rng.low, rng.high


def check_or_record(
    study: optuna.Study,
    config: TuneConfig,
    spec: SearchSpec | None,
    fingerprint: Fingerprint | None = None,
) -> SearchSpec | None:
    """Refuse to resume a study with another direction, range or fingerprint (Optuna keeps the
    stored one); on a new study, record them (and the search's plan). Returns the plan."""
    where = _storage.describe(config.storage)
    stored_dir = study.direction.name.lower()
    if stored_dir != config.direction:
        raise ValueError(
            f"direction: study {study.study_name!r} in {where} was created with "
            f"direction={stored_dir!r}, got {config.direction!r}; use another study_name"
        )
    attrs = study.user_attrs
    low, high = _range_of(config, spec)
    lr = LRRange(low, high)
    # The low bound is written last, so a worker that sees it also sees the rest.
    if STUDY_LR_LOW in attrs and STUDY_LR_HIGH in attrs:
        s_low, s_high = attrs[STUDY_LR_LOW], attrs[STUDY_LR_HIGH]
        if not lr.same_as(s_low, s_high):
            shown = "autolr's own range" if config.lr is None else f"({low:g}, {high:g})"
            raise StudyChangedError(
                f"lr: study {study.study_name!r} in {where} searches ({s_low:g}, {s_high:g}), "
                f"got {shown}; use the stored range, another study_name, or fresh=True to start "
                f"over (its trials are kept as '{study.study_name}.old-<time>')"
            )
        if fingerprint is not None:
            _check_fingerprint(study, config, fingerprint, where)
        if spec is not None and STUDY_SEARCH_SPEC in attrs:
            stored = spec_from_json(
                attrs[STUDY_SEARCH_SPEC], max_trials=spec.max_trials, full_runs=spec.full_runs
            )
            spec = stored or spec
        return spec
    study.set_user_attr(STUDY_VERSION, __version__)
    study.set_user_attr(STUDY_DIRECTION, config.direction)
    study.set_user_attr(STUDY_SEARCH, SEARCH_NAME if spec is not None else OPTUNA_NAME)
    if spec is not None:
        study.set_user_attr(STUDY_SEARCH_SPEC, spec_to_json(spec))
    if fingerprint is not None:
        study.set_user_attr(STUDY_FINGERPRINT, fingerprint.to_json())
    study.set_user_attr(STUDY_LR_HIGH, high)
    study.set_user_attr(STUDY_LR_LOW, low)
    return spec


def _check_fingerprint(
    study: optuna.Study, config: TuneConfig, now: Fingerprint, where: str
) -> None:
    """Refuse a resume with other code or kwargs (one line), unless ``allow_changed``; a study
    written before fingerprints existed is given this one."""
    attrs = study.user_attrs
    stored = Fingerprint.from_json(attrs.get(STUDY_FINGERPRINT))
    if stored is None:
        study.set_user_attr(STUDY_FINGERPRINT, now.to_json())
        return
    diff = changes(stored, now)
    if not diff:
        return
    name = study.study_name
    if not config.allow_changed:
        raise StudyChangedError(
            f"study {name!r} in {where} was made with other inputs: {'; '.join(diff)}. Use "
            f"another study_name, run(fresh=True) to start over (its trials are kept as "
            f"'{name}.old-<time>'), or run(allow_changed=True) to continue with both"
        )
    history = attrs.get(STUDY_FINGERPRINT_CHANGES)
    history = list(history) if isinstance(history, list) else []
    history.append({"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "changes": diff, "before": stored.to_json()})
    study.set_user_attr(STUDY_FINGERPRINT_CHANGES, history)
    study.set_user_attr(STUDY_FINGERPRINT, now.to_json())
    print(
        f"autolr: study {name!r} continues with changed inputs (allow_changed=True): "
        f"{'; '.join(diff)}",
        file=sys.stderr,
    )
