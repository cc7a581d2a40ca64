from __future__ import annotations

import math

import pytest

from autolr._pruning import PeerPruner
from autolr._pruning import Pruning


def _curve(start: float, rate: float, n: int = 20) -> dict[int, float]:
    return {s: start * rate**s for s in range(n)}


REFS = [_curve(2.0, r) for r in (0.7, 0.75, 0.8, 0.85, 0.9)]
STATES = ["COMPLETE"] * len(REFS)


def _first_stop(pruner: PeerPruner, curve: dict[int, float]) -> int | None:
    for step, v in sorted(curve.items()):
        if pruner.should_stop(step, v):
            return step
    return None


def test_slow_trial_is_stopped_after_warmup_and_good_one_is_not():
    slow = _curve(2.0, 0.98)
    at = _first_stop(PeerPruner(Pruning(), REFS, STATES), slow)
    assert at == 5  # warm-up is 25% of the median length 19 -> first decision at step 5
    assert _first_stop(PeerPruner(Pruning(), REFS, STATES), _curve(2.0, 0.72)) is None


def test_median_threshold_and_best_so_far():
    pruner = PeerPruner(Pruning(warmup=0.0), REFS, STATES)
    assert pruner.threshold(1) == pytest.approx(2.0 * 0.8)
    # best so far counts: a late bad report does not stop a trial that was good
    assert not pruner.should_stop(1, 1.0)
    assert not pruner.should_stop(2, 5.0)


def test_disabled_min_trials_and_non_complete_references():
    assert _first_stop(PeerPruner(Pruning(enabled=False), REFS, STATES), _curve(2, 1.0)) is None
    few = PeerPruner(Pruning(min_trials=6), REFS, STATES)
    assert _first_stop(few, _curve(2.0, 1.0)) is None
    pruned = PeerPruner(Pruning(partial=False), REFS, ["PRUNED"] * 5)
    assert pruned.n_references == 0
    assert _first_stop(pruned, _curve(2.0, 1.0)) is None
    failed = PeerPruner(Pruning(), REFS, ["FAIL"] * 5)
    assert failed.n_references == 0
    assert _first_stop(failed, _curve(2.0, 1.0)) is None


def test_partial_references_count_up_to_the_step_they_reached():
    # Default partial=True: two trials stopped at step 6 and one completed trial are
    # references; the full length (19) comes from the completed one, so the warm-up is step 5.
    cut = [{s: v for s, v in c.items() if s <= 6} for c in REFS[:2]]
    pruner = PeerPruner(Pruning(), [*cut, REFS[2]], ["PRUNED", "PRUNED", "COMPLETE"])
    assert pruner.n_references == 3
    assert _first_stop(pruner, _curve(2.0, 0.98)) == 5
    assert pruner.threshold(10) is None  # only one reference ran that far (min_trials 2)


def test_beyond_the_references_no_decision():
    pruner = PeerPruner(Pruning(), REFS, STATES)
    assert pruner.threshold(100) is None
    assert not pruner.should_stop(100, 1e9)


def test_maximize_mirrors_minimize():
    acc_refs = [{s: -v for s, v in c.items()} for c in REFS]
    slow = {s: -v for s, v in _curve(2.0, 0.98).items()}
    pruner = PeerPruner(Pruning(), acc_refs, STATES, direction="maximize")
    assert _first_stop(pruner, slow) == 5


def test_asha_decides_only_at_rungs():
    pruner = PeerPruner(Pruning(policy="asha", warmup=0.1), REFS, STATES)
    # rungs at 1.9, 5.7, 17.1 -> first decision at step 2
    assert _first_stop(pruner, _curve(2.0, 0.98)) == 2
    p2 = PeerPruner(Pruning(policy="asha", warmup=0.1), REFS, STATES)
    v = 2.0 * 0.75**2  # in the best third at rung 1 (step 2), not at steps 4-6
    assert not p2.should_stop(2, v)
    assert not p2.should_stop(4, v)  # between rungs: no decision
    assert p2.should_stop(6, v)  # rung 5.7
    # a trial in the best third continues through every rung
    assert _first_stop(PeerPruner(Pruning(policy="asha"), REFS, STATES), _curve(2.0, 0.7)) is None


def test_percentile_is_stricter_than_median():
    mid = _curve(2.0, 0.78)
    assert _first_stop(PeerPruner(Pruning(), REFS, STATES), mid) is None
    strict = Pruning(policy="percentile", percentile=25.0)
    assert _first_stop(PeerPruner(strict, REFS, STATES), mid) is not None


def test_nan_in_references_and_values_is_ignored():
    refs = [{**c, 3: math.nan} for c in REFS]
    pruner = PeerPruner(Pruning(warmup=0.0), refs, STATES)
    assert not pruner.should_stop(0, math.nan)
    assert pruner.threshold(3) == pytest.approx(pruner.threshold(2))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"enabled": "yes"}, "enabled"),
        ({"policy": "hyperband"}, "policy"),
        ({"percentile": 0.0}, "percentile"),
        ({"percentile": 100}, "percentile"),
        ({"reduction_factor": 1}, "reduction_factor"),
        ({"warmup": 1.0}, "warmup"),
        ({"min_trials": 0}, "min_trials"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Pruning(**kwargs)


def test_mismatched_snapshot_is_rejected():
    with pytest.raises(ValueError, match="same length"):
        PeerPruner(Pruning(), REFS, STATES[:-1])
