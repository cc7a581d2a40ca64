"""autolr's search as pure logic: what it decides from the trials it sees (no Optuna, no I/O)."""

from __future__ import annotations

import math
import random

import pytest

from autolr._search import (
    FIRST_BUDGET,
    HALF,
    KEEP,
    Begin,
    Done,
    Halt,
    Hold,
    Resume,
    SearchSpec,
    Seen,
    decide,
    pick,
)

SPEC = SearchSpec.build(default_lr=None)


class Sim:
    """Carries out the search's decisions on a response surface, one worker, counting reports."""

    def __init__(self, spec: SearchSpec, curve, length: int = 12) -> None:
        self.spec, self.curve, self.length = spec, curve, length
        self.trials: list[dict] = []
        self.reports = 0
        self.learned: int | None = None

    def seen(self) -> list[Seen]:
        out = []
        for n, t in enumerate(self.trials):
            final = t["values"][-1] if t["status"] == "complete" else None
            out.append(Seen(n, t["x"], t["status"], tuple(t["values"]), final))
        return out

    def advance(self, n: int, budget: int | None) -> None:
        t = self.trials[n]
        while budget is None or len(t["values"]) < budget:
            if len(t["values"]) == self.length:
                t["status"] = "complete"
                self.learned = self.learned or self.length
                return
            v = self.curve(t["x"], len(t["values"]) + 1)
            t["values"].append(v)
            self.reports += 1
            if not math.isfinite(v):
                t["status"] = "unstable"
                return
        t["status"] = "paused" if len(t["values"]) < self.length else "complete"
        if t["status"] == "complete":
            self.learned = self.learned or self.length

    def run(self, max_turns: int = 200) -> float | None:
        for _ in range(max_turns):
            actions = decide(self.spec, self.seen(), length=self.learned)
            for a in actions:
                if isinstance(a, Halt):
                    self.trials[a.number]["status"] = "stopped"
            step = next((a for a in actions if isinstance(a, (Begin, Resume, Done, Hold))), None)
            if isinstance(step, Done):
                best = pick(self.seen())
                return None if best is None else best.x
            if isinstance(step, Begin):
                self.trials.append({"x": step.x, "values": [], "status": "paused"})
                self.advance(len(self.trials) - 1, step.budget)
            elif isinstance(step, Resume):
                self.advance(step.number, step.budget)
            elif step is None and not any(isinstance(a, Halt) for a in actions):
                raise AssertionError(f"nothing to do: {actions}")
            assert not isinstance(step, Hold), "one worker never waits on itself"
        raise AssertionError("the search did not end")


def bowl(best_x: float, *, cliff: float = 1.5, noise: float = 0.0, seed: int = 0):
    """Loss after ``step`` reports at log10 lr ``x``: fastest and lowest near ``best_x``,
    diverging past ``best_x + cliff``."""
    rng = random.Random(seed)

    def curve(x: float, step: int) -> float:
        if x > best_x + cliff:
            return 10.0 * step if step < 3 else math.nan
        speed = 10 ** (-0.5 * max(0.0, best_x - x)) * 0.6
        floor = 0.05 + 0.1 * (x - best_x) ** 2
        return floor + (1 - floor) * (1 - speed) ** step + rng.gauss(0, noise)

    return curve


def test_the_anchors_come_first_on_a_grid_half_a_decade_apart() -> None:
    assert SPEC.grid() == [-5.0, -4.5, -4.0, -3.5, -3.0, -2.5, -2.0, -1.5, -1.0]
    first = decide(SPEC, [], length=None)
    assert first[0] == Begin(-3.0, FIRST_BUDGET)
    assert {a.x for a in first if isinstance(a, Begin)} == set(SPEC.grid())
    own = SearchSpec.build(default_lr=1.0)
    assert own.anchors == (-3.0, 0.0) and own.grid()[0] == -3.5 and own.grid()[-1] == 0.5
    begins = [a.x for a in decide(own, [], length=None) if isinstance(a, Begin)]
    assert begins[:2] == [0.0, -3.0]  # the function's own default and 1e-3 before the rest


@pytest.mark.parametrize("best_x", [-5.5, -3.0, -1.25, 0.6, 1.4])
def test_the_search_finds_the_optimum_wherever_it_is(best_x: float) -> None:
    sim = Sim(SPEC, bowl(best_x))
    picked = sim.run()
    assert picked is not None and abs(picked - best_x) <= 0.5
    assert sim.reports / sim.length < 6  # runs of compute


def test_a_range_the_user_gave_is_never_left() -> None:
    spec = SearchSpec.build(default_lr=None, lr_range=(1e-4, 1e-2))
    sim = Sim(spec, bowl(0.5))
    picked = sim.run()
    assert all(-4.0 <= t["x"] <= -2.0 for t in sim.trials)
    assert picked == -2.0  # on the edge: the caller warns about it


def test_halving_keeps_five_and_the_next_lower_lr_then_finishes_two() -> None:
    sim = Sim(SPEC, bowl(-2.0))
    sim.run()
    by_reports = sorted(len(t["values"]) for t in sim.trials)
    assert (KEEP, HALF) == (5, 0.25)
    assert by_reports.count(12) == 2 + 0  # two finished (the first one that finished is one)
    # the five survivors and the one below reach a quarter of the run (3 of 12 reports)
    assert sum(1 for r in by_reports if r >= 3) == KEEP + 1
    assert all(t["status"] in ("complete", "stopped", "unstable") for t in sim.trials)


def test_a_lost_point_is_owed_again_but_not_forever() -> None:
    lost = Seen(0, -3.0, "lost")
    assert decide(SPEC, [lost], length=None)[0] == Begin(-3.0, FIRST_BUDGET)
    twice = [lost, Seen(1, -3.0, "lost")]
    assert all(a.x != -3.0 for a in decide(SPEC, twice, length=None) if isinstance(a, Begin))


def test_what_a_lost_trial_reported_still_counts() -> None:
    """A trial parked at its budget when the process died (or Ctrl-C) is not run again for it."""
    lost = Seen(0, -3.0, "lost", (1.0, 0.8))
    assert all(a.x != -3.0 for a in decide(SPEC, [lost], length=None) if isinstance(a, Begin))
    short = Seen(0, -3.0, "lost", (1.0,))
    assert decide(SPEC, [short], length=None)[0] == Begin(-3.0, FIRST_BUDGET)


def test_busy_points_are_waited_for_and_paused_ones_resumed() -> None:
    seen = [Seen(i, x, "paused", (1.0, 0.5)) for i, x in enumerate(SPEC.grid())]
    seen[0] = Seen(0, seen[0].x, "busy", (1.0,))
    assert decide(SPEC, seen, length=None) == [Hold()]


def test_the_run_length_is_learned_from_the_best_survivor() -> None:
    seen = [Seen(i, x, "paused", (1.0, 0.5 + abs(x + 2.5))) for i, x in enumerate(SPEC.grid())]
    actions = decide(SPEC, seen, length=None)
    halts = {a.number for a in actions if isinstance(a, Halt)}
    # the 5 best (ties: the lower lr first) and the next lower one
    kept = {i for i, s in enumerate(seen) if s.x in (-2.5, -3.0, -2.0, -3.5, -1.5, -4.0)}
    assert halts == set(range(len(seen))) - kept
    best = next(i for i, s in enumerate(seen) if s.x == -2.5)
    assert [a for a in actions if isinstance(a, Resume)] == [Resume(best, None)]


def test_n_trials_caps_the_search_and_it_still_ends() -> None:
    spec = SearchSpec.build(default_lr=None, max_trials=5)
    sim = Sim(spec, bowl(-2.0))
    assert sim.run() is not None
    assert len(sim.trials) == 5


def test_full_runs_when_asked_or_when_the_function_barely_reports() -> None:
    spec = SearchSpec.build(default_lr=None, full_runs=True)
    first = decide(spec, [], length=None)
    assert isinstance(first[0], Begin) and first[0].budget is None
    assert {a.x for a in first if isinstance(a, Begin)} == {-5.0, -4.0, -3.0, -2.0, -1.0}
    sim = Sim(spec, bowl(0.3), length=1)
    picked = sim.run()
    assert picked is not None and abs(picked - 0.3) <= 0.5
    short = Sim(SPEC, bowl(-2.0), length=2)  # learned after the first trial: full runs
    assert short.run() is not None and all(t["status"] != "paused" for t in short.trials)


def test_the_pick_is_the_median_of_the_last_reports_not_one_lucky_value() -> None:
    lucky = Seen(0, -2.0, "complete", (0.5, 0.4, 0.1), final=0.1)
    steady = Seen(1, -2.5, "complete", (0.21, 0.2, 0.2), final=0.2)
    assert pick([lucky, steady]) is steady
    assert pick([Seen(2, -1.0, "unstable", (1.0, math.inf))]) is None


@pytest.mark.parametrize("seed", range(20))
def test_noisy_surfaces_always_end_within_the_cap_and_near_the_best(seed: int) -> None:
    rng = random.Random(seed)
    best_x = rng.uniform(-6.0, 1.5)
    sim = Sim(SPEC, bowl(best_x, noise=0.002, seed=seed), length=rng.randint(5, 30))
    picked = sim.run()
    assert picked is not None and abs(picked - best_x) <= 0.75
    assert len(sim.trials) <= 20
