"""Recurrent and attention models on generated sequences."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from benchmarks.tasks._core import Data, ReportFn, accuracy, fit, mse, task, warmup_cosine


@functools.lru_cache(maxsize=None)
def parity_like() -> Data:
    """Sequences of 12 values in {-1, 0, 1}; class = sign of the sum of the first half minus
    the sum of the second half (3 classes: <, =, >). 600 training and 300 validation rows, fixed seed."""
    import torch

    rng = np.random.default_rng(5)
    x = rng.integers(-1, 2, size=(1200, 12)).astype(np.float32)
    d = x[:, :6].sum(1) - x[:, 6:].sum(1)
    y = (np.sign(d) + 1).astype(np.int64)
    xt = torch.as_tensor(x).unsqueeze(-1)
    yt = torch.as_tensor(y)
    return Data(xt[:600], yt[:600], xt[900:], yt[900:])


class _RNNHead:
    pass


def _rnn_classifier(cell: str, hidden: int, n_out: int) -> Any:
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            rnn = torch.nn.GRU if cell == "gru" else torch.nn.LSTM
            self.rnn = rnn(1, hidden, batch_first=True)
            self.head = torch.nn.Linear(hidden, n_out)

        def forward(self, x: Any) -> Any:
            out, _ = self.rnn(x)
            return self.head(out[:, -1]).squeeze(-1)

    return Net()


@task(default_lr=1e-2, epochs=8, cap=math.log(3))
def gru_compare_rmsprop(lr: float, seed: int, report: ReportFn | None) -> float:
    """GRU (hidden 16) classifying generated sequences (is the first half's sum <, =, > the
    second's), RMSprop, batch 100, 8 epochs, CE. 1e-3 is far too low for it."""
    import torch

    data = parity_like()
    torch.manual_seed(seed)
    model = _rnn_classifier("gru", 16, 3)
    opt = torch.optim.RMSprop(model.parameters(), lr=lr)
    return fit(model, opt, torch.nn.functional.cross_entropy, data, epochs=8, batch=100,
               seed=seed, report=report)


@functools.lru_cache(maxsize=None)
def smooth_series() -> Data:
    """Noisy sums of two sines with random frequency/phase: predict the next value from 16;
    only 240 training windows (a model that fits them hard overfits)."""
    import torch

    rng = np.random.default_rng(9)
    n, t = 400, 17
    f = rng.uniform(0.2, 0.8, (n, 2))
    ph = rng.uniform(0, 2 * np.pi, (n, 2))
    steps = np.arange(t)
    s = np.sin(f[:, :1] * steps + ph[:, :1]) + 0.5 * np.sin(f[:, 1:] * steps + ph[:, 1:])
    s = s + 0.15 * rng.standard_normal(s.shape)
    x = torch.as_tensor(s[:, :16], dtype=torch.float32).unsqueeze(-1)
    y = torch.as_tensor(s[:, 16], dtype=torch.float32)
    y = (y - y[:240].mean()) / y[:240].std()
    return Data(x[:240], y[:240], x[240:], y[240:])


@task(default_lr=1e-3, epochs=20, cap=1.0)
def lstm_series_adam(lr: float, seed: int, report: ReportFn | None) -> float:
    """LSTM (hidden 32) predicting the next value of noisy two-sine series from 16 steps, Adam,
    batch 32, 20 epochs, MSE. Small data: fast lrs fit the noise and end worse."""
    import torch

    data = smooth_series()
    torch.manual_seed(seed)
    model = _rnn_classifier("lstm", 32, 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return fit(model, opt, mse, data, epochs=20, batch=32, seed=seed, report=report)


@functools.lru_cache(maxsize=None)
def tokens() -> Data:
    """Token sequences (length 16, vocabulary 12); class = the token that occurs most often in
    the sequence (ties: the smaller), 1000 rows, fixed seed."""
    import torch

    rng = np.random.default_rng(3)
    n, t, v = 1000, 16, 12
    # skewed per-row distributions so a majority exists most of the time
    p = rng.dirichlet(np.full(v, 0.4), size=n)
    x = np.stack([rng.choice(v, size=t, p=row) for row in p])
    counts = np.stack([np.bincount(r, minlength=v) for r in x])
    y = counts.argmax(1)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    return Data(xt[:750], yt[:750], xt[750:], yt[750:])


def _encoder() -> Any:
    import torch

    class Enc(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(12, 32)
            self.pos = torch.nn.Parameter(torch.randn(16, 32) * 0.1)
            layer = torch.nn.TransformerEncoderLayer(32, 2, 64, dropout=0.0, batch_first=True)
            self.enc = torch.nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
            self.head = torch.nn.Linear(32, 12)

        def forward(self, x: Any) -> Any:
            return self.head(self.enc(self.emb(x) + self.pos).mean(1))

    return Enc()


@task(default_lr=5e-4, epochs=8, cap=1 / 12, direction="maximize")
def transformer_majority_adamw(lr: float, seed: int, report: ReportFn | None) -> float:
    """Tiny transformer encoder (1 layer, d=32, 2 heads) naming the most frequent token of a
    generated sequence, AdamW (wd 0.01), warmup + cosine, batch 64, 8 epochs; validation accuracy
    (maximized). Default 5e-4, a common transformer choice."""
    import torch

    data = tokens()
    torch.manual_seed(seed)
    model = _encoder()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = 8 * math.ceil(750 / 64)
    return fit(model, opt, torch.nn.functional.cross_entropy, data, epochs=8, batch=64,
               seed=seed, report=report, metric=accuracy,
               step_sched=warmup_cosine(opt, steps, steps // 10))
