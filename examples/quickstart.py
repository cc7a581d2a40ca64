"""Quickstart: tune the learning rate of a small PyTorch MLP on scikit-learn's digits.

Run it from the repository root (after ``pip install -e '.[torch,sklearn]'``)::

    python examples/quickstart.py

autolr measures the classic default lr = 1e-3 first, brackets the best region with about ten
learning rates (two epochs each, paused), resumes the most promising and finishes the best two:
about four runs of compute in all. It prints the recommended learning rate next to 1e-3, why,
and the trials table, and leaves the study in ``studies/autolr.db`` — open it with
``optuna-dashboard sqlite:///studies/autolr.db`` or read it back with ``autolr.load("digits_mlp")``.
Running it again reads the stored study instead of training again.
"""

from __future__ import annotations

import optuna
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import autolr

torch.set_num_threads(1)
optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar and the table say enough
X, y = load_digits(return_X_y=True)
X = torch.tensor(X / 16.0, dtype=torch.float32)
y = torch.tensor(y)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@autolr.tune
def digits_mlp(lr: float = 1e-3, epochs: int = 12, seed: int = 0) -> float:
    """Train an MLP with Adam at ``lr`` and return the validation loss."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    val_loss = float("nan")
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(X_train)).split(64):
            opt.zero_grad()
            loss_fn(model(X_train[idx]), y_train[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_loss = loss_fn(model(X_val), y_val).item()
        autolr.report(val_loss, step=epoch)  # lets autolr pause, compare and stop runs early
    return val_loss


if __name__ == "__main__":
    result = digits_mlp.run()
    trials = {t.params["lr"]: t for t in result.study.trials}
    default, best = trials[1e-3], result.recommended_trial
    step = max(default.intermediate_values)  # 1e-3 was stopped early: compare at its last epoch
    print()
    print(f"recommended lr : {result.best_lr:.3g}  (validation loss {result.best_value:.4f} after "
          f"{len(best.intermediate_values)} epochs)")
    print(f"default lr 1e-3: validation loss {default.intermediate_values[step]:.4f} after "
          f"{step + 1} epochs, where the recommended lr had "
          f"{best.intermediate_values[step]:.4f}")
    print()
    print(result.explain())
    print()
    print(result.trials()[["number", "state", "lr", "value", "steps", "stop_reason"]].to_string(index=False))
