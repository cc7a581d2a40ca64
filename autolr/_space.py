"""The learning-rate search range: validated bounds ``(low, high)`` and the default range."""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Protocol, runtime_checkable

#: The classic default learning rate of Adam-family optimizers; the first trial of a study runs it.
DEFAULT_LR = 1e-3
#: Two decades either side of :data:`DEFAULT_LR`.
DEFAULT_RANGE = (1e-5, 1e-1)


@runtime_checkable
class SearchRangeSource(Protocol):
    """Anything that proposes a range, e.g. the result of :func:`autolr.torch.find_lr`."""

    def search_range(self) -> tuple[float, float]: ...


@dataclass(frozen=True)
class LRRange:
    """A log-uniform learning-rate range ``[low, high]``."""

    low: float
    high: float

    def contains(self, lr: float) -> bool:
        return self.low <= lr <= self.high

    def same_as(self, low: float, high: float) -> bool:
        return math.isclose(self.low, low, rel_tol=1e-12) and math.isclose(
            self.high, high, rel_tol=1e-12
        )


def _as_bound(x: object, *, param: str) -> float:
    if isinstance(x, bool) or not isinstance(x, Real):
        raise ValueError(f"{param}: expected positive numbers (low, high), got {x!r}")
    v = float(x)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{param}: learning-rate bounds must be finite and > 0, got {x!r}")
    return v


def resolve_lr(lr: object, *, param: str = "lr") -> LRRange:
    """Validate what a user gave as ``lr=`` and return the range.

    Accepts a ``(low, high)`` pair or an object with ``search_range()``, such as the result of
    :func:`autolr.torch.find_lr` (the study then searches where the range test says).

    Example:
        >>> resolve_lr((1e-4, 1e-2))
        LRRange(low=0.0001, high=0.01)
    """
    if isinstance(lr, str) and lr == "finder":
        raise ValueError(
            f"{param}: autolr cannot run a range test without your model and data; pass "
            f"{param}=autolr.torch.find_lr(model, optimizer, criterion, loader) instead"
        )
    if isinstance(lr, SearchRangeSource) and not isinstance(lr, (tuple, list, str)):
        lr = lr.search_range()
    if isinstance(lr, (str, bytes)) or not isinstance(lr, (tuple, list)) or len(lr) != 2:
        raise ValueError(
            f"{param}: expected a (low, high) pair of learning rates such as (1e-5, 1e-1), "
            f"got {lr!r}"
        )
    low, high = (_as_bound(v, param=param) for v in lr)
    if low >= high:
        raise ValueError(f"{param}: low must be < high, got ({low!r}, {high!r})")
    return LRRange(low, high)
