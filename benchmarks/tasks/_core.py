"""The :class:`Task` type, the registry, the shared data loaders and the shared training loop."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

ReportFn = Callable[[float, int], None]
TrainFn = Callable[[float, int, "ReportFn | None"], float]
PartsFn = Callable[[float, int], tuple[Any, Any, Any, list[Any]]]

REGISTRY: dict[str, Task] = {}


@dataclass(frozen=True)
class Task:
    """One benchmark task.

    Args:
        name: identifier used on the command line and in the tables.
        family: the module it lives in (``mlp``, ``conv``, ``seq``, ``misc``, ``adapted``).
        description: the train function's docstring: what it is, why, the source if adapted.
        default_lr: the learning rate the training script uses by itself.
        epochs: reports in one full run (the unit of cost).
        direction: ``"minimize"`` (a loss) or ``"maximize"`` (an accuracy).
        cap: a trivial predictor's value (uniform / mean prediction, or chance accuracy);
            :meth:`score` clips to it.
        fn: ``fn(lr, seed, report) -> final value``.
        parts_fn: ``parts_fn(lr, seed) -> (model, optimizer, loss_fn, batches)`` for tools that
            drive the loop themselves (the LR range test); None when the task has no such shape.
    """

    name: str
    family: str
    description: str
    default_lr: float
    epochs: int
    direction: str
    cap: float
    fn: TrainFn = field(repr=False)
    parts_fn: PartsFn | None = field(default=None, repr=False)
    settings: str = ""
    """The settings of a task built by :func:`mlp_task` (its train function is shared)."""

    @property
    def summary(self) -> str:
        """The docstring's first paragraph on one line."""
        return " ".join(self.description.strip().split("\n\n")[0].split())

    def train(self, lr: float, *, seed: int, report: ReportFn | None = None) -> float:
        """Train from scratch at ``lr``; ``report(value, epoch)`` after every epoch."""
        import torch

        torch.set_num_threads(1)
        return float(self.fn(float(lr), int(seed), report))

    def score(self, value: float) -> float:
        """The value means are taken over: non-finite or worse than trivial becomes ``cap``."""
        if not math.isfinite(value):
            return self.cap
        if self.direction == "minimize":
            return min(float(value), self.cap)
        return max(float(value), self.cap)

    def oriented(self, value: float) -> float:
        """``score`` made lower-is-better (an accuracy is negated)."""
        v = self.score(value)
        return v if self.direction == "minimize" else -v

    def parts(self, lr: float, *, seed: int) -> tuple[Any, Any, Any, list[Any]]:
        """A fresh model, its optimizer, the loss and one epoch of shuffled batches."""
        if self.parts_fn is None:
            raise NotImplementedError(f"{self.name} has no model/optimizer/loader parts")
        import torch

        torch.set_num_threads(1)
        return self.parts_fn(float(lr), int(seed))


def task(
    *,
    default_lr: float,
    epochs: int,
    cap: float,
    direction: str = "minimize",
    parts: PartsFn | None = None,
    name: str | None = None,
) -> Callable[[TrainFn], TrainFn]:
    """Register the decorated ``fn(lr, seed, report)`` as a task named after it."""

    def deco(fn: TrainFn) -> TrainFn:
        tname = name or fn.__name__
        if tname in REGISTRY:
            raise ValueError(f"task {tname!r} registered twice")
        REGISTRY[tname] = Task(
            name=tname,
            family=fn.__module__.rsplit(".", 1)[-1],
            description=inspect.cleandoc(fn.__doc__ or ""),
            default_lr=float(default_lr),
            epochs=int(epochs),
            direction=direction,
            cap=float(cap),
            fn=fn,
            parts_fn=parts,
        )
        return fn

    return deco


# -- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    """Tensors of one fixed train/validation split."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor

    @property
    def n_classes(self) -> int:
        return int(self.y_train.max()) + 1


def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "friedman":
        from sklearn.datasets import make_friedman1

        return make_friedman1(n_samples=1200, n_features=10, noise=0.5, random_state=7)
    if name == "heavy_tail":
        rng = np.random.default_rng(11)
        n, d = 1000, 20
        scales = np.logspace(0, 1.5, d)
        x = rng.standard_normal((n, d)) * scales
        heavy = rng.random(n) < 0.02
        x[heavy] *= 4.0
        w = rng.standard_normal(d) / scales
        return x, x @ w + 0.3 * rng.standard_normal(n)
    import sklearn.datasets as ds

    x, y = getattr(ds, f"load_{name}")(return_X_y=True)
    return np.asarray(x, dtype=np.float64), np.asarray(y)


@functools.lru_cache(maxsize=None)
def load(
    name: str,
    *,
    classification: bool,
    scale_x: str = "standard",
    label_noise: float = 0.0,
) -> Data:
    """A dataset split 75/25 (fixed), ``x`` standardized (or ``"minmax"``, or ``"none"``), a
    regression target standardized; ``label_noise``: that share of training labels replaced by
    random classes (fixed seed; validation labels stay clean)."""
    import torch
    from sklearn.model_selection import train_test_split

    x, y = _raw(name)
    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y if classification else None
    )
    if scale_x == "standard":
        mu, sd = x_tr.mean(0), x_tr.std(0)
        sd = np.where(sd > 1e-6, sd, 1.0)
        x_tr, x_va = (x_tr - mu) / sd, (x_va - mu) / sd
    elif scale_x == "minmax":
        lo, hi = x_tr.min(0), x_tr.max(0)
        span = np.where(hi - lo > 1e-9, hi - lo, 1.0)
        x_tr, x_va = (x_tr - lo) / span, (x_va - lo) / span
    if classification:
        y_tr = np.asarray(y_tr).copy()
        if label_noise:
            rng = np.random.default_rng(123)
            flip = rng.random(len(y_tr)) < label_noise
            y_tr[flip] = rng.integers(0, int(y.max()) + 1, int(flip.sum()))
        yt = torch.as_tensor(y_tr, dtype=torch.long)
        yv = torch.as_tensor(y_va, dtype=torch.long)
    else:
        ym, ys = y_tr.mean(), y_tr.std()
        yt = torch.as_tensor((y_tr - ym) / ys, dtype=torch.float32)
        yv = torch.as_tensor((y_va - ym) / ys, dtype=torch.float32)
    f32 = torch.float32
    return Data(torch.as_tensor(x_tr, dtype=f32), yt, torch.as_tensor(x_va, dtype=f32), yv)


# -- metrics and the loop -----------------------------------------------------------------------


def accuracy(out: torch.Tensor, y: torch.Tensor) -> float:
    """Share of correct argmax predictions; ``nan`` when the outputs are not finite."""
    import torch

    if not bool(torch.isfinite(out).all()):
        return float("nan")
    return float((out.argmax(-1) == y).float().mean())


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.nn.functional.mse_loss(pred.reshape(target.shape), target)


def huber(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.nn.functional.huber_loss(pred.reshape(target.shape), target)


def broken(model: torch.nn.Module) -> bool:
    """Some parameter is not finite: every later value is ``nan`` too."""
    import torch

    return any(not bool(torch.isfinite(p).all()) for p in model.parameters())


def fit(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer | None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    data: Data,
    *,
    epochs: int,
    batch: int,
    seed: int,
    report: ReportFn | None,
    metric: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
    step_sched: Any = None,
    epoch_sched: Any = None,
    clip: float | None = None,
    update: Callable[[], None] | None = None,
    before_epoch: Callable[[int], None] | None = None,
) -> float:
    """Minibatch training with a fixed shuffle per seed; validation after every epoch.

    ``metric(out, y)`` is the reported value (default: ``loss_fn`` on the validation set);
    ``update`` replaces ``opt.step()`` (hand-written updates). Once a parameter is non-finite the
    rest of the run is ``nan`` (what training would produce) and is not computed.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    n = data.x_train.shape[0]
    val = float("nan")
    dead = False
    for epoch in range(1, epochs + 1):
        if not dead:
            if before_epoch is not None:
                before_epoch(epoch)
            model.train()
            for idx in torch.randperm(n, generator=gen).split(batch):
                model.zero_grad(set_to_none=True)
                loss = loss_fn(model(data.x_train[idx]), data.y_train[idx])
                loss.backward()
                if clip is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                if update is not None:
                    with torch.no_grad():
                        update()
                elif opt is not None:
                    opt.step()
                if step_sched is not None:
                    step_sched.step()
            if epoch_sched is not None:
                epoch_sched.step()
            model.eval()
            with torch.no_grad():
                out = model(data.x_val)
                val = float(metric(out, data.y_val) if metric else loss_fn(out, data.y_val))
            dead = not math.isfinite(val) and broken(model)
        else:
            val = float("nan")
        if report is not None:
            report(val, epoch)
    return val


def batches_of(data: Data, batch: int, seed: int) -> list[tuple[Any, Any]]:
    """One epoch of shuffled training batches (for the LR range test)."""
    import torch

    order = torch.randperm(data.x_train.shape[0], generator=torch.Generator().manual_seed(seed))
    return [(data.x_train[i], data.y_train[i]) for i in order.split(batch)]


def mlp(sizes: Sequence[int], act: str = "relu", bn: bool = False) -> torch.nn.Sequential:
    """Linear layers of ``sizes`` with ``act`` (and BatchNorm) between them."""
    import torch

    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            if bn:
                layers.append(torch.nn.BatchNorm1d(b))
            layers.append(torch.nn.ReLU() if act == "relu" else torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def warmup_cosine(opt: Any, total: int, warmup: int) -> Any:
    """Linear warmup over ``warmup`` steps, then cosine to 0 at ``total`` (a LambdaLR)."""
    import torch

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        p = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, p)))

    return torch.optim.lr_scheduler.LambdaLR(opt, f)


def make_opt(kind: str, params: Any, lr: float, wd: float = 0.0) -> torch.optim.Optimizer:
    """``adam``, ``adamw``, ``sgd``, ``sgdm`` (momentum 0.9), ``nesterov``, ``rmsprop``,
    ``adagrad`` or ``adadelta`` with torch's defaults otherwise."""
    import torch

    o = torch.optim
    table: dict[str, Callable[[], torch.optim.Optimizer]] = {
        "adam": lambda: o.Adam(params, lr=lr, weight_decay=wd),
        "adamw": lambda: o.AdamW(params, lr=lr, weight_decay=wd),
        "sgd": lambda: o.SGD(params, lr=lr, weight_decay=wd),
        "sgdm": lambda: o.SGD(params, lr=lr, momentum=0.9, weight_decay=wd),
        "nesterov": lambda: o.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd),
        "rmsprop": lambda: o.RMSprop(params, lr=lr, weight_decay=wd),
        "adagrad": lambda: o.Adagrad(params, lr=lr, weight_decay=wd),
        "adadelta": lambda: o.Adadelta(params, lr=lr, weight_decay=wd),
    }
    return table[kind]()


def mlp_task(
    name: str,
    description: str,
    *,
    dataset: str,
    classification: bool,
    hidden: Sequence[int],
    opt: str,
    epochs: int,
    batch: int,
    default_lr: float,
    cap: float,
    act: str = "relu",
    wd: float = 0.0,
    scale_x: str = "standard",
    label_noise: float = 0.0,
    bn: bool = False,
    loss: str = "auto",
    metric: str = "loss",
    schedule: str | None = None,
    family: str = "mlp",
) -> Task:
    """Register an MLP task (one of the many shapes the families share) and return it."""
    import torch

    def setup(lr: float, seed: int) -> tuple[Any, Any, Any, Data]:
        data = load(dataset, classification=classification, scale_x=scale_x,
                    label_noise=label_noise)
        torch.manual_seed(seed)
        n_out = data.n_classes if classification else 1
        model = mlp([data.x_train.shape[1], *hidden, n_out], act=act, bn=bn)
        optimizer = make_opt(opt, model.parameters(), lr, wd)
        if classification:
            loss_fn: Any = torch.nn.functional.cross_entropy
        else:
            loss_fn = huber if loss == "huber" else mse
        return model, optimizer, loss_fn, data

    def fn(lr: float, seed: int, report: ReportFn | None) -> float:
        model, optimizer, loss_fn, data = setup(lr, seed)
        steps = epochs * math.ceil(data.x_train.shape[0] / batch)
        step_sched = epoch_sched = None
        if schedule == "warmup_cosine":
            step_sched = warmup_cosine(optimizer, steps, max(1, steps // 10))
        elif schedule == "onecycle":
            step_sched = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr,
                                                             total_steps=steps)
        elif schedule == "step":
            epoch_sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3),
                                                          gamma=0.1)
        return fit(model, optimizer, loss_fn, data, epochs=epochs, batch=batch, seed=seed,
                   report=report, metric=accuracy if metric == "accuracy" else None,
                   step_sched=step_sched, epoch_sched=epoch_sched)

    def parts(lr: float, seed: int) -> tuple[Any, Any, Any, list[Any]]:
        model, optimizer, loss_fn, data = setup(lr, seed)
        return model, optimizer, loss_fn, batches_of(data, batch, seed)

    settings = repr(dict(dataset=dataset, classification=classification, hidden=tuple(hidden),
                         opt=opt, batch=batch, act=act, wd=wd, scale_x=scale_x,
                         label_noise=label_noise, bn=bn, loss=loss, schedule=schedule))
    t = Task(name=name, family=family, description=inspect.cleandoc(description),
             default_lr=float(default_lr), epochs=epochs,
             direction="maximize" if metric == "accuracy" else "minimize", cap=float(cap),
             fn=fn, parts_fn=parts, settings=settings)
    if name in REGISTRY:
        raise ValueError(f"task {name!r} registered twice")
    REGISTRY[name] = t
    return t
