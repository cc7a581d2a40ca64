"""Search optimizer, learning rate and schedule together for a small MLP on digits.

Each trial picks an optimizer (Adam, AdamW, RMSprop or SGD with momentum, each at its own scale
of the study's ``lr``) and a schedule (constant, step, exponential, cosine, cyclic, one-cycle or
reduce-on-plateau, with warm-up where it applies), trains 8 epochs and reports the validation
loss every epoch so autolr can stop bad trials early.

    python examples/optimizer_schedule_search.py            # study in a temporary directory
    python examples/optimizer_schedule_search.py --trials 40 --storage sqlite:///mine.db

Needs ``pip install autolr[torch,sklearn]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import optuna
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import autolr
import autolr.torch

EPOCHS = 8
BATCH = 64


def data() -> tuple[torch.Tensor, ...]:
    x, y = load_digits(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    mu, sd = x_tr.mean(0), np.where(x_tr.std(0) > 0, x_tr.std(0), 1.0)
    f = lambda a: torch.as_tensor((a - mu) / sd, dtype=torch.float32)  # noqa: E731
    return f(x_tr), torch.as_tensor(y_tr), f(x_va), torch.as_tensor(y_va)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--storage", default=None, help="default: a SQLite file in a temp directory")
    args = ap.parse_args()
    storage = args.storage or f"sqlite:///{Path(tempfile.mkdtemp(prefix='autolr-')) / 'db'}"
    torch.set_num_threads(1)
    x_tr, y_tr, x_va, y_va = data()
    steps_per_epoch = -(-len(x_tr) // BATCH)

    @autolr.tune(n_trials=args.trials, seed=0, lr=(1e-5, 1e-1), storage=storage,
                 study_name="digits_optimizer_schedule")
    def train(lr: float, trial: optuna.Trial | None = None) -> float:
        assert trial is not None
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
        )
        opt = autolr.torch.optimizer(trial, model.parameters(), lr=lr)
        sched = autolr.torch.scheduler(trial, opt, steps_per_epoch=steps_per_epoch, epochs=EPOCHS)
        gen = torch.Generator().manual_seed(0)
        val = float("nan")
        for epoch in range(EPOCHS):
            model.train()
            order = torch.randperm(len(x_tr), generator=gen)
            for i in range(0, len(x_tr), BATCH):
                idx = order[i : i + BATCH]
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(model(x_tr[idx]), y_tr[idx]).backward()
                opt.step()
                sched.step()  # after every optimizer step
            model.eval()
            with torch.no_grad():
                val = torch.nn.functional.cross_entropy(model(x_va), y_va).item()
            sched.epoch_end(val)  # after every epoch (plateau needs the metric)
            autolr.report(val, step=epoch)
        return val

    result = train.run()
    best = result.best_trial
    table = result.trials()
    cols = [c for c in ("number", "state", "lr", "value", "param_optimizer", "param_scheduler",
                        "stop_reason") if c in table.columns]
    print(table[cols].to_string(max_rows=16))
    if best is not None:
        print(f"\nbest val loss {result.best_value:.4f}: {best.params}")
        print(f"effective lr {best.user_attrs.get('autolr.effective_lr'):.3g} "
              f"(study lr {best.params['lr']:.3g})")
    print(f"storage: {storage}")


if __name__ == "__main__":
    main()
