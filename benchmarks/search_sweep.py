"""Policy sweep: autolr's search (:func:`autolr._search.decide`) simulated on replayed curves.

A pure-Python copy of the loop in :mod:`autolr._search_loop` for one worker: ``Begin`` starts a
trial at ``10 ** x`` and plays its recorded curve to the budget (then it is ``paused``),
``Resume`` plays on, ``Halt`` stops it (``unstable`` when :func:`autolr._search.halt_reason`
says diverged, else ``stopped``), ``Done`` ends it and :func:`autolr._search.pick` chooses.
Every report passes the trial's own :class:`autolr._stability.StabilityMonitor` (default
``Stability()``) and the cross-trial :class:`autolr._peers.PeerScale`, as in the library: a
non-finite or diverging report makes the trial ``unstable``. Cost = reports / epochs.

A *policy* overrides the search's module constants (``FIRST_BUDGET``, ``KEEP``, ``HALF``,
``FINISH``, ``GROW_POINTS``, ``HALF_WIDTH``) for the duration of a run, or builds the spec
without the default-lr anchor or with full runs. autolr's source is never edited.

Run on the **tuning half only** (the held-out half is never looked at here), 40 seeds: for seed
``s`` the k-th run at grid point ``i`` replays seed index ``Random(f"{s}:{i}:{k}") % 4``.

Usage::

    python -m benchmarks.search_sweep                 # every policy, tuning half, 40 seeds
    python -m benchmarks.search_sweep --validate      # sim pick == the real library's, on replay
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from autolr import _search as S
from autolr._peers import PeerScale
from autolr._stability import Stability, StabilityMonitor
from benchmarks.judge import Judge
from benchmarks.replay import Curves, ReplayTask
from benchmarks.split import TUNING

SeedFn = Callable[[int, int], int]  # (grid index, k-th run there) -> seed index

POLICIES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "before: KEEP=3, HALF=0.5": {"KEEP": 3, "HALF": 0.5},
    "FIRST_BUDGET=1": {"FIRST_BUDGET": 1},
    "FIRST_BUDGET=3": {"FIRST_BUDGET": 3},
    "FIRST_BUDGET=4": {"FIRST_BUDGET": 4},
    "KEEP=3": {"KEEP": 3},
    "KEEP=4": {"KEEP": 4},
    "KEEP=6": {"KEEP": 6},
    "HALF=0.33": {"HALF": 0.33},
    "HALF=0.5": {"HALF": 0.5},
    "FINISH=1": {"FINISH": 1},
    "FINISH=3": {"FINISH": 3},
    "GROW_POINTS=1": {"GROW_POINTS": 1},
    "GROW_POINTS=4": {"GROW_POINTS": 4},
    "no growth": {"GROW_POINTS": 0},
    "HALF_WIDTH=1": {"HALF_WIDTH": 1.0},
    "HALF_WIDTH=1.5": {"HALF_WIDTH": 1.5},
    "HALF_WIDTH=3": {"HALF_WIDTH": 3.0},
    "no default-lr anchor": {"_anchor": False},
    "FIRST_BUDGET=3, KEEP=3, HALF=0.5": {"FIRST_BUDGET": 3, "KEEP": 3, "HALF": 0.5},
    "FIRST_BUDGET=4, KEEP=3, HALF=0.5": {"FIRST_BUDGET": 4, "KEEP": 3, "HALF": 0.5},
    "full runs": {"_full": True},
}
"""Policy name -> constant overrides (``_anchor``/``_full`` change the spec instead)."""


@contextlib.contextmanager
def overridden(consts: dict[str, Any]) -> Iterator[None]:
    """Set module constants of :mod:`autolr._search` for the block, then put them back."""
    old = {k: getattr(S, k) for k in consts if not k.startswith("_")}
    try:
        for k, v in consts.items():
            if not k.startswith("_"):
                setattr(S, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(S, k, v)


@dataclass
class _Trial:
    number: int
    x: float
    lr: float
    curve: list[float]
    monitor: StabilityMonitor
    scale: PeerScale
    made: int = 0
    status: str = "paused"
    reason: str | None = None
    values: list[float] = field(default_factory=list)


class Sim:
    """One simulated study on one replayed task."""

    def __init__(self, task: ReplayTask, seed_fn: SeedFn, *, anchor: bool = True,
                 full: bool = False) -> None:
        self.task = task
        self.seed_fn = seed_fn
        self.sign = 1.0 if task.direction == "minimize" else -1.0
        self.spec = S.SearchSpec.build(default_lr=task.default_lr if anchor else None,
                                       full_runs=full)
        self.trials: list[_Trial] = []
        self.runs_at: dict[int, int] = {}

    def oriented(self, v: float) -> float:
        o = self.sign * v
        return o if math.isfinite(o) else S.INF

    def seen(self) -> list[S.Seen]:
        out = []
        for t in self.trials:
            status = t.status
            final = self.oriented(t.values[-1]) if status == "complete" and t.values else None
            out.append(S.Seen(t.number, S.key(t.x), status,  # type: ignore[arg-type]
                              tuple(self.oriented(v) for v in t.values), final))
        return out

    def length(self) -> int | None:
        done = [t.made for t in self.trials if t.status == "complete"]
        return max(done) if done else None

    def healthy(self) -> list[tuple[float, list[float]]]:
        return [(t.lr, list(t.values)) for t in self.trials
                if t.values and t.status != "unstable" and t.reason != "no_progress"]

    def begin(self, x: float, budget: int | None) -> None:
        lr = 10.0**x
        i = self.task.index(lr)
        k = self.runs_at.get(i, 0)
        self.runs_at[i] = k + 1
        curve = self.task.curve(lr, self.seed_fn(i, k))
        self.task.started += 1
        t = _Trial(len(self.trials), x, lr, curve,
                   StabilityMonitor(Stability(), direction=self.task.direction),
                   PeerScale.of(self.healthy(), lr=lr, direction=self.task.direction))
        self.trials.append(t)
        self.advance(t, budget)

    def advance(self, t: _Trial, budget: int | None) -> None:
        """Play reports up to ``budget`` (None: the end). A run parks inside the report that
        reaches its budget, even its last one (it returns when resumed), as in the library."""
        while t.made < len(t.curve):
            if budget is not None and t.made >= budget:
                t.status = "paused"
                return
            v = t.curve[t.made]
            t.made += 1
            self.task.reports += 1
            t.values.append(v)
            reason = t.monitor.update(t.made, v)
            if reason is None and t.scale.judge(v) is not None:
                reason = "diverged"
            if reason is not None:
                t.status, t.reason = "unstable", reason
                return
        t.status = "paused" if budget is not None and t.made >= budget else "complete"

    def run(self, max_turns: int = 500) -> float | None:
        for _ in range(max_turns):
            seen = self.seen()
            actions = S.decide(self.spec, seen, length=self.length())
            for a in actions:
                if isinstance(a, S.Halt):
                    t = self.trials[a.number]
                    why = S.halt_reason(seen, a.number)
                    t.status = "unstable" if why == "diverged" else "stopped"
                    t.reason = why
            if any(isinstance(a, S.Done) for a in actions):
                break
            res = [a for a in actions if isinstance(a, S.Resume)]
            if res:
                t = self.trials[res[0].number]
                self.advance(t, res[0].budget)
                continue
            begins = [a for a in actions if isinstance(a, S.Begin)]
            if begins:
                self.begin(begins[0].x, begins[0].budget)
                continue
            if not any(isinstance(a, S.Halt) for a in actions):
                break  # Hold with one worker: nothing else can move
        best = S.pick(self.seen())
        return None if best is None else 10.0**best.x


def simulate(task: ReplayTask, seed_fn: SeedFn, policy: dict[str, Any]) -> float | None:
    """The pick of the search under ``policy`` on ``task`` (its ``reports`` count the cost)."""
    with overridden(policy):
        return Sim(task, seed_fn, anchor=policy.get("_anchor", True),
                   full=policy.get("_full", False)).run()


def random_seeds(s: int) -> SeedFn:
    return lambda i, k: random.Random(f"{s}:{i}:{k}").randrange(4)


def round_robin(s: int) -> SeedFn:
    """The seeds :mod:`benchmarks.tuners` gives a real run (tuner seed + k)."""
    return lambda i, k: s + k


def sweep(policies: dict[str, dict[str, Any]], n_seeds: int, curves: Curves, judge: Judge,
          tasks: tuple[str, ...] = TUNING) -> list[dict[str, Any]]:
    rows = []
    for name, pol in policies.items():
        t0 = time.perf_counter()
        hits, costs, per_task = 0, [], {}
        for ta in tasks:
            h = 0
            for s in range(n_seeds):
                rt = curves.task(ta)
                lr = simulate(rt, random_seeds(s), pol)
                v = judge(ta, lr)
                h += v.hit
                costs.append(rt.cost)
            per_task[ta] = h
            hits += h
        rows.append({"policy": name, "hits": hits, "n": len(tasks) * n_seeds,
                     "mean_cost": statistics.fmean(costs), "worst_cost": max(costs),
                     "per_task": per_task, "seconds": time.perf_counter() - t0})
    return rows


def render(rows: list[dict[str, Any]], tasks: tuple[str, ...], n_seeds: int) -> str:
    out = [f"Tuning half only ({len(tasks)} tasks x {n_seeds} seeds), simulated on replay.\n",
           "| policy | hits | hit % | mean cost (runs) | worst cost | tasks missed at least "
           "once (hits/seeds) |",
           "| --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        missed = ", ".join(f"{t} {h}/{n_seeds}" for t, h in r["per_task"].items() if h < n_seeds)
        out.append(f"| {r['policy']} | {r['hits']}/{r['n']} | {r['hits'] / r['n']:.0%} "
                   f"| {r['mean_cost']:.2f} | {r['worst_cost']:.2f} | {missed or '-'} |")
    return "\n".join(out)


def validate(tasks: list[str], seeds: list[int], curves: Curves) -> str:
    """The sim's pick and cost against the real library's on the same replayed curves."""
    from benchmarks.tuners import TUNERS

    out = ["| task | seed | real lr | sim lr | real cost | sim cost | same |",
           "| --- | ---: | ---: | ---: | ---: | ---: | :---: |"]
    for ta in tasks:
        for s in seeds:
            rt = curves.task(ta)
            real = TUNERS["autolr"](rt, seed=s)
            st = curves.task(ta)
            lr = simulate(st, round_robin(s), {})
            same = (real.lr is None and lr is None) or (
                real.lr is not None and lr is not None and abs(math.log10(real.lr / lr)) < 1e-6)
            out.append(f"| {ta} | {s} | {real.lr if real.lr is None else f'{real.lr:.4g}'} "
                       f"| {lr if lr is None else f'{lr:.4g}'} | {real.cost:.2f} | {st.cost:.2f} "
                       f"| {'yes' if same else 'NO'} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.search_sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--policy", action="append", choices=list(POLICIES))
    parser.add_argument("--validate", action="store_true",
                        help="compare the sim's picks with the real library's (tuning tasks)")
    parser.add_argument("--task", action="append", choices=list(TUNING),
                        help="only this tuning task")
    args = parser.parse_args(argv)
    curves, judge = Curves(), Judge()
    tasks = tuple(t for t in (args.task or TUNING) if t in curves.data["tasks"])
    if args.validate:
        print(validate(list(tasks), [0, 1, 2], curves))
        return 0
    t0 = time.perf_counter()
    pols = {k: POLICIES[k] for k in (args.policy or POLICIES)}
    rows = sweep(pols, args.seeds, curves, judge, tasks)
    print(render(rows, tasks, args.seeds))
    print(f"\n`python -m benchmarks.search_sweep --seeds {args.seeds}`: "
          f"{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
