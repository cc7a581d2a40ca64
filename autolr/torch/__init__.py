"""PyTorch tools: the learning-rate range test, optimizer and schedule search.

Needs torch: ``pip install autolr[torch]``.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised by a subprocess test
    raise ImportError("autolr.torch needs PyTorch: pip install autolr[torch]") from e

from autolr.torch._finder import LRFinderResult, find_lr, suggest_lrs
from autolr.torch._optim import LR_RANGE, LR_SCALE, OPTIMIZERS, optimizer
from autolr.torch._sched import SCHEDULES, Schedule, lr_factor, scheduler

__all__ = [
    "LRFinderResult",
    "LR_RANGE",
    "LR_SCALE",
    "OPTIMIZERS",
    "SCHEDULES",
    "Schedule",
    "find_lr",
    "lr_factor",
    "optimizer",
    "scheduler",
    "suggest_lrs",
]
