"""How stable and how good are the LR range test's suggestions? Prints a markdown table.

For each task: run ``find_lr`` with 5 seeds (model init, batch order and sweep), and train the
task's full run at every suggestion (3 training seeds each); against it, the dense-grid optimum:
the task trained at 4 points per decade over [1e-5, 1] with 3 seeds, best mean validation loss.

    python -m benchmarks.finder_quality            # ~2 minutes on one CPU core
    python -m benchmarks.finder_quality --tasks digits_adam --seeds 3
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from autolr._grid import log_grid
from benchmarks.tasks import TASKS, _load

DEFAULT_TASKS = ("digits_adam", "wine_sgdm", "breast_cancer_adamw", "diabetes_rmsprop")
METHODS = ("minimum", "steepest", "valley")


def finder_suggestions(name: str, seed: int) -> dict[str, float | None]:
    """One range test on the task's model, optimizer, loss and shuffled training batches."""
    import torch

    from autolr.torch import find_lr

    task, data = TASKS[name], _load(name)
    torch.manual_seed(seed)
    model = task._model(data)
    opt = task._optimizer(model, 1e-3)
    ds = torch.utils.data.TensorDataset(data.x_train, data.y_train)
    gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=task.batch_size, shuffle=True,
                                         generator=gen)
    return find_lr(model, opt, task._loss_fn(), loader, seed=seed).suggestions


def mean_loss(name: str, lr: float, seeds: int) -> float:
    task = TASKS[name]
    return float(np.mean([task.score(task.train(lr, seed=s)) for s in range(seeds)]))


def main() -> None:
    import torch

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    ap.add_argument("--seeds", type=int, default=5, help="finder seeds")
    ap.add_argument("--train-seeds", type=int, default=3)
    args = ap.parse_args()
    t0 = time.time()
    print("| task | grid optimum lr (val loss) | lr 1e-3 | method | suggestions over seeds "
          "| spread (decades, max-min) | val loss at suggestion (mean) | in search_range |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.tasks:
        grid = log_grid(1e-5, 1.0, points_per_decade=4)
        losses = {lr: mean_loss(name, lr, args.train_seeds) for lr in grid}
        best_lr = min(losses, key=losses.__getitem__)
        at_default = mean_loss(name, 1e-3, args.train_seeds)
        runs = [finder_suggestions(name, seed) for seed in range(args.seeds)]
        for method in METHODS:
            sugg = [r[method] for r in runs]
            ok = [s for s in sugg if s is not None]
            logs = np.log10(ok)
            val = np.mean([mean_loss(name, s, args.train_seeds) for s in ok])
            covered = sum(s / 10 <= best_lr <= s * 10 for s in ok)  # search_range() default
            print(f"| {name} | {best_lr:.2g} ({losses[best_lr]:.4f}) | {at_default:.4f} | "
                  f"{method} | {', '.join(f'{s:.2g}' for s in ok)} | "
                  f"{logs.max() - logs.min():.2f} | {val:.4f} | {covered}/{len(ok)} |",
                  flush=True)
    print(f"\n{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
