"""The benchmark task suite: small torch trainings that run offline on one CPU thread.

Every task is a :class:`Task` whose ``train(lr, *, seed, epochs=None, report=None)`` trains a
model from scratch and returns the final validation loss (minimized). It calls
``report(val_loss, epoch)`` once per epoch (epochs count from 1), so a tuner can prune or a
stability monitor can stop it; whatever ``report`` raises propagates to the caller.

Data comes from the datasets scikit-learn ships or is generated here with a fixed seed; the
train/validation split is fixed per task; for a given ``(lr, seed)`` a run is deterministic.
The value returned is the raw validation loss, which may be ``nan`` or huge when the learning
rate is too high (real training code does that too); :meth:`Task.score` caps it at the loss of
a trivial predictor so that means over seeds stay finite.

Example::

    from benchmarks.tasks import TASKS
    task = TASKS["digits_adam"]
    print(task.train(1e-3, seed=0))
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

ReportFn = Callable[[float, int], None]

__all__ = ["TASKS", "QUICK_TASKS", "Task", "ReportFn"]


@dataclass(frozen=True)
class _Data:
    """Standardized tensors of one fixed train/validation split."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


@dataclass(frozen=True)
class Task:
    """One benchmark task.

    Args:
        name: short identifier used on the command line and in the tables.
        description: one line saying what the task is and why it is in the suite.
        kind: ``"classification"`` or ``"regression"``.
        optimizer: ``"adam"``, ``"adamw"``, ``"sgd"``, ``"sgdm"`` (momentum 0.9) or ``"rmsprop"``.
        epochs: epochs of one full training run (the unit of cost).
        batch_size: minibatch size.
        hidden: widths of the hidden layers of the MLP.
        loader: returns ``(x, y)`` numpy arrays of the whole dataset.
        activation: ``"relu"`` or ``"tanh"``.
        weight_decay: passed to the optimizer (AdamW only uses it decoupled).
        cap: the loss of a trivial predictor; :meth:`score` clips to it.
    """

    name: str
    description: str
    kind: str
    optimizer: str
    epochs: int
    batch_size: int
    hidden: tuple[int, ...]
    loader: Callable[[], tuple[np.ndarray, np.ndarray]] = field(repr=False)
    activation: str = "relu"
    weight_decay: float = 0.0
    cap: float = 1.0

    def score(self, value: float) -> float:
        """The value used for means over seeds: non-finite or worse-than-trivial becomes ``cap``."""
        if not math.isfinite(value) or value > self.cap:
            return self.cap
        return float(value)

    def train(
        self,
        lr: float,
        *,
        seed: int,
        epochs: int | None = None,
        report: ReportFn | None = None,
    ) -> float:
        """Train from scratch at learning rate ``lr`` and return the final validation loss.

        Args:
            lr: the learning rate.
            seed: seeds the weight initialization and the minibatch order.
            epochs: number of epochs (default: the task's full run).
            report: called as ``report(val_loss, epoch)`` after every epoch.
        """
        import torch

        torch.set_num_threads(1)
        data = _load(self.name)
        n_epochs = self.epochs if epochs is None else int(epochs)
        torch.manual_seed(seed)
        model = self._model(data)
        opt = self._optimizer(model, lr)
        loss_fn = self._loss_fn()
        gen = torch.Generator().manual_seed(seed)
        n = data.x_train.shape[0]
        val = float("nan")
        for epoch in range(1, n_epochs + 1):
            model.train()
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(data.x_train[idx]), data.y_train[idx])
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                val = float(loss_fn(model(data.x_val), data.y_val))
            if report is not None:
                report(val, epoch)
        return val

    def parts(
        self, lr: float, *, seed: int
    ) -> tuple[
        torch.nn.Module,
        torch.optim.Optimizer,
        Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        list[tuple[torch.Tensor, torch.Tensor]],
    ]:
        """A fresh model, its optimizer, the loss and one epoch of shuffled training batches.

        For tools that drive the training loop themselves (the LR range test).
        """
        import torch

        torch.set_num_threads(1)
        data = _load(self.name)
        torch.manual_seed(seed)
        model = self._model(data)
        opt = self._optimizer(model, lr)
        order = torch.randperm(data.x_train.shape[0], generator=torch.Generator().manual_seed(seed))
        batches = [
            (data.x_train[idx], data.y_train[idx]) for idx in order.split(self.batch_size)
        ]
        return model, opt, self._loss_fn(), batches

    # -- pieces -------------------------------------------------------------------------------

    def _model(self, data: _Data) -> torch.nn.Module:
        import torch

        act: type[torch.nn.Module] = torch.nn.ReLU if self.activation == "relu" else torch.nn.Tanh
        sizes = [data.x_train.shape[1], *self.hidden]
        layers: list[torch.nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [torch.nn.Linear(a, b), act()]
        n_out = int(data.y_train.max()) + 1 if self.kind == "classification" else 1
        layers.append(torch.nn.Linear(sizes[-1], n_out))
        return torch.nn.Sequential(*layers)

    def _optimizer(self, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
        import torch

        params = model.parameters()
        wd = self.weight_decay
        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=lr, weight_decay=wd)
        if self.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, weight_decay=wd)
        if self.optimizer == "sgdm":
            return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
        if self.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)
        raise ValueError(f"unknown optimizer {self.optimizer!r}")

    def _loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        import torch

        if self.kind == "classification":
            return torch.nn.functional.cross_entropy

        def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.mse_loss(pred.squeeze(-1), target)

        return mse


# -- data ---------------------------------------------------------------------------------------


def _sk(name: str) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def load() -> tuple[np.ndarray, np.ndarray]:
        import sklearn.datasets as ds

        x, y = getattr(ds, f"load_{name}")(return_X_y=True)
        return np.asarray(x, dtype=np.float64), np.asarray(y)

    return load


def _friedman() -> tuple[np.ndarray, np.ndarray]:
    """Friedman #1 regression (10 features, 5 informative), 1200 samples, fixed seed."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=1200, n_features=10, noise=0.5, random_state=7)
    return x, y


def _heavy_tail() -> tuple[np.ndarray, np.ndarray]:
    """Linear regression with feature scales spanning 30x, plus a few heavy-tailed rows."""
    rng = np.random.default_rng(11)
    n, d = 1000, 20
    scales = np.logspace(0, 1.5, d)
    x = rng.standard_normal((n, d)) * scales
    heavy = rng.random(n) < 0.02
    x[heavy] *= 4.0
    w = rng.standard_normal(d) / scales
    y = x @ w + 0.3 * rng.standard_normal(n)
    return x, y


@functools.lru_cache(maxsize=None)
def _load(name: str) -> _Data:
    """Load, split (75/25, fixed) and standardize a task's data; cached per process."""
    import torch
    from sklearn.model_selection import train_test_split

    task = TASKS[name]
    x, y = task.loader()
    classification = task.kind == "classification"
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y if classification else None
    )
    standardize_x = name != "heavy_tail_sgdm"  # that task keeps its raw feature scales
    if standardize_x:
        mu, sd = x_tr.mean(0), x_tr.std(0)
        sd = np.where(sd > 1e-6, sd, 1.0)  # digits has pixels that are always 0 in train
        x_tr, x_va = (x_tr - mu) / sd, (x_va - mu) / sd
    if classification:
        yt, yv = torch.as_tensor(y_tr, dtype=torch.long), torch.as_tensor(y_va, dtype=torch.long)
    else:
        ym, ys = y_tr.mean(), y_tr.std()
        yt = torch.as_tensor((y_tr - ym) / ys, dtype=torch.float32)
        yv = torch.as_tensor((y_va - ym) / ys, dtype=torch.float32)
    return _Data(
        torch.as_tensor(x_tr, dtype=torch.float32),
        yt,
        torch.as_tensor(x_va, dtype=torch.float32),
        yv,
    )


# -- the suite ----------------------------------------------------------------------------------

_TASK_LIST: list[Task] = [
    Task(
        name="digits_adam",
        description="digits (10 classes), MLP 64-64, Adam: the common case, default lr close to fine",
        kind="classification",
        optimizer="adam",
        epochs=15,
        batch_size=64,
        hidden=(64,),
        loader=_sk("digits"),
        cap=math.log(10),
    ),
    Task(
        name="wine_sgdm",
        description="wine (3 classes), MLP 32, SGD momentum 0.9: tiny data, wants lr >> 1e-3",
        kind="classification",
        optimizer="sgdm",
        epochs=20,
        batch_size=16,
        hidden=(32,),
        loader=_sk("wine"),
        cap=math.log(3),
    ),
    Task(
        name="breast_cancer_adamw",
        description="breast_cancer (2 classes), MLP 32-32, AdamW wd 1e-2: overfits at high lr",
        kind="classification",
        optimizer="adamw",
        epochs=20,
        batch_size=32,
        hidden=(32, 32),
        loader=_sk("breast_cancer"),
        weight_decay=1e-2,
        cap=math.log(2),
    ),
    Task(
        name="diabetes_rmsprop",
        description="diabetes regression, MLP 32, RMSprop: noisy target, flat valley, overfits",
        kind="regression",
        optimizer="rmsprop",
        epochs=25,
        batch_size=32,
        hidden=(32,),
        loader=_sk("diabetes"),
        cap=1.0,
    ),
    Task(
        name="iris_sgd",
        description="iris (3 classes), MLP 16 tanh, plain SGD: best lr ~ 100x the 1e-3 default",
        kind="classification",
        optimizer="sgd",
        epochs=20,
        batch_size=4,
        hidden=(16,),
        loader=_sk("iris"),
        activation="tanh",
        cap=math.log(3),
    ),
    Task(
        name="friedman_relu_adam",
        description="synthetic Friedman #1, narrow deep ReLU MLP 8-8-8, Adam: seed noise grows with lr",
        kind="regression",
        optimizer="adam",
        epochs=15,
        batch_size=32,
        hidden=(8, 8, 8),
        loader=_friedman,
        cap=1.0,
    ),
    Task(
        name="heavy_tail_sgdm",
        description=(
            "synthetic linear regression, raw scales, 2% heavy rows, SGD momentum: a cliff"
            " right above the optimum where some seeds blow up and a lucky one looks best"
        ),
        kind="regression",
        optimizer="sgdm",
        epochs=20,
        batch_size=32,
        hidden=(),
        loader=_heavy_tail,
        cap=1.0,
    ),
]

TASKS: dict[str, Task] = {t.name: t for t in _TASK_LIST}
"""All tasks by name, in suite order."""

QUICK_TASKS: tuple[str, ...] = ("digits_adam", "wine_sgdm")
"""The tasks ``python -m benchmarks --quick`` runs."""
