from __future__ import annotations

import math

from hypothesis import assume
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from autolr._stability import Stability
from autolr._stability import StabilityMonitor


def _run(values, config=None, direction="minimize"):
    mon = StabilityMonitor(config or Stability(), direction=direction)
    for step, v in enumerate(values):
        reason = mon.update(step, v)
        if reason is not None:
            return step, reason
    return None, None


positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)
anything = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.0, -0.0]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=-1e300, max_value=1e300), min_size=1, max_size=60))
def test_non_increasing_is_never_stopped(values):
    values = sorted(values, reverse=True)
    assert _run(values) == (None, None)
    # Mirrored: a non-decreasing accuracy-like sequence when maximizing.
    assert _run([-v for v in values], direction="maximize") == (None, None)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(positive, min_size=0, max_size=30),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.sampled_from(["minimize", "maximize"]),
)
def test_non_finite_stops_at_the_step_it_appears(prefix, bad, direction):
    prefix = sorted(prefix, reverse=(direction == "minimize"))
    step, reason = _run([*prefix, bad, 1.0], direction=direction)
    assert step == len(prefix)
    assert reason == ("nan" if math.isnan(bad) else "inf")


# Bound: a positive sequence that has settled at its minimum (held it for 30 reports, so the
# smoothed value reached it) and then rises to >= 10x that minimum and stays there is stopped as
# diverged at most DIVERGENCE_BOUND reports after the rise, i.e. on the rise's second report
# (defaults: no smoothing, so 10x > divergence_factor 4 holds from the first high report, and
# patience 2 needs a second one).
DIVERGENCE_BOUND = 2


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=30),
    st.floats(min_value=10.0, max_value=1e6),
    st.integers(min_value=3, max_value=10),
)
def test_tenfold_rise_is_diverged_within_bound(descent, factor, hold):
    descent = sorted(descent, reverse=True)
    low = descent[-1]
    settled = [*descent, *([low] * 30)]
    values = [*settled, *([low * factor] * hold)]
    step, reason = _run(values)
    assert reason == "diverged"
    assert len(settled) <= step <= len(settled) - 1 + DIVERGENCE_BOUND


@settings(max_examples=500, deadline=None)
@given(st.lists(anything, min_size=1, max_size=40), st.sampled_from(["minimize", "maximize"]))
def test_fuzz_never_crashes_and_never_passes_non_finite(values, direction):
    mon = StabilityMonitor(Stability(), direction=direction)
    for step, v in enumerate(values):
        reason = mon.update(step, v)
        assert reason in (None, "nan", "inf", "diverged", "oscillating")
        if not math.isfinite(v):
            assert reason is not None
        if reason is not None:
            assert mon.update(step + 1, 1.0) == reason  # stays stopped
            break


def test_single_spike_is_not_divergence():
    values = [2.3, 1.5, 1.0, 0.8, 0.7, 2.0, 0.6, 0.55, 0.5, 0.5, 0.49, 0.48]
    assert _run(values) == (None, None)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.floats(min_value=-1e300, max_value=1e300), min_size=1, max_size=40),
    st.floats(min_value=-1e300, max_value=1e300),
    st.integers(min_value=0),
    st.sampled_from(["minimize", "maximize"]),
    st.sampled_from([None, 3, 5]),
)
def test_single_spike_of_any_size_then_recovery_is_never_stopped(
    base, spike, where, direction, window
):
    # One spike of any size inserted anywhere into a sequence that would run to the end (a
    # non-increasing one). Defaults (window None): the spike makes one report rise, the next one
    # is back and patience 2 is not reached. With median_window 3 or 5 the median never moves on
    # a lone outlier, so a dip is covered too (except as the very first report, which is the
    # reference "first" value).
    base = sorted(base, reverse=True)
    where %= len(base) + 1
    if window is None:
        assume(spike >= base[max(where - 1, 0)])
    else:
        assume(where > 0 or spike >= base[0])
    values = list(base)
    values.insert(where, spike)
    if direction == "maximize":
        values = [-v for v in values]
    cfg = Stability() if window is None else Stability(median_window=window, patience=1)
    assert _run(values, cfg, direction=direction) == (None, None)


def test_heavy_tail_spike_shape_is_not_divergence():
    # benchmarks/curves.json.gz, heavy_tail_sgdm, lr 1e-4, recording seed 502: one spike at
    # epoch 4 (1.675 -> 9.603) in a run that ends at 0.036 (the task's oracle best is 0.043).
    curve = [3.379, 1.805, 1.675, 9.603, 0.931, 0.322, 0.757, 0.96, 0.66, 0.531, 0.161, 0.132,
             0.157, 0.153, 0.064, 0.049, 0.049, 0.119, 0.029, 0.036]
    assert _run(curve) == (None, None)
    # The old default (EMA 0.5, patience 1) stopped it at the spike.
    assert _run(curve, Stability(smoothing=0.5, patience=1)) == (3, "diverged")
    assert _run(curve, Stability(median_window=3, patience=1)) == (None, None)
    # The same shape that does not recover is still a divergence, one report later.
    assert _run([*curve[:4], 9.8, 11.0, 12.0]) == (4, "diverged")


def test_patience_needs_consecutive_reports():
    raw2 = Stability(median_window=1, patience=2, smoothing=0.0)
    assert _run([2.0, 1.0, 0.9, 20.0, 0.8, 0.7], raw2) == (None, None)
    assert _run([2.0, 1.0, 0.9, 20.0, 30.0, 40.0], raw2) == (4, "diverged")
    assert _run([2.0, 1.0, 0.9, 20.0, 30.0, 40.0], Stability(patience=1)) == (3, "diverged")
    mon = StabilityMonitor(raw2)
    assert [mon.update(i, v) for i, v in enumerate([2.0, 1.0, 20.0])] == [None, None, None]
    assert mon.suspect
    assert mon.update(3, 0.9) is None and not mon.suspect
    # NaN/inf stop at once whatever the patience.
    assert _run([2.0, 1.0, math.nan], Stability(patience=5)) == (2, "nan")


def test_rise_above_first_report_is_diverged():
    # Reporting the untrained loss at step 0 catches a first epoch that blew up, on the second
    # blown-up report (patience 2).
    assert _run([2.3, 250.0, 300.0]) == (2, "diverged")
    assert _run([2.3, 250.0, 300.0], Stability(patience=1)) == (1, "diverged")
    assert _run([2.3, 250.0, 300.0], Stability(median_window=3, patience=1)) == (2, "diverged")
    # Ten percent noise above the first report is tolerated.
    assert _run([2.3, 2.45, 2.3, 2.2, 2.1]) == (None, None)


def test_oscillation_is_detected_and_real_progress_is_not():
    swing = [1.0, 2.0] * 6
    osc = Stability(rise_over_first=None, divergence_factor=8.0, oscillation_window=8)
    assert _run(swing, osc) == (7, "oscillating")
    assert _run(swing, Stability(rise_over_first=None, divergence_factor=8.0)) == (None, None)
    noisy_progress = [1.0, 0.9, 0.95, 0.8, 0.85, 0.7, 0.75, 0.6, 0.65, 0.5, 0.55, 0.4]
    assert _run(noisy_progress, osc) == (None, None)


def test_maximize_mirrors_minimize():
    acc = [0.1, 0.6, 0.8, 0.85]
    assert _run(acc, direction="maximize") == (None, None)
    # Accuracy falling back below its first report (+10%) is divergence.
    assert _run([0.5, 0.8, 0.9, 0.1, 0.0, 0.0], direction="maximize")[1] == "diverged"
    loss = [2.3, 1.0, 0.5, 30.0, 40.0]
    assert _run(loss) == _run([-v for v in loss], direction="maximize")


def test_disabled_never_stops():
    assert _run([1.0, math.nan, math.inf, 1e9], Stability(enabled=False)) == (None, None)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"enabled": 1}, "enabled"),
        ({"median_window": 0}, "median_window"),
        ({"median_window": 3.0}, "median_window"),
        ({"median_window": True}, "median_window"),
        ({"patience": 0}, "patience"),
        ({"patience": "2"}, "patience"),
        ({"smoothing": 1.0}, "smoothing"),
        ({"smoothing": -0.1}, "smoothing"),
        ({"smoothing": "0.5"}, "smoothing"),
        ({"divergence_factor": 1.0}, "divergence_factor"),
        ({"divergence_factor": math.nan}, "divergence_factor"),
        ({"rise_over_first": -1.0}, "rise_over_first"),
        ({"oscillation_window": 3}, "oscillation_window"),
        ({"oscillation_window": 4.0}, "oscillation_window"),
        ({"oscillation_swing": 0.0}, "oscillation_swing"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Stability(**kwargs)


def test_config_is_frozen_and_keyword_only():
    cfg = Stability()
    with pytest.raises(AttributeError):
        cfg.smoothing = 0.1  # type: ignore[misc]
    with pytest.raises(TypeError):
        Stability(True)  # type: ignore[misc]
    with pytest.raises(ValueError, match="direction"):
        StabilityMonitor(cfg, direction="up")


def _digits_run(lr: float, seed: int, epochs: int = 8):
    """Adam on a 64-128-10 MLP (load_digits, standardized); val loss at step 0 and per epoch."""
    torch = pytest.importorskip("torch")
    datasets = pytest.importorskip("sklearn.datasets")
    import numpy as np

    torch.set_num_threads(1)
    x, y = datasets.load_digits(return_X_y=True)
    idx = np.random.RandomState(0).permutation(len(x))
    tr, va = idx[:1400], idx[1400:]
    x = (x - x[tr].mean(0)) / (x[tr].std(0) + 1e-8)
    xt, xv = (torch.tensor(x[i], dtype=torch.float32) for i in (tr, va))
    yt, yv = torch.tensor(y[tr]), torch.tensor(y[va])
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    mon = StabilityMonitor(Stability())
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs + 1):
        if epoch:
            perm = torch.randperm(len(xt), generator=gen)
            for i in range(0, len(xt), 64):
                b = perm[i : i + 64]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(xt[b]), yt[b]).backward()
                opt.step()
        with torch.no_grad():
            loss = float(torch.nn.functional.cross_entropy(model(xv), yv))
        reason = mon.update(epoch, loss)
        if reason is not None:
            return epoch + 1, reason  # number of reports made
    return None, None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_adam_lr_1_is_stopped_within_3_reports(seed):
    reports, reason = _digits_run(1.0, seed, epochs=3)
    assert reason in ("diverged", "nan")
    assert reports <= 3


def test_torch_adam_lr_1e_3_runs_to_the_end():
    assert _digits_run(1e-3, 0) == (None, None)
