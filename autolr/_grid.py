"""Log-spaced learning-rate grids for grid mode (``@autolr.tune(sampler="grid")``)."""

from __future__ import annotations

import math

from autolr._space import DEFAULT_RANGE, LRRange

__all__ = ["CLASSIC_GRID_RANGE", "grid_points", "log_grid"]

_EPS = 1e-9
#: The classic comparison grid mode runs when no range or density is given.
CLASSIC_GRID_RANGE = (1e-4, 1e-1)


def log_grid(low: float, high: float, *, points_per_decade: int | None = None) -> list[float]:
    """The learning rates of a log grid within ``[low, high]``, ascending.

    With ``points_per_decade=None`` the grid is the powers of ten in the range, the classic
    comparison (``log_grid(1e-4, 1e-1)`` is ``[1e-4, 1e-3, 1e-2, 1e-1]``). With
    ``points_per_decade=k`` it is ``10 ** (j / k)`` for every integer ``j`` in range, so the
    powers of ten are always on it; values are rounded to 3 significant digits so they read well
    in tables (``2.15e-3``, not ``0.0021544346900318843``), and stay inside the range.

    Example::

        >>> log_grid(1e-4, 1e-1)
        [0.0001, 0.001, 0.01, 0.1]
        >>> log_grid(1e-3, 1e-2, points_per_decade=3)
        [0.001, 0.00215, 0.00464, 0.01]

    Args:
        low: the smallest learning rate allowed, > 0.
        high: the largest learning rate allowed, > ``low``.
        points_per_decade: grid points per factor of ten (a positive integer), or ``None`` for
            the powers of ten.

    Raises:
        ValueError: on an invalid range or ``points_per_decade``, or if no grid point falls in
            the range (ask for more points per decade).
    """
    if not (isinstance(low, (int, float)) and isinstance(high, (int, float))):
        raise ValueError(f"low and high must be numbers, got {low!r} and {high!r}")
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
        raise ValueError(f"need 0 < low < high (finite), got low={low}, high={high}")
    if points_per_decade is None:
        k = 1
    elif isinstance(points_per_decade, bool) or not isinstance(points_per_decade, int):
        raise ValueError(f"points_per_decade must be a positive int, got {points_per_decade!r}")
    elif points_per_decade < 1:
        raise ValueError(f"points_per_decade must be a positive int, got {points_per_decade}")
    else:
        k = points_per_decade
    lo_exp, hi_exp = math.log10(low), math.log10(high)
    first = math.ceil(lo_exp * k - _EPS)
    last = math.floor(hi_exp * k + _EPS)
    grid: list[float] = []
    for j in range(first, last + 1):
        value = float(f"{10.0 ** (j / k):.3g}")
        value = min(max(value, low), high)  # rounding must not step outside the range
        if not grid or value > grid[-1]:
            grid.append(value)
    if not grid:
        raise ValueError(
            f"no grid point in [{low:g}, {high:g}] with points_per_decade={points_per_decade}: "
            "widen the range or ask for more points per decade"
        )
    return grid


def grid_points(lr: LRRange, points_per_decade: int | None) -> list[float]:
    """The learning rates of ``sampler="grid"`` for a study over ``lr``.

    The classic comparison (1e-4, 1e-3, 1e-2, 1e-1) when neither the range nor the density was
    given; else :func:`log_grid` over the range. Errors name ``points_per_decade``.

    Example::

        >>> grid_points(LRRange(*DEFAULT_RANGE), None)
        [0.0001, 0.001, 0.01, 0.1]
    """
    if points_per_decade is None and (lr.low, lr.high) == DEFAULT_RANGE:
        return log_grid(*CLASSIC_GRID_RANGE)
    try:
        return log_grid(lr.low, lr.high, points_per_decade=points_per_decade)
    except ValueError as exc:
        raise ValueError(f"points_per_decade: {exc}") from None
