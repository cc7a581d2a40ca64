"""Opening a study for a run: create or load it, refuse a mismatched resume, record its range.

Optuna's ``create_study(load_if_exists=True)`` returns a stored study without checking its
direction, and stores neither sampler nor search range; autolr checks the stored direction and
records the lr range (``autolr.lr_low`` / ``autolr.lr_high``, with ``autolr.version`` and
``autolr.direction``) on a new study, so a resume with another range is refused with one line.
"""

from __future__ import annotations

import optuna

from autolr import _storage
from autolr._config import TuneConfig
from autolr._sampling import build_sampler
from autolr._schema import STUDY_DIRECTION, STUDY_LR_HIGH, STUDY_LR_LOW, STUDY_VERSION
from autolr._version import __version__


def open_study(config: TuneConfig, name: str) -> optuna.Study:
    """The study ``name`` in ``config.storage``, created if new, with this worker's sampler."""
    storage = _storage.open_storage(config.storage)
    pruner = config.pruner  # autolr's own Pruning runs inside the trial (autolr._stopping)
    if not isinstance(pruner, optuna.pruners.BasePruner):
        pruner = optuna.pruners.NopPruner()
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=config.direction,
        sampler=build_sampler(config),
        pruner=pruner,
        load_if_exists=True,
    )
    check_or_record(study, config)
    return study


def check_or_record(study: optuna.Study, config: TuneConfig) -> None:
    """Refuse to resume a study with another direction or range (Optuna keeps the stored one)."""
    where = _storage.describe(config.storage)
    stored_dir = study.direction.name.lower()
    if stored_dir != config.direction:
        raise ValueError(
            f"direction: study {study.study_name!r} in {where} was created with "
            f"direction={stored_dir!r}, got {config.direction!r}; use another study_name"
        )
    attrs = study.user_attrs
    lr = config.lr
    # The low bound is written last, so a worker that sees it also sees the high one.
    if STUDY_LR_LOW in attrs and STUDY_LR_HIGH in attrs:
        low, high = attrs[STUDY_LR_LOW], attrs[STUDY_LR_HIGH]
        if not lr.same_as(low, high):
            raise ValueError(
                f"lr: study {study.study_name!r} in {where} searches ({low:g}, {high:g}), "
                f"got ({lr.low:g}, {lr.high:g}); use the stored range or another study_name"
            )
    else:
        study.set_user_attr(STUDY_VERSION, __version__)
        study.set_user_attr(STUDY_DIRECTION, config.direction)
        study.set_user_attr(STUDY_LR_HIGH, lr.high)
        study.set_user_attr(STUDY_LR_LOW, lr.low)
