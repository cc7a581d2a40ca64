from __future__ import annotations

import math

import pytest

from autolr._recommend import curve_stats
from autolr._recommend import recommend
from autolr._recommend import TrialSummary as T


def _curve(final: float, n: int = 6) -> tuple[tuple[int, float], ...]:
    return tuple((s, final * (1 + 0.5 ** s)) for s in range(n - 1)) + ((n - 1, final),)


def test_lucky_edge_loses_to_broad_basin():
    trials = [
        T(0, 1e-4, "COMPLETE", 0.60, None, _curve(0.60)),
        T(1, 3e-4, "COMPLETE", 0.35, None, _curve(0.35)),
        T(2, 1e-3, "COMPLETE", 0.30, None, _curve(0.30)),
        T(3, 1.5e-3, "COMPLETE", 0.29, None, _curve(0.29)),
        T(4, 2.5e-3, "COMPLETE", 0.31, None, _curve(0.31)),
        T(5, 3e-2, "COMPLETE", 0.20, None, _curve(0.20)),  # lucky, next to the edge
        T(6, 3.5e-2, "PRUNED", None, "diverged", ((0, 2.3), (1, 40.0))),
        T(7, 4.5e-2, "FAIL", None, "nan", ((0, 2.3), (1, math.nan))),
        T(8, 2.5e-2, "PRUNED", None, "oscillating", ()),
    ]
    rec = recommend(trials)
    assert rec.raw_best_trial_number == 5
    assert rec.trial_number in (2, 3, 4)
    assert rec.lr == trials[rec.trial_number].lr
    assert "#5" in rec.reason and "unstable" in rec.reason
    assert rec.candidates[0] == rec.trial_number
    assert 5 in rec.candidates


def test_swinging_curve_is_judged_by_its_tail():
    swing = ((0, 2.0), (1, 0.3), (2, 0.9), (3, 1.2), (4, 0.25))
    trials = [
        T(0, 1e-3, "COMPLETE", 0.30, None, _curve(0.30)),
        T(1, 1e-2, "COMPLETE", 0.25, None, swing),
    ]
    rec = recommend(trials)
    assert rec.trial_number == 0
    assert "swung" in rec.reason


def test_without_instability_the_best_basin_wins():
    vals = {1e-4: 0.9, 3e-4: 0.5, 1e-3: 0.2, 3e-3: 0.25, 1e-2: 0.6}
    trials = [T(i, lr, "COMPLETE", v) for i, (lr, v) in enumerate(vals.items())]
    assert recommend(trials).lr == 1e-3


def test_maximize_direction():
    vals = {1e-4: 0.5, 3e-4: 0.8, 1e-3: 0.95, 3e-3: 0.9, 1e-2: 0.3}
    trials = [T(i, lr, "COMPLETE", v) for i, (lr, v) in enumerate(vals.items())]
    rec = recommend(trials, direction="maximize")
    assert rec.lr == 1e-3 and rec.raw_best_trial_number == 2
    assert recommend(trials).lr == 1e-2 or recommend(trials).lr == 1e-4


@pytest.mark.parametrize(
    "trials",
    [
        [],
        [T(0, 1e-3, "FAIL", None, "exception"), T(1, 1e-2, "FAIL", None, "nan")],
        [T(0, 1e-3, "PRUNED", None, "underperforming"), T(1, 1e-1, "PRUNED", None, "diverged")],
        [T(0, 1e-3, "RUNNING", None)],
    ],
)
def test_nothing_usable_gives_none_and_a_reason(trials):
    rec = recommend(trials)
    assert rec.lr is None and rec.trial_number is None and rec.value is None
    assert rec.reason


def test_all_unstable_suggests_lower():
    rec = recommend([T(0, 1e-2, "PRUNED", None, "diverged"), T(1, 1e-1, "FAIL", None, "inf")])
    assert "lower" in rec.reason and "0.01" in rec.reason


def test_single_trial():
    rec = recommend([T(3, 1e-3, "COMPLETE", 0.5)])
    assert (rec.lr, rec.trial_number, rec.value) == (1e-3, 3, 0.5)
    assert "one trial" in rec.reason


def test_ties_are_deterministic_and_prefer_the_lower_lr():
    trials = [T(0, 1e-2, "COMPLETE", 0.5), T(1, 1e-3, "COMPLETE", 0.5)]
    assert recommend(trials).trial_number == 1
    assert recommend(list(reversed(trials))).trial_number == 1


def test_non_finite_values_and_bad_lrs_are_ignored():
    trials = [
        T(0, 1e-3, "COMPLETE", 0.4),
        T(1, 1e-2, "COMPLETE", math.nan),
        T(2, -1.0, "COMPLETE", 0.1),
        T(3, 1e-2, "FAIL", math.inf),
    ]
    assert recommend(trials).trial_number == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="direction"):
        recommend([], direction="up")
    with pytest.raises(ValueError, match="bandwidth"):
        recommend([], bandwidth=0.0)


def test_curve_stats():
    s = curve_stats([(1, 2.0), (2, 1.0), (3, 0.5), (4, 0.8), (5, 0.49)])
    assert (s.n_reports, s.last_step, s.best, s.final) == (5, 5, 0.49, 0.49)
    assert s.swings == 2 and s.late_rise == 0.0 and s.steps_to_converge == 5
    assert s.tail_spread == pytest.approx((0.8 - 0.49) / ((0.5 + 0.8 + 0.49) / 3))
    r = curve_stats([(0, 1.0), (1, 0.2), (2, 0.4)])
    assert r.late_rise == pytest.approx(1.0)
    acc = curve_stats([(0, 0.1), (1, 0.9), (2, 0.91)], direction="maximize")
    assert acc.best == 0.91 and acc.steps_to_converge == 1
    assert curve_stats([]).n_reports == 0
    nf = curve_stats([(0, 1.0), (1, math.nan)])
    assert nf.non_finite and nf.final == 1.0
    with pytest.raises(ValueError, match="tail"):
        curve_stats([], tail=1)
