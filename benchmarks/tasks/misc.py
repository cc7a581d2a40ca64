"""Autoencoders, linear and logistic models, hand-written updates, sharp cliffs."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from benchmarks.tasks._core import Data, ReportFn, accuracy, fit, huber, load, mlp, mse, task


def _ae_data(scale: str) -> Data:
    d = load("digits", classification=True, scale_x=scale)
    return Data(d.x_train, d.x_train, d.x_val, d.x_val)


@task(default_lr=1e-3, epochs=10, cap=1.0)
def digits_autoencoder_adam(lr: float, seed: int, report: ReportFn | None) -> float:
    """Autoencoder 64-32-8-32-64 (ReLU) reconstructing standardized digits, Adam, batch 64, 10 epochs,
    MSE on the validation images."""
    import torch

    data = _ae_data("standard")
    torch.manual_seed(seed)
    model = mlp([64, 32, 8, 32, 64])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return fit(model, opt, mse, data, epochs=10, batch=64, seed=seed, report=report)


@task(default_lr=1.0, epochs=8, cap=0.06)
def digits_autoencoder_bn_adadelta(lr: float, seed: int, report: ReportFn | None) -> float:
    """Autoencoder with BatchNorm (64-64-16-64-64, sigmoid output) on digits scaled to 0..1,
    Adadelta (default lr 1.0), 8 epochs, MSE. Adadelta wants lrs of order 1-10."""
    import torch

    data = _ae_data("minmax")
    torch.manual_seed(seed)
    model = torch.nn.Sequential(mlp([64, 64, 16, 64, 64], bn=True), torch.nn.Sigmoid())
    opt = torch.optim.Adadelta(model.parameters(), lr=lr)
    return fit(model, opt, mse, data, epochs=8, batch=64, seed=seed, report=report)


def _logistic_parts(lr: float, seed: int) -> tuple[Any, Any, Any, list[Any]]:
    import torch

    from benchmarks.tasks._core import batches_of

    data = load("digits", classification=True)
    torch.manual_seed(seed)
    model = torch.nn.Linear(64, 10)
    opt = torch.optim.Adagrad(model.parameters(), lr=lr)
    return model, opt, torch.nn.functional.cross_entropy, batches_of(data, 64, seed)


@task(default_lr=1e-2, epochs=15, cap=math.log(10), parts=_logistic_parts)
def digits_logistic_adagrad(lr: float, seed: int, report: ReportFn | None) -> float:
    """Multinomial logistic regression on standardized digits, Adagrad, 15 epochs, CE.
    A convex model: no overfitting to speak of, best lr far above 1e-3."""
    import torch

    model, opt, loss_fn, _ = _logistic_parts(lr, seed)
    data = load("digits", classification=True)
    return fit(model, opt, loss_fn, data, epochs=15, batch=64, seed=seed, report=report)


@functools.lru_cache(maxsize=None)
def _outliers() -> Data:
    """Linear regression, 10 standardized features, 10% of training targets corrupted by +-8."""
    import torch

    rng = np.random.default_rng(21)
    n, d = 800, 10
    x = rng.standard_normal((n, d))
    w = rng.standard_normal(d)
    y = x @ w / math.sqrt(d) + 0.2 * rng.standard_normal(n)
    bad = rng.random(600) < 0.1
    y_tr = y[:600].copy()
    y_tr[bad] += rng.choice([-8.0, 8.0], int(bad.sum()))
    f = torch.float32
    return Data(torch.as_tensor(x[:600], dtype=f), torch.as_tensor(y_tr, dtype=f),
                torch.as_tensor(x[600:], dtype=f), torch.as_tensor(y[600:], dtype=f))


@task(default_lr=1e-2, epochs=15, cap=0.45)
def linear_outliers_huber_sgd(lr: float, seed: int, report: ReportFn | None) -> float:
    """Linear regression with 10% corrupted training targets, Huber loss, plain SGD, batch 32,
    15 epochs; the validation value is the Huber loss on clean targets."""
    import torch

    data = _outliers()
    torch.manual_seed(seed)
    model = torch.nn.Linear(10, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return fit(model, opt, huber, data, epochs=15, batch=32, seed=seed, report=report)


@functools.lru_cache(maxsize=None)
def _ill_conditioned() -> Data:
    """Least squares with feature scales 0.1 .. 3 (raw): gradient descent is stable below
    lr = 2 / lambda_max and blows up right above it."""
    import torch

    rng = np.random.default_rng(31)
    n, d = 500, 12
    scales = np.logspace(-1, math.log10(3), d)
    x = rng.standard_normal((n, d)) * scales
    w = rng.standard_normal(d) / scales
    y = x @ w
    y = (y - y.mean()) / y.std() + 0.1 * rng.standard_normal(n)
    f = torch.float32
    return Data(torch.as_tensor(x[:400], dtype=f), torch.as_tensor(y[:400], dtype=f),
                torch.as_tensor(x[400:], dtype=f), torch.as_tensor(y[400:], dtype=f))


@task(default_lr=1e-2, epochs=25, cap=1.5)
def gd_cliff_hand(lr: float, seed: int, report: ReportFn | None) -> float:
    """Full-batch gradient descent written by hand (``w -= lr * grad``) on ill-conditioned
    least squares, 4 steps per epoch, 25 epochs, MSE. The best lr sits just under a sharp
    divergence cliff (2 / largest curvature); one step past it the loss explodes."""
    import torch

    data = _ill_conditioned()
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(12, generator=g) * 0.1).requires_grad_()
    b = torch.zeros(1, requires_grad=True)
    val = float("nan")
    for epoch in range(1, 26):
        for _ in range(4):
            loss = ((data.x_train @ w + b - data.y_train) ** 2).mean()
            gw, gb = torch.autograd.grad(loss, (w, b))
            with torch.no_grad():
                w -= lr * gw
                b -= lr * gb
        with torch.no_grad():
            val = float(((data.x_val @ w + b - data.y_val) ** 2).mean())
        if report is not None:
            report(val, epoch)
    return val


@task(default_lr=1e-2, epochs=10, cap=0.63, direction="maximize")
def breast_cancer_logistic_acc(lr: float, seed: int, report: ReportFn | None) -> float:
    """Logistic regression on standardized breast_cancer, plain SGD, batch 16, 10 epochs;
    validation accuracy maximized (chance = the majority class, 0.63)."""
    import torch

    data = load("breast_cancer", classification=True)
    torch.manual_seed(seed)
    model = torch.nn.Linear(30, 2)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return fit(model, opt, torch.nn.functional.cross_entropy, data, epochs=10, batch=16,
               seed=seed, report=report, metric=accuracy)
