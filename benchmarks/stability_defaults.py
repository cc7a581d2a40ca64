"""Measure the defaults of `autolr.Stability`, `autolr.Pruning` and `recommend()`.

Runs small real torch trainings once (about a minute on one CPU thread), keeps every curve in
memory, then replays the curves through the pure logic under many settings:

1. Stability: which settings stop the unstable runs soonest without ever stopping a good run.
2. Pruning: compute saved versus how often the trial that would have been best is stopped, over
   simulated 20-trial random-search studies.
3. Recommendation: how often `recommend()` and argmin-of-one-run land within 10% of the oracle
   (best mean validation loss over 3 seeds on a dense log grid).

Prints markdown tables. Rerun with::

    OMP_NUM_THREADS=1 python benchmarks/stability_defaults.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, ".")
from autolr._pruning import PeerPruner  # noqa: E402
from autolr._pruning import Pruning  # noqa: E402
from autolr._recommend import recommend  # noqa: E402
from autolr._recommend import TrialSummary  # noqa: E402
from autolr._stability import Stability  # noqa: E402
from autolr._stability import StabilityMonitor  # noqa: E402


# ----------------------------------------------------------------------------- tasks


def _digits() -> tuple[torch.Tensor, ...]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    idx = np.random.RandomState(0).permutation(len(x))
    tr, va = idx[:1400], idx[1400:]
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-8
    x = (x - mu) / sd
    f = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return f(x[tr]), torch.tensor(y[tr]), f(x[va]), torch.tensor(y[va])


def run_epochs(data, lr: float, seed: int, epochs: int) -> tuple[list[float], list[float]]:
    """Adam, MLP 64-128-10; val loss and val accuracy at step 0 (untrained) and each epoch."""
    xt, yt, xv, yv = data
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    losses, accs = [], []

    def evaluate() -> None:
        with torch.no_grad():
            out = model(xv)
            losses.append(float(torch.nn.functional.cross_entropy(out, yv)))
            accs.append(float((out.argmax(1) == yv).float().mean()))

    evaluate()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 64):
            b = perm[i : i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[b]), yt[b]).backward()
            opt.step()
        evaluate()
    return losses, accs


def run_steps(data, lr: float, seed: int, epochs: int) -> list[float]:
    """SGD momentum 0.9, same MLP; the noisy minibatch training loss at every step."""
    xt, yt, _, _ = data
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 64):
            b = perm[i : i + 64]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[b]), yt[b])
            loss.backward()
            opt.step()
            out.append(float(loss.detach()))
    return out


# ----------------------------------------------------------------------------- replay


def replay(cfg: Stability, curve: list[float], direction: str = "minimize") -> int | None:
    """Index of the report that stops the curve, or None."""
    mon = StabilityMonitor(cfg, direction=direction)
    for i, v in enumerate(curve):
        if mon.update(i, v) is not None:
            return i
    return None


def q_end(curve: list[float], k: int) -> float:
    tail = curve[-k:]
    return math.inf if any(not math.isfinite(v) for v in tail) else sum(tail) / len(tail)


def labels(curves: list[list[float]], k: int) -> tuple[list[bool], list[bool]]:
    """(good, bad) per run: good = ends within 1.5x of the best run; bad = non-finite, ends
    above its first report, or ends 3x above its own minimum."""
    ends = [q_end(c, k) for c in curves]
    best = min(ends)
    good, bad = [], []
    for c, e in zip(curves, ends):
        fin = [v for v in c if math.isfinite(v)]
        nonfinite = len(fin) != len(c)
        bad.append(nonfinite or e > c[0] or e > 3 * min(fin))
        good.append(e <= 1.5 * best)
    return good, bad


def eval_stability(cfg: Stability, pools) -> dict[str, float]:
    good_stopped = 0
    caught = n_bad = 0
    delays = []
    saved = total = 0
    for curves, good, bad, direction in pools:
        for c, g, b in zip(curves, good, bad):
            at = replay(cfg, c, direction)
            total += len(c)
            if at is not None:
                saved += len(c) - at - 1
                good_stopped += g
            if b:
                n_bad += 1
                if at is not None:
                    caught += 1
                    delays.append(at + 1)
    return {
        "good_stopped": good_stopped,
        "caught": caught / max(n_bad, 1),
        "delay": statistics.median(delays) if delays else math.nan,
        "saved": saved / total,
    }


def simulate(
    pool: dict[tuple[float, int], list[float]],
    lrs: list[float],
    seeds: list[int],
    pruning: Pruning,
    stab: Stability,
    rng: random.Random,
    n_trials: int,
) -> tuple[list[TrialSummary], int, int, bool]:
    """One random-search study replayed from the pool; returns summaries, steps used, steps
    without pruning, and whether the trial with the best full-run final value was pruned."""
    trials: list[TrialSummary] = []
    curves: list[dict[int, float]] = []
    states: list[str] = []
    used = full = 0
    best_full = math.inf
    best_pruned = False
    for number in range(n_trials):
        lr = rng.choice(lrs)
        seed = rng.choice(seeds)
        curve = pool[(lr, seed)]
        pruner = PeerPruner(pruning, curves, states)
        mon = StabilityMonitor(stab)
        reason = None
        got: list[tuple[int, float]] = []
        for step, v in enumerate(curve):
            got.append((step, v))
            r = mon.update(step, v)
            if r is not None:
                reason = r
                break
            if pruning.enabled and pruner.should_stop(step, v):
                reason = "underperforming"
                break
        used += len(got)
        full += len(curve)
        final = curve[-1]
        if reason is None:
            state, value = "COMPLETE", final
        else:
            state, value = "PRUNED", None
        if math.isfinite(final) and final < best_full:
            best_full = final
            best_pruned = reason == "underperforming"
        trials.append(TrialSummary(number, lr, state, value, reason, tuple(got)))
        curves.append(dict(got))
        states.append(state)
    return trials, used, full, best_pruned


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (for a smoke test)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    data = _digits()
    epochs = 10
    grid = [float(x) for x in np.logspace(-5, -1, 21 if not args.quick else 9)]
    high = [0.3, 1.0]
    seeds = [0, 1, 2, 3]
    loss_pool: dict[tuple[float, int], list[float]] = {}
    acc_pool: dict[tuple[float, int], list[float]] = {}
    for lr in grid + high:
        for s in seeds:
            loss_pool[(lr, s)], acc_pool[(lr, s)] = run_epochs(data, lr, s, epochs)
    step_pool = {
        (lr, s): run_steps(data, lr, s, 2)
        for lr in [float(x) for x in np.logspace(-3, 0.5, 8)]
        for s in (0, 1)
    }
    t_train = time.time() - t0

    # -- 1. stability
    keys = sorted(loss_pool)
    loss_curves = [loss_pool[k] for k in keys]
    g1, b1 = labels(loss_curves, 1)
    acc_curves = [acc_pool[k] for k in keys]
    g1a = [g for g in g1]
    step_curves = [step_pool[k] for k in sorted(step_pool)]
    g2, b2 = labels(step_curves, 5)
    pools = [
        (loss_curves, g1, b1, "minimize"),
        (acc_curves, g1a, b1, "maximize"),
        (step_curves, g2, b2, "minimize"),
    ]
    rows = []
    for med, pat, sm, fac, rise, win, sw in itertools.product(
        [1, 3], [1, 2], [0.0, 0.3, 0.5, 0.7], [2.0, 4.0, 8.0], [0.0, 0.1, 0.5, None], [0, 6, 8],
        [0.1, 0.2, 0.5],
    ):
        if win == 0 and sw != 0.1:
            continue
        cfg = Stability(
            median_window=med,
            patience=pat,
            smoothing=sm,
            divergence_factor=fac,
            rise_over_first=rise,
            oscillation_window=win,
            oscillation_swing=sw,
        )
        rows.append((cfg, eval_stability(cfg, pools)))
    n_good = sum(g1) + sum(g1a) + sum(g2)
    n_bad = sum(b1) * 2 + sum(b2)
    print(f"## Stability ({len(keys)} epoch runs x loss+accuracy, {len(step_curves)} per-step "
          f"runs; {n_good} good, {n_bad} unstable curves; training took {t_train:.0f}s)\n")
    print("| median_window | patience | smoothing | divergence_factor | rise_over_first "
          "| osc window | osc swing | good runs stopped | unstable caught "
          "| median reports to stop | reports saved |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    safe = [r for r in rows if r[1]["good_stopped"] == 0]
    safe.sort(key=lambda r: (-r[1]["caught"], r[1]["delay"], -r[1]["saved"]))
    default = Stability()
    old_default = Stability(smoothing=0.5, patience=1)  # before patience (EMA 0.5 alone)
    extra = [default, old_default, Stability(median_window=3, smoothing=0.5, patience=1)]
    shown = safe[:8] + [r for e in extra for r in rows if r[0] == e and r not in safe[:8]]
    shown += sorted((r for r in safe if r[0].oscillation_window), key=lambda r: -r[1]["caught"])[:3]
    shown += sorted((r for r in rows if r[1]["good_stopped"] > 0), key=lambda r: -r[1]["caught"])[:3]
    for cfg, m in shown:
        mark = " (default)" if cfg == default else " (old default)" if cfg == old_default else ""
        print(f"| {cfg.median_window} | {cfg.patience} | {cfg.smoothing} | {cfg.divergence_factor} | {cfg.rise_over_first} | "
              f"{cfg.oscillation_window} | {cfg.oscillation_swing} | {m['good_stopped']} | "
              f"{m['caught']:.0%} | {m['delay']} | {m['saved']:.0%}{mark} |")

    # -- 2 + 3. pruning and recommendation on simulated studies
    oracle_seeds = [0, 1, 2]
    mean = {
        lr: statistics.fmean(
            loss_pool[(lr, s)][-1] if math.isfinite(loss_pool[(lr, s)][-1]) else 1e9
            for s in oracle_seeds
        )
        for lr in grid
    }
    oracle = min(mean.values())
    oracle_lr = min(mean, key=mean.get)
    n_studies = 200 if not args.quick else 30
    policies = [
        ("off", Pruning(enabled=False)),
        ("median, warmup 0.1", Pruning(warmup=0.1)),
        ("median, warmup 0.25", Pruning(warmup=0.25)),
        ("median, warmup 0.5", Pruning(warmup=0.5)),
        ("percentile 25, warmup 0.25", Pruning(policy="percentile", percentile=25.0)),
        ("percentile 75, warmup 0.25", Pruning(policy="percentile", percentile=75.0)),
        ("asha eta 3, warmup 0.1", Pruning(policy="asha", warmup=0.1)),
        ("median, warmup 0.25, min 8", Pruning(warmup=0.25, min_trials=8)),
    ]
    print(f"\n## Pruning and recommendation ({n_studies} random-search studies of 20 trials "
          f"over {len(grid)} lrs in [1e-5, 1e-1] x {len(seeds)} seeds; oracle best mean loss "
          f"{oracle:.4f} at lr={oracle_lr:.2g})\n")
    print("| pruning | compute used | best trial pruned | recommend() within 10% "
          "| argmin within 10% |")
    print("| --- | --- | --- | --- | --- |")
    stab = Stability()
    for name, pr in policies:
        rng = random.Random(0)
        used = full = lost = hit_rec = hit_arg = 0
        for _ in range(n_studies):
            trials, u, f, bp = simulate(loss_pool, grid, seeds, pr, stab, rng, 20)
            used += u
            full += f
            lost += bp
            rec = recommend(trials)
            if rec.lr is not None and mean[rec.lr] <= 1.1 * oracle:
                hit_rec += 1
            done = [t for t in trials if t.state == "COMPLETE"]
            if done:
                arg = min(done, key=lambda t: t.value)
                hit_arg += mean[arg.lr] <= 1.1 * oracle
        print(f"| {name} | {used / full:.0%} | {lost / n_studies:.0%} | "
              f"{hit_rec / n_studies:.0%} | {hit_arg / n_studies:.0%} |")

    print("\n## Recommendation bandwidth (stability on, pruning off)\n")
    print("| bandwidth (decades) | recommend() within 10% | mean loss ratio to oracle |")
    print("| --- | --- | --- |")
    for bw in [0.1, 0.2, 0.3, 0.5, 0.8]:
        rng = random.Random(1)
        hits = 0
        ratios = []
        for _ in range(n_studies):
            trials, *_ = simulate(loss_pool, grid, seeds, Pruning(enabled=False), stab, rng, 20)
            rec = recommend(trials, bandwidth=bw)
            r = mean[rec.lr] / oracle if rec.lr is not None else math.inf
            hits += r <= 1.1
            ratios.append(r)
        print(f"| {bw} | {hits / n_studies:.0%} | {statistics.median(ratios):.2f} (median) |")

    print("\n## Mean final val loss over seeds 0-2 on the grid (the oracle)\n")
    print("| lr | " + " | ".join(f"{lr:.1e}" for lr in grid[::2]) + " |")
    print("| --- | " + " | ".join("---" for _ in grid[::2]) + " |")
    print("| mean | " + " | ".join(f"{mean[lr]:.3g}" for lr in grid[::2]) + " |")
    print("| seeds min-max | " + " | ".join(
        f"{min(loss_pool[(lr, s)][-1] for s in seeds):.3g}-"
        f"{max(loss_pool[(lr, s)][-1] for s in seeds):.3g}" for lr in grid[::2]) + " |")
    print(f"\nTotal {time.time() - t0:.0f}s. Rerun: OMP_NUM_THREADS=1 python "
          "benchmarks/stability_defaults.py" + (" --quick" if args.quick else ""))


if __name__ == "__main__":
    main()
