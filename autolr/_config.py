"""The options of ``@autolr.tune`` as one frozen, validated :class:`TuneConfig`.

Validation is data, in scikit-learn's ``_parameter_constraints`` style: :data:`CONSTRAINTS`
maps each option to the rule that checks it and puts it in its one stored form (``catch=ValueError``
becomes a tuple, ``pruner=None`` autolr's :class:`~autolr.Pruning`); :meth:`TuneConfig.build`
applies the rules in order, then the two rules that relate options to each other or to the train
function. Every error is one line naming the option, raised before anything is written.

Example:
    >>> TuneConfig.build(n_trials=5, catch=ValueError).catch
    (<class 'ValueError'>,)
    >>> TuneConfig.build(n_trials=0)
    Traceback (most recent call last):
    ...
    ValueError: n_trials: expected an int >= 1 or None, got 0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal, TypeAlias

import optuna

from autolr import _storage
from autolr._grid import grid_points
from autolr._pruning import Pruning
from autolr._space import DEFAULT_RANGE, LRRange, resolve_lr
from autolr._stability import Stability

Direction = Literal["minimize", "maximize"]
#: What ``sampler=`` takes: ``"auto"`` (autolr's search), ``"tpe"``, ``"random"``, ``"grid"``, an
#: Optuna sampler, or None (``"auto"``).
SamplerSpec: TypeAlias = "str | optuna.samplers.BaseSampler | None"
#: ``storage=``: a URL, an Optuna storage object, or None for the default SQLite file.
StorageArg: TypeAlias = "str | optuna.storages.BaseStorage | None"
#: A resolved ``pruner=``: autolr's policy, an Optuna pruner, or None (no pruning).
PrunerSpec: TypeAlias = "Pruning | optuna.pruners.BasePruner | None"

#: Default study-wide number of finished trials of an Optuna sampler (``sampler="tpe"``, ...);
#: autolr's own search takes as many as it needs (about ten) unless ``n_trials`` caps it.
DEFAULT_N_TRIALS = 12
#: Trials of an Optuna sampler's study that re-run the best candidates with another seed, when
#: the function accepts ``seed`` (autolr's own search finishes two candidates instead).
DEFAULT_RECHECK = 2
#: ``sampler="auto"``: autolr's coarse-to-fine successive halving (:mod:`autolr._search`).
AUTO = "auto"
SAMPLERS = (AUTO, "tpe", "random", "grid")


# ----------------------------------------------------------------------------- the rules
#: A rule checks one option and returns it in its stored form; it raises a one-line error.
Rule = Callable[[str, object], object]


@dataclass(frozen=True)
class IntAtLeast:
    """An int (not a bool) >= ``low``; ``optional`` also allows None."""

    low: int
    optional: bool = False

    def __call__(self, name: str, value: object) -> int | None:
        if value is None and self.optional:
            return None
        if isinstance(value, bool) or not isinstance(value, Integral) or value < self.low:
            also = " or None" if self.optional else ""
            raise ValueError(f"{name}: expected an int >= {self.low}{also}, got {value!r}")
        return int(value)


def _seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not float(value) > 0:
        raise ValueError(f"{name}: expected seconds > 0 or None, got {value!r}")
    return float(value)


def _study_name(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 512:
        raise ValueError(f"{name}: expected a non-empty string, got {value!r}")
    return value


def _storage_arg(name: str, value: object) -> StorageArg:
    if value is None or isinstance(value, optuna.storages.BaseStorage):
        return value
    if isinstance(value, str):
        _storage.check_url(value, param=name)
        return value
    raise ValueError(
        f"{name}: expected a URL string or an optuna.storages.BaseStorage, got {type(value).__name__}"
    )


def _lr(name: str, value: object) -> LRRange | None:
    """None: autolr's search chooses and grows the range; a pair (or a finder's result): fixed."""
    return None if value is None else resolve_lr(value, param=name)


def _direction(name: str, value: object) -> Direction:
    if isinstance(value, optuna.study.StudyDirection):
        value = value.name.lower()
    if value == "minimize":
        return "minimize"
    if value == "maximize":
        return "maximize"
    raise ValueError(f"{name}: expected 'minimize' or 'maximize', got {value!r}")


def _catch(name: str, value: object) -> tuple[type[Exception], ...]:
    if isinstance(value, type) and issubclass(value, BaseException):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(e, type) and issubclass(e, Exception) for e in value
    ):
        raise ValueError(f"{name}: expected a tuple of Exception classes, got {value!r}")
    return tuple(value)


def _sampler(name: str, value: object) -> SamplerSpec:
    if value is None:
        return AUTO
    if isinstance(value, optuna.samplers.BaseSampler):
        return value
    if isinstance(value, str) and value in SAMPLERS:
        return value
    raise ValueError(
        f"{name}: expected 'auto', 'tpe', 'random', 'grid' or an optuna.samplers.BaseSampler, "
        f"got {value!r}"
    )


def _points_per_decade(name: str, value: object) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError(f"{name}: points_per_decade must be a positive int, got {value!r}")


def _pruner(name: str, value: object) -> PrunerSpec:
    """``None`` -> autolr's policy; ``False`` -> none; an Optuna pruner -> used as is."""
    if value is None:
        return Pruning()
    if value is False or value == "none":
        return None
    if isinstance(value, (Pruning, optuna.pruners.BasePruner)):
        return value
    raise ValueError(
        f"{name}: expected None (autolr's policy), False (no pruning), an autolr.Pruning or an "
        f"optuna.pruners.BasePruner, got {value!r}"
    )


def _stability(name: str, value: object) -> Stability:
    if value is None:
        return Stability()
    if not isinstance(value, Stability):
        raise ValueError(f"{name}: expected an autolr.Stability or None, got {value!r}")
    return value


def _flag(name: str, value: object) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{name}: expected True, False or None, got {value!r}")
    return value


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return value


#: Each option of ``@autolr.tune`` and its rule, in the order they are checked.
CONSTRAINTS: Mapping[str, Rule] = {
    "n_trials": IntAtLeast(1, optional=True),
    "timeout": _seconds,
    "study_name": _study_name,
    "lr": _lr,
    "direction": _direction,
    "seed": IntAtLeast(0, optional=True),
    "catch": _catch,
    "storage": _storage_arg,
    "sampler": _sampler,
    "points_per_decade": _points_per_decade,
    "pruner": _pruner,
    "stability": _stability,
    "recheck": IntAtLeast(0, optional=True),
    "show_progress_bar": _flag,
    # run() options only (not the decorator's): what to do with a stored study
    "fresh": _bool,
    "allow_changed": _bool,
}


# ----------------------------------------------------------------------------- the config


@dataclass(frozen=True)
class TuneConfig:
    """Everything ``@autolr.tune`` was told, validated once, in its stored form.

    ``pruner`` is resolved (None means no pruning), ``stability`` too; ``recheck`` is None until
    :meth:`for_function` decides it from the train function's ``seed`` parameter. ``lr`` None
    lets autolr's search choose (and grow) the range; ``n_trials`` None is "as many as the
    search needs" (:data:`DEFAULT_N_TRIALS` for an Optuna sampler).
    """

    n_trials: int | None = None
    timeout: float | None = None
    study_name: str | None = None
    lr: LRRange | None = None
    direction: Direction = "minimize"
    seed: int | None = None
    catch: tuple[type[Exception], ...] = (Exception,)
    storage: StorageArg = None
    sampler: SamplerSpec = AUTO
    points_per_decade: int | None = None
    pruner: PrunerSpec = Pruning()
    stability: Stability = Stability()
    recheck: int | None = None
    show_progress_bar: bool | None = None
    #: ``run(fresh=True)``: a stored study of this name is renamed ``NAME.old-<time>`` first.
    fresh: bool = False
    #: ``run(allow_changed=True)``: resume although the train function or its kwargs changed.
    allow_changed: bool = False

    @classmethod
    def build(cls, **options: object) -> TuneConfig:
        """Check every option against :data:`CONSTRAINTS`; unknown names are a TypeError."""
        unknown = sorted(set(options) - set(CONSTRAINTS))
        if unknown:
            raise TypeError(f"tune: unknown option {unknown[0]!r}")
        # Each rule returns its option's type; the mapping of all of them can only say Any.
        stored: dict[str, Any] = {
            name: rule(name, options[name]) for name, rule in CONSTRAINTS.items() if name in options
        }
        config = cls(**stored)
        if config.points_per_decade is not None and config.sampler != "grid":
            raise ValueError("points_per_decade: only applies to sampler='grid'")
        if config.sampler == "grid":
            grid_points(config.lr_range, config.points_per_decade)  # raises naming points_per_decade
        if config.searching and isinstance(config.pruner, optuna.pruners.BasePruner):
            raise ValueError(
                "pruner: autolr's search (sampler='auto') stops trials itself by successive "
                "halving; use pruner=False for full runs only, or sampler='tpe' with an Optuna pruner"
            )
        return config

    @property
    def searching(self) -> bool:
        """Whether the study runs autolr's own search (``sampler="auto"``)."""
        return self.sampler == AUTO

    @property
    def lr_range(self) -> LRRange:
        """The range an Optuna sampler searches: the one given, else ``(1e-5, 1e-1)``."""
        return self.lr if self.lr is not None else LRRange(*DEFAULT_RANGE)

    @property
    def total(self) -> int:
        """An Optuna sampler's study-wide total (``n_trials``, else :data:`DEFAULT_N_TRIALS`)."""
        return self.n_trials if self.n_trials is not None else DEFAULT_N_TRIALS

    def replace(self, **options: object) -> TuneConfig:
        """A copy with some options replaced, each checked by its rule."""
        stored: dict[str, Any] = {name: CONSTRAINTS[name](name, v) for name, v in options.items()}
        return dataclasses.replace(self, **stored)

    def for_function(self, *, accepts_seed: bool, qualname: str) -> TuneConfig:
        """``recheck`` decided for a train function: its default, or refused without ``seed``."""
        if self.recheck is None:
            default = DEFAULT_RECHECK if accepts_seed and not self.searching else 0
            return dataclasses.replace(self, recheck=default)
        if self.recheck and self.searching:
            raise ValueError(
                "recheck: autolr's search (sampler='auto') finishes its two best candidates "
                "instead of re-checking; re-checks apply to sampler='tpe', 'random' or 'grid'"
            )
        if self.recheck and not accepts_seed:
            raise ValueError(
                f"recheck: re-checking runs the train function with another seed, but "
                f"{qualname}() has no 'seed' parameter"
            )
        return self

    def as_dict(self) -> dict[str, object]:
        """The options by name (what ``Tuned.options`` shows)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
