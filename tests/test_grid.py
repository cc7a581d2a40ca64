"""log_grid: the learning rates of grid mode, and the GridSampler built from them."""

from __future__ import annotations

import math

import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autolr._grid import log_grid


def test_default_is_the_powers_of_ten_in_range() -> None:
    assert log_grid(1e-4, 1e-1) == [1e-4, 1e-3, 1e-2, 1e-1]
    assert log_grid(3e-5, 0.3) == [1e-4, 1e-3, 1e-2, 1e-1]


def test_points_per_decade_are_anchored_on_powers_of_ten_and_rounded() -> None:
    assert log_grid(1e-3, 1e-2, points_per_decade=3) == [1e-3, 2.15e-3, 4.64e-3, 1e-2]
    assert log_grid(1e-3, 1e-1, points_per_decade=2) == [1e-3, 3.16e-3, 1e-2, 3.16e-2, 1e-1]


@pytest.mark.parametrize(
    ("low", "high", "ppd", "match"),
    [
        (0.0, 1e-1, None, "low"),
        (1e-1, 1e-3, None, "low"),
        (1e-3, math.inf, None, "high"),
        (1e-4, 1e-1, 0, "points_per_decade"),
        (1e-4, 1e-1, 2.5, "points_per_decade"),
        (2e-3, 5e-3, None, "no grid point"),
    ],
)
def test_bad_input_is_a_value_error(low: float, high: float, ppd: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        log_grid(low, high, points_per_decade=ppd)  # type: ignore[arg-type]


@given(
    low_exp=st.floats(-8, 1),
    width=st.floats(1.0, 6.0),
    ppd=st.one_of(st.none(), st.integers(1, 12)),
)
def test_grid_is_sorted_inside_the_range_and_evenly_dense(
    low_exp: float, width: float, ppd: int | None
) -> None:
    low, high = 10.0**low_exp, 10.0 ** (low_exp + width)
    grid = log_grid(low, high, points_per_decade=ppd)
    assert all(low <= v <= high for v in grid)
    assert grid == sorted(set(grid))
    k = 1 if ppd is None else ppd
    assert abs(len(grid) - k * width) <= 2  # k points per decade, give or take the ends
    for e in range(math.ceil(low_exp), math.floor(low_exp + width) + 1):
        if low <= 10.0**e <= high:
            assert any(math.isclose(v, 10.0**e, rel_tol=1e-9) for v in grid)


def test_a_grid_sampler_built_from_it_visits_every_point_once() -> None:
    low, high = 1e-4, 1e-1
    grid = log_grid(low, high, points_per_decade=2)
    sampler = optuna.samplers.GridSampler({"lr": grid}, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: math.log10(t.suggest_float("lr", low, high, log=True)) ** 2)
    assert sorted(t.params["lr"] for t in study.trials) == grid
