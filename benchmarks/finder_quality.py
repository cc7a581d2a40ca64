"""How good are LR range-test suggestions? autolr's rule against the peers', side by side.

For each task (defined below, on data scikit-learn ships or generates, nothing downloaded) and
each finder seed (model init, batch order, sweep):

- autolr's sweep (``autolr.torch.find_lr``) gives autolr's suggestion, the candidate rules the
  default was chosen from, and fastai's ``valley`` (fastai's rule on fastai's curve: the same
  bias-corrected moving average, 10% / last 5 points skipped);
- torch-lr-finder's sweep, re-implemented here step for step (``range_test`` defaults:
  start 1e-7, end 10, 100 steps, ``smooth_f=0.05`` moving average started at the first loss,
  stop at 5x the best smoothed loss) gives its two peer rules: the lr at the minimum of its
  smoothed curve / 10, and its ``plot()`` suggestion, the steepest index gradient after skipping
  10 points at the start and 5 at the end.

Every suggestion is then retrained: the task's full run at that lr, ``--train-seeds`` seeds,
mean validation loss (a run that ends non-finite or worse than a trivial predictor scores the
trivial predictor's loss). Against it, the dense-grid best: the same runs at 4 points per
decade over [1e-5, 1], best mean. The table prints ``retrained loss / grid-best loss`` (1.00 is
the grid's best; lower is better) per task and rule, then the means over the tuning tasks (the
default rule was chosen on these only) and over the held-out tasks (reported as they fall).

    python -m benchmarks.finder_quality                  # ~2 minutes on one CPU core
    python -m benchmarks.finder_quality --tasks digits_adam --seeds 2 --train-seeds 1
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

# -- the tasks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """A small torch training run: ``train(lr, seed)`` returns the final validation loss."""

    name: str
    data: str
    optimizer: str
    epochs: int
    batch_size: int = 64
    hidden: int = 64
    model: str = "mlp"
    tuning: bool = True

    @property
    def regression(self) -> bool:
        return self.data in ("diabetes", "friedman")


TASKS = {
    t.name: t
    for t in (
        # the tuning half: the default rule is chosen on these
        Task("digits_adam", "digits", "adam", epochs=10),
        Task("breast_cancer_adamw", "breast_cancer", "adamw", epochs=20, batch_size=32),
        Task("diabetes_rmsprop", "diabetes", "rmsprop", epochs=30, batch_size=32),
        Task("digits_sgdm", "digits", "sgdm", epochs=10),
        # the held-out half: reported as it falls
        Task("noisy_blobs_adam_bn", "noisy_blobs", "adam", epochs=8, model="mlp_bn", tuning=False),
        Task("friedman_sgdm", "friedman", "sgdm", epochs=15, batch_size=32, tuning=False),
        Task("digits_cnn_adam", "digits", "adam", epochs=6, model="cnn", tuning=False),
        Task("breast_cancer_sgdm", "breast_cancer", "sgdm", epochs=20, batch_size=32,
             tuning=False),
    )
}


@functools.cache
def dataset(name: str) -> tuple[Any, Any, Any, Any]:
    """Standardized train/validation tensors of a fixed 70/30 split."""
    import torch
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    if name == "digits":
        x, y = datasets.load_digits(return_X_y=True)
    elif name == "breast_cancer":
        x, y = datasets.load_breast_cancer(return_X_y=True)
    elif name == "diabetes":
        x, y = datasets.load_diabetes(return_X_y=True)
    elif name == "noisy_blobs":  # 5 overlapping classes, 8% flipped labels: loss stays > 0
        x, y = datasets.make_classification(n_samples=2000, n_features=20, n_informative=8,
                                            n_classes=5, flip_y=0.08, random_state=0)
    elif name == "friedman":
        x, y = datasets.make_friedman1(n_samples=1500, n_features=10, noise=1.0, random_state=0)
    else:
        raise ValueError(f"unknown dataset {name!r}")
    regression = name in ("diabetes", "friedman")
    xt, xv, yt, yv = train_test_split(x, y, test_size=0.3, random_state=0,
                                      stratify=None if regression else y)
    mu, sd = xt.mean(0), np.where(xt.std(0) > 0, xt.std(0), 1.0)
    xt, xv = (xt - mu) / sd, (xv - mu) / sd
    if regression:
        ym, ys = yt.mean(), yt.std()
        yt, yv = (yt - ym) / ys, (yv - ym) / ys
        ydt = torch.float32
    else:
        ydt = torch.long
    f = torch.float32
    return (torch.as_tensor(xt, dtype=f), torch.as_tensor(yt, dtype=ydt),
            torch.as_tensor(xv, dtype=f), torch.as_tensor(yv, dtype=ydt))


def build(task: Task, seed: int) -> tuple[Any, Any, Callable[[Any, Any], Any]]:
    """(model, optimizer at lr 1e-3, loss function), initialized from ``seed``."""
    import torch
    from torch import nn

    xt, yt, _, _ = dataset(task.data)
    n_in, n_out = xt.shape[1], 1 if task.regression else int(yt.max()) + 1
    torch.manual_seed(seed)
    h = task.hidden
    if task.model == "cnn":
        model: nn.Module = nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 16, n_out))
    elif task.model == "mlp_bn":
        model = nn.Sequential(nn.Linear(n_in, h), nn.BatchNorm1d(h), nn.ReLU(),
                              nn.Linear(h, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, n_out))
    else:
        model = nn.Sequential(nn.Linear(n_in, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                              nn.Linear(h, n_out))
    params = model.parameters()
    lr = 1e-3
    opt = {
        "adam": lambda: torch.optim.Adam(params, lr=lr),
        "adamw": lambda: torch.optim.AdamW(params, lr=lr, weight_decay=1e-2),
        "rmsprop": lambda: torch.optim.RMSprop(params, lr=lr),
        "sgdm": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9),
    }[task.optimizer]()
    if task.regression:
        return model, opt, lambda out, y: nn.functional.mse_loss(out.squeeze(-1), y)
    return model, opt, nn.functional.cross_entropy


def batches(task: Task, seed: int) -> Iterator[tuple[Any, Any]]:
    """Shuffled training mini-batches, epoch after epoch, forever."""
    import torch

    xt, yt, _, _ = dataset(task.data)
    g = torch.Generator().manual_seed(seed)
    while True:
        for idx in torch.randperm(len(xt), generator=g).split(task.batch_size):
            yield xt[idx], yt[idx]


def trivial_loss(task: Task) -> float:
    """The validation loss of predicting the training mean (regression) or class frequencies."""
    _, yt, _, yv = dataset(task.data)
    if task.regression:
        return float(((yv - yt.mean()) ** 2).mean())
    p = np.bincount(yt.numpy(), minlength=int(yt.max()) + 1) / len(yt)
    return float(-np.log(p[yv.numpy()]).mean())


@functools.cache
def retrained(task_name: str, lr: float, seed: int) -> float:
    """The task's full run at ``lr``: final validation loss, capped at the trivial predictor's."""
    import torch

    task = TASKS[task_name]
    model, opt, loss_fn = build(task, seed)
    for g in opt.param_groups:
        g["lr"] = lr
    _, _, xv, yv = dataset(task.data)
    stream = batches(task, seed)
    steps = task.epochs * math.ceil(len(dataset(task.data)[0]) / task.batch_size)
    model.train()
    for _ in range(steps):
        x, y = next(stream)
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        value = float(loss_fn(model(xv), yv))
    cap = trivial_loss(task)
    return value if math.isfinite(value) and value < cap else cap


def mean_retrained(task_name: str, lr: float, train_seeds: int) -> float:
    lr = float(f"{lr:.4g}")  # suggestions a hair apart share their runs
    return float(np.mean([retrained(task_name, lr, 100 + s) for s in range(train_seeds)]))


# -- the sweeps and the rules ---------------------------------------------------------------------


def autolr_sweep(task: Task, seed: int) -> Any:
    from autolr.torch import find_lr

    model, opt, loss_fn = build(task, seed)
    return find_lr(model, opt, loss_fn, batches(task, seed), seed=seed)


def torch_lr_finder_sweep(
    task: Task, seed: int, *, start_lr: float = 1e-7, end_lr: float = 10.0, num_iter: int = 100,
    smooth_f: float = 0.05, diverge_th: float = 5.0,
) -> tuple[list[float], list[float]]:
    """torch-lr-finder's ``range_test`` (its defaults), step for step: (lrs, smoothed losses)."""
    import torch

    model, opt, loss_fn = build(task, seed)
    torch.manual_seed(seed)
    stream = batches(task, seed)
    lrs: list[float] = []
    history: list[float] = []
    best = math.inf
    model.train()
    for i in range(num_iter):
        lr = start_lr * (end_lr / start_lr) ** (i / (num_iter - 1))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = next(stream)
        opt.zero_grad()
        loss_t = loss_fn(model(x), y)
        loss_t.backward()
        opt.step()
        loss = loss_t.item()
        lrs.append(lr)
        if i == 0:
            best = loss
        else:
            loss = smooth_f * loss + (1 - smooth_f) * history[-1]
            best = min(best, loss)
        history.append(loss)
        if loss > diverge_th * best:  # NaN compares False: a NaN curve runs on, as theirs does
            break
    return lrs, history


def peer_min10(lrs: list[float], losses: list[float]) -> float | None:
    """The lr at the minimum of torch-lr-finder's smoothed curve, / 10."""
    y = np.asarray(losses, dtype=float)
    if not np.isfinite(y).any():
        return None
    return float(lrs[int(np.nanargmin(np.where(np.isfinite(y), y, np.nan)))] / 10)


def peer_steepest(lrs: list[float], losses: list[float]) -> float | None:
    """torch-lr-finder's ``plot()`` suggestion: steepest index gradient, 10 / 5 points skipped."""
    x, y = lrs[10:-5], np.asarray(losses[10:-5], dtype=float)
    if len(y) < 2 or not np.isfinite(y).all():
        finite = np.isfinite(y)
        n = int(np.argmin(finite)) if not finite.all() else len(y)
        x, y = x[:n], y[:n]
        if len(y) < 2:
            return None
    return float(x[int(np.argmin(np.gradient(y)))])


def centred_min(divisor: float) -> Callable[[Any], float | None]:
    """A candidate autolr rule: the lr at the minimum of the centred curve, / ``divisor``."""

    from autolr.torch._finder import MIN_DIVISOR

    def rule(result: Any) -> float | None:
        m = result.suggestions["minimum"]
        return None if m is None else m * MIN_DIVISOR / divisor

    return rule


# -- the run --------------------------------------------------------------------------------------

#: Rules read from autolr's sweep: autolr's default first, then the candidates it was chosen from.
AUTOLR_RULES: dict[str, Callable[[Any], float | None]] = {
    "autolr (default)": lambda r: r.suggestion,
    "centred min / 10": centred_min(10),
    "centred min / 5": centred_min(5),
    "centred min / 3": centred_min(3),
    "autolr steepest (up to the minimum)": lambda r: r.suggestions["steepest"],
    "fastai valley": lambda r: r.suggestions["valley"],
}
PEER_RULES = {
    "torch-lr-finder min / 10": peer_min10,
    "torch-lr-finder steepest": peer_steepest,
}
RULES = (*AUTOLR_RULES, *PEER_RULES)


def main() -> None:
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--seeds", type=int, default=3, help="finder seeds per task")
    ap.add_argument("--train-seeds", type=int, default=2, help="training seeds per lr")
    args = ap.parse_args()
    t0 = time.time()
    grid = [10 ** (k / 4) for k in range(-20, 1)]
    ratios: dict[str, dict[str, float]] = {}
    suggestions: dict[str, dict[str, list[float]]] = {}
    best: dict[str, tuple[float, float]] = {}
    for name in args.tasks:
        task = TASKS[name]
        losses = {lr: mean_retrained(name, lr, args.train_seeds) for lr in grid}
        best_lr = min(losses, key=losses.__getitem__)
        best[name] = (best_lr, losses[best_lr])
        per_rule: dict[str, list[float]] = {r: [] for r in RULES}
        for seed in range(args.seeds):
            result = autolr_sweep(task, seed)
            lrs, smoothed = torch_lr_finder_sweep(task, seed)
            for rule, fn in AUTOLR_RULES.items():
                per_rule[rule].append(fn(result) or math.nan)
            for rule, peer in PEER_RULES.items():
                per_rule[rule].append(peer(lrs, smoothed) or math.nan)
        suggestions[name] = per_rule
        ratios[name] = {
            rule: float(np.mean([
                (mean_retrained(name, s, args.train_seeds) if math.isfinite(s)
                 else trivial_loss(task)) / losses[best_lr]
                for s in lrs_
            ]))
            for rule, lrs_ in per_rule.items()
        }
        print(f"{name}: done ({time.time() - t0:.0f} s)", flush=True)

    print(f"\nretrained loss / dense-grid best (1.00 = the grid's best; mean over {args.seeds} "
          f"finder seeds x {args.train_seeds} training seeds; lower is better)\n")
    names = list(ratios)
    print("| rule | " + " | ".join(
        f"{n}{'' if TASKS[n].tuning else ' (held out)'}" for n in names
    ) + " | mean, tuning | mean, held out |")
    print("| --- " * (len(names) + 3) + "|")
    for rule in RULES:
        row = [ratios[n][rule] for n in names]
        tuning = [ratios[n][rule] for n in names if TASKS[n].tuning]
        held = [ratios[n][rule] for n in names if not TASKS[n].tuning]
        mean = lambda v: f"{np.mean(v):.3f}" if v else "-"  # noqa: E731
        print(f"| {rule} | " + " | ".join(f"{v:.3f}" for v in row)
              + f" | {mean(tuning)} | {mean(held)} |")
    print("\n| task | grid best lr (val loss) | " + " | ".join(RULES) + " |")
    print("| --- " * (len(RULES) + 2) + "|")
    for n in names:
        cells = []
        for rule in RULES:
            ok = [s for s in suggestions[n][rule] if math.isfinite(s)]
            cells.append(f"{10 ** np.mean(np.log10(ok)):.2g}" if ok else "none")
        print(f"| {n} | {best[n][0]:.2g} ({best[n][1]:.4f}) | " + " | ".join(cells) + " |")
    print(f"\n(suggestions: geometric mean over seeds)  {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
