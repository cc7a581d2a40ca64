"""Tune a LightningModule's ``lr`` the way ``Tuner.lr_find`` users expect, with autolr.

``autolr.lightning.tune_lr`` builds a fresh module and Trainer per trial, sets the trial's
learning rate on the module's ``lr`` attribute (or ``learning_rate``, in the module or its
``hparams``), and reports ``val_loss`` after every validation through ``AutolrCallback``, so
runs that blow up or trail the others stop early. A small MLP on scikit-learn's digits:

    python examples/lightning_digits.py                      # ~20 s on one CPU core
    python examples/lightning_digits.py --trials 6 --storage sqlite:///lit.db

Needs ``pip install autolr[lightning,sklearn]``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from typing import Any

import lightning as L
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from autolr.lightning import tune_lr


class DigitsMLP(L.LightningModule):
    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        self.lr = lr
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(),
                                       torch.nn.Linear(64, 10))

    def training_step(self, batch: Any, _: int) -> Any:
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch: Any, _: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class Digits(L.LightningDataModule):
    def setup(self, stage: str) -> None:
        x, y = load_digits(return_X_y=True)
        xt, xv, yt, yv = train_test_split(x / 16.0, y, test_size=0.3, random_state=0, stratify=y)
        tensors = lambda a, b: torch.utils.data.TensorDataset(  # noqa: E731
            torch.tensor(a, dtype=torch.float32), torch.tensor(b))
        self.train, self.val = tensors(xt, yt), tensors(xv, yv)

    def train_dataloader(self) -> Any:
        return torch.utils.data.DataLoader(self.train, batch_size=64, shuffle=True)

    def val_dataloader(self) -> Any:
        return torch.utils.data.DataLoader(self.val, batch_size=512)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--storage", default=None, help="default: a new temporary SQLite file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # "GPU available: False"
    warnings.filterwarnings("ignore", module="lightning")  # "does not have many workers" etc.
    storage = args.storage or f"sqlite:///{tempfile.mkdtemp(prefix='autolr-lit-')}/lit.db"

    def trainer() -> L.Trainer:
        return L.Trainer(max_epochs=args.epochs, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)

    result = tune_lr(module=DigitsMLP, trainer=trainer, datamodule=Digits(),
                     n_trials=args.trials, lr=(1e-4, 1.0), seed=0, storage=storage)
    print(f"recommended lr: {result.best_lr:.3g} (val_loss {result.best_value:.4f})")
    print(result.trials()[["number", "state", "lr", "value", "steps", "stop_reason"]]
          .to_string(index=False))
    model = DigitsMLP(lr=result.best_lr)  # train it for real from here
    print(f"model.lr = {model.lr:.3g}; study: {storage}")


if __name__ == "__main__":
    main()
