"""autolr: find a good, stable learning rate for your training code, and see why.

Example:
    >>> import autolr
    >>> @autolr.tune(n_trials=20, seed=0)          # doctest: +SKIP
    ... def train(lr: float) -> float:
    ...     ...
    ...     autolr.report(val_loss, step=epoch)
    ...     return val_loss
    >>> result = train.run()                        # doctest: +SKIP
    >>> result.best_lr                              # doctest: +SKIP
"""

from __future__ import annotations

import importlib

from autolr._context import TrialPruned, report
from autolr._pruning import Pruning
from autolr._reports import COMPARISON_COLUMNS, TRIAL_COLUMNS
from autolr._result import Result, StudyNotFoundError, load
from autolr._stability import Stability
from autolr._storage import StorageError
from autolr._tune import Tuned, tune
from autolr._version import __version__


def __getattr__(name: str) -> object:
    """``autolr.torch``, ``.sklearn``, ``.lightning``, ``.transformers`` and ``.keras`` load on
    first use, so ``import autolr`` stays light."""
    if name in ("torch", "sklearn", "lightning", "transformers", "keras"):
        return importlib.import_module(f"autolr.{name}")
    raise AttributeError(f"module 'autolr' has no attribute {name!r}")


__all__ = [
    "COMPARISON_COLUMNS",
    "Pruning",
    "Result",
    "Stability",
    "StorageError",
    "TRIAL_COLUMNS",
    "StudyNotFoundError",
    "TrialPruned",
    "Tuned",
    "__version__",
    "load",
    "report",
    "tune",
]
