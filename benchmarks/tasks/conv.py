"""Convolutional nets on digits as 8x8 images."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.tasks._core import Data, ReportFn, accuracy, fit, load, task, warmup_cosine


def images(scale: str = "minmax") -> Data:
    """digits as ``(N, 1, 8, 8)`` tensors (pixels scaled to 0..1)."""
    d = load("digits", classification=True, scale_x=scale)
    return Data(d.x_train.reshape(-1, 1, 8, 8), d.y_train, d.x_val.reshape(-1, 1, 8, 8), d.y_val)


def small_cnn(channels: int = 16) -> Any:
    import torch

    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * channels * 4, 10),
    )


@task(default_lr=1e-3, epochs=6, cap=0.1, direction="maximize")
def digits_cnn_adam_acc(lr: float, seed: int, report: ReportFn | None) -> float:
    """digits 8x8 images, 2-layer CNN (8/16 channels), Adam, warmup + cosine, 6 epochs.

    Reports validation *accuracy* (maximized): wide plateau of near-ties at the top."""
    import torch

    data = images()
    torch.manual_seed(seed)
    model = small_cnn(8)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = 6 * math.ceil(data.x_train.shape[0] / 64)
    return fit(model, opt, torch.nn.functional.cross_entropy, data, epochs=6, batch=64,
               seed=seed, report=report, metric=accuracy,
               step_sched=warmup_cosine(opt, steps, steps // 10))


def _cnn_parts(lr: float, seed: int) -> tuple[Any, Any, Any, list[Any]]:
    import torch

    from benchmarks.tasks._core import batches_of

    data = images()
    torch.manual_seed(seed)
    model = small_cnn(8)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    return model, opt, torch.nn.functional.cross_entropy, batches_of(data, 64, seed)


@task(default_lr=1e-2, epochs=6, cap=math.log(10), parts=_cnn_parts)
def digits_cnn_nesterov_step(lr: float, seed: int, report: ReportFn | None) -> float:
    """digits 8x8 images, CNN (8/16 channels), SGD Nesterov 0.9, step decay x0.2 every 2
    epochs, 6 epochs, batch 64, CE. Plain conv net with a classic schedule."""
    import torch

    model, opt, loss_fn, _ = _cnn_parts(lr, seed)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.2)
    return fit(model, opt, loss_fn, images(), epochs=6, batch=64, seed=seed, report=report,
               epoch_sched=sched)
