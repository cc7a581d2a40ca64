"""The learning-rate range test (Smith 2017): ``find_lr`` and its result, ``LRFinderResult``.

The sweep raises the learning rate exponentially, one optimizer step per point, and records the
loss of each mini-batch. Everything it touches is put back afterwards, in memory: parameters,
buffers, gradients, train/eval flags, optimizer state and hyper-parameters, and the random number
generators. The suggestions are computed from the finite part of the curve only, so a sweep that
ends in NaN or inf still gives a suggestion.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes

__all__ = ["LRFinderResult", "find_lr", "suggest_lrs"]

METHODS = ("minimum", "steepest", "valley")
#: ``minimum`` is the lr at the lowest point of the centred curve divided by this; chosen on the
#: tuning half of ``benchmarks/finder_quality.py`` among 10 (fastai's and torch-lr-finder's
#: habit), 5 and 3 (``docs/torch.md``).
MIN_DIVISOR = 5.0


@dataclass(frozen=True)
class LRFinderResult:
    """What a learning-rate range test measured, and the learning rates it suggests.

    Example::

        result = autolr.torch.find_lr(model, optimizer, criterion, loader)
        print(result.suggestion, result.suggestions)
        low, high = result.search_range()      # or: @autolr.tune(lr=result)
        result.plot().figure.savefig("lr_find.png")

    Attributes:
        lrs: the learning rate of every step of the sweep.
        losses: the raw mini-batch loss at each step (the last one may be NaN or inf).
        smoothed: the bias-corrected exponential moving average of ``losses``.
        suggestions: ``{"minimum": ..., "steepest": ..., "valley": ...}`` (see
            :func:`suggest_lrs`); a value is ``None`` when the finite part of the curve is too
            short to say anything.
        method: which suggestion is ``suggestion``.
        stop_reason: ``"completed"``, ``"diverged"`` (smoothed loss above ``diverge`` x best) or
            ``"nonfinite"`` (a NaN or inf loss).
    """

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    suggestions: dict[str, float | None] = field(default_factory=dict)
    method: str = "minimum"
    stop_reason: str = "completed"

    @property
    def centred(self) -> tuple[float, ...]:
        """The zero-lag (Gaussian, 0.4 decade) smoothing of the finite losses that ``minimum``
        and ``steepest`` are read from; shorter than ``lrs`` when the sweep ended in NaN/inf."""
        y = [v for v in self.losses if math.isfinite(v)]
        n = next((i for i, v in enumerate(self.losses) if not math.isfinite(v)), len(self.losses))
        if n == 0:
            return ()
        logx = np.log10(np.asarray(self.lrs[:n]))
        return tuple(float(v) for v in centred_smooth(logx, y[:n], sigma=0.4))

    @property
    def suggestion(self) -> float | None:
        """The suggested learning rate (``suggestions[method]``)."""
        return self.suggestions.get(self.method)

    def search_range(self, *, below: float = 1.0, above: float = 1.0) -> tuple[float, float]:
        """A log-uniform search range around the suggestion, for ``@autolr.tune(lr=result)``.

        The range spans ``below`` decades under the suggestion and ``above`` decades over it, and
        never reaches past the last learning rate whose loss was finite.

        Args:
            below: decades below the suggestion.
            above: decades above the suggestion.

        Raises:
            ValueError: if the sweep gave no suggestion (it diverged at once: lower ``start_lr``).
        """
        if below < 0 or above < 0 or below + above <= 0:
            raise ValueError(f"below and above must be >= 0 and not both 0, got {below}, {above}")
        lr = self.suggestion
        if lr is None:
            raise ValueError(
                "the range test gave no suggestion (too few finite losses); "
                f"stop_reason={self.stop_reason!r}, {len(self.lrs)} steps: lower start_lr"
            )
        finite = [x for x, y in zip(self.lrs, self.losses) if math.isfinite(y)]
        cap = finite[-1] if finite else self.lrs[-1]
        low = lr / 10.0**below
        high = min(lr * 10.0**above, cap)
        if high <= low:  # the suggestion sits at the very end of the finite curve
            high = lr * 10.0**above
        return (float(low), float(high))

    def plot(self, ax: Axes | None = None, *, raw: bool = True) -> Axes:
        """Plot the loss against the learning rate (log x axis) with the suggestions marked.

        Args:
            ax: the matplotlib axes to draw on (default: a new figure).
            raw: also draw the raw mini-batch losses, faintly.

        Returns:
            The axes; save with ``ax.figure.savefig(path)``.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:  # pragma: no cover - exercised by a subprocess test
            raise ImportError(
                "LRFinderResult.plot() needs matplotlib: pip install autolr[plot]"
            ) from e
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        lrs = np.asarray(self.lrs)
        if raw:
            ax.plot(lrs, _finite_or_nan(self.losses), color="0.75", lw=0.8, label="loss")
        ax.plot(lrs, _finite_or_nan(self.smoothed), color="C0", lw=1, ls="--", label="moving average")
        centred = self.centred
        ax.plot(lrs[: len(centred)], centred, color="C0", lw=1.8, label="centred (suggestions)")
        colors = {"minimum": "C3", "steepest": "C1", "valley": "C2"}
        for name, value in self.suggestions.items():
            if value is None:
                continue
            style = "-" if name == self.method else ":"
            ax.axvline(value, color=colors.get(name, "k"), ls=style, label=f"{name}: {value:.2e}")
        ax.set_xscale("log")
        finite = [v for v in (*self.smoothed, *centred) if math.isfinite(v)]
        if finite:  # keep the divergence from squashing the interesting part of the curve
            lo, hi = min(finite), max(self.smoothed[0], centred[0] if centred else -math.inf)
            pad = 0.1 * (hi - lo if hi > lo else abs(hi) or 1.0)
            ax.set_ylim(lo - pad, max(hi, lo) + 3 * pad)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.set_title(f"LR range test ({self.stop_reason})")
        ax.legend(fontsize="small")
        return ax

    def __repr__(self) -> str:
        sugg = ", ".join(f"{k}={_fmt(v)}" for k, v in self.suggestions.items())
        return (
            f"LRFinderResult(suggestion={_fmt(self.suggestion)}, method={self.method!r}, "
            f"steps={len(self.lrs)}, stop_reason={self.stop_reason!r}, {sugg})"
        )


def _fmt(value: float | None) -> str:
    return "None" if value is None else f"{value:.3g}"


def _finite_or_nan(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return np.where(np.isfinite(arr), arr, np.nan)


# -- pure suggestion logic (numbers in, numbers out) --------------------------------------------


def suggest_lrs(
    lrs: Sequence[float],
    losses: Sequence[float],
    *,
    beta: float = 0.98,
    sigma: float = 0.4,
    skip_start: float = 0.1,
    skip_end: int = 5,
) -> dict[str, float | None]:
    """The three suggestions from a range-test curve (pure: numbers in, numbers out).

    Only the finite prefix of ``losses`` is used (the curve is cut at the first NaN or inf), and
    of it the first ``skip_start`` fraction and the last ``skip_end`` points are ignored, as fastai
    does: the start is noise at learning rates too small to move the loss, the end the blow-up.

    - ``minimum`` (the default suggestion): the learning rate of the lowest point of the
      *centred* curve (raw losses smoothed by a Gaussian of ``sigma`` decades, which does not lag),
      divided by :data:`MIN_DIVISOR` (5).
    - ``steepest``: where the centred curve falls fastest per decade of learning rate, up to its
      lowest point (past it the loss can fall again only because the blown-up model died to a
      constant output); the slope is taken against ``log10(lr)``, not the step index, so it
      does not depend on ``num_iter``.
    - ``valley``: fastai's default, on fastai's curve (the bias-corrected moving average with
      ``beta``): the middle of its longest decreasing run. The moving average lags by about
      ``beta / (1 - beta)`` steps, which moves this suggestion right; it is here for comparison.

    Example::

        >>> lrs = [10 ** (-6 + i / 10) for i in range(60)]
        >>> losses = [1 / (1 + math.exp(3 * (math.log10(x) + 3))) + (x > 0.1) * x for x in lrs]
        >>> s = suggest_lrs(lrs, losses)
        >>> round(math.log10(s["steepest"]), 1)
        -3.0

    Args:
        lrs: learning rates, increasing.
        losses: the raw loss at each learning rate.
        beta: the moving-average factor of fastai's curve (for ``valley``).
        sigma: the width of the centred smoothing, in decades of learning rate.
        skip_start: fraction of the finite points to ignore at the start.
        skip_end: number of points to ignore at the end.

    Returns:
        ``{"minimum": ..., "steepest": ..., "valley": ...}``; a value is ``None`` when fewer than
        three points remain.
    """
    if len(lrs) != len(losses):
        raise ValueError(f"lrs and losses differ in length: {len(lrs)} != {len(losses)}")
    out: dict[str, float | None] = dict.fromkeys(METHODS)
    x = np.asarray(lrs, dtype=float)
    y = np.asarray(losses, dtype=float)
    bad = ~np.isfinite(y) | ~np.isfinite(x) | (x <= 0)
    n = int(np.argmax(bad)) if bad.any() else len(y)
    if n < 3:
        return out
    x, y = x[:n], y[:n]
    logx = np.log10(x)
    centred = centred_smooth(logx, y, sigma=sigma)
    ema = ema_smooth(y, beta=beta)
    start = int(n * skip_start)
    end = n - skip_end if n - skip_end - start >= 3 else n
    if end - start < 3:
        return out
    sl = slice(start, end)
    lowest = int(np.argmin(centred[sl]))
    grad = np.gradient(centred[sl], logx[sl])
    out["minimum"] = float(x[sl][lowest] / MIN_DIVISOR)
    out["steepest"] = float(x[sl][int(np.argmin(grad[: lowest + 1]))])
    out["valley"] = float(x[sl][_valley_index(ema[sl])])
    return out


def centred_smooth(
    logx: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, *, sigma: float
) -> np.ndarray:
    """Gaussian smoothing of ``y`` over ``logx`` (width ``sigma``): symmetric, so no lag."""
    lx = np.asarray(logx, dtype=float)
    yy = np.asarray(y, dtype=float)
    w = np.exp(-0.5 * ((lx[:, None] - lx[None, :]) / sigma) ** 2)
    return np.asarray((w @ yy) / w.sum(axis=1), dtype=float)


def ema_smooth(y: Sequence[float] | np.ndarray, *, beta: float) -> np.ndarray:
    """The bias-corrected exponential moving average (fastai's and this sweep's stop rule)."""
    out = np.empty(len(y))
    avg = 0.0
    for i, v in enumerate(y):
        avg = beta * avg + (1 - beta) * float(v)
        out[i] = avg / (1 - beta ** (i + 1))
    return out


def _valley_index(y: np.ndarray) -> int:
    """fastai's valley: the longest decreasing subsequence, then a point ~half way along it."""
    n = len(y)
    lds = [1] * n
    max_start = max_end = 0
    for i in range(1, n):
        for j in range(i):
            if y[i] < y[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return int(min(n - 1, max(0, max_start + int(sections) + int(sections / 2))))


# -- the sweep ----------------------------------------------------------------------------------


def find_lr(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    criterion: Callable[[Any, Any], torch.Tensor] | None = None,
    data: Iterable[Any] | None = None,
    *,
    step: Callable[..., Any] | None = None,
    val_data: Iterable[Any] | None = None,
    restore: Sequence[Any] = (),
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    smooth: float = 0.98,
    diverge: float = 4.0,
    accumulation_steps: int = 1,
    amp: bool = False,
    amp_dtype: torch.dtype | None = None,
    method: str = "minimum",
    seed: int | None = None,
) -> LRFinderResult:
    """Run a learning-rate range test on any training loop and put everything back as it was.

    The learning rate goes from ``start_lr`` to ``end_lr`` geometrically over ``num_iter``
    optimizer steps. Each step's mini-batch loss is recorded (or, with ``val_data``, the loss
    on the validation batches after the step); the sweep stops early when the bias-corrected
    smoothed loss exceeds ``diverge`` times its best value, or when a loss is NaN or inf.
    Afterwards the model's parameters, buffers, gradients and train/eval flags, the optimizer's
    state and hyper-parameters (so any LR scheduler attached to it keeps working), the state of
    every object in ``restore``, the torch, CUDA, ``random`` and ``numpy`` random states and a
    DataLoader's own shuffling generator are restored exactly, from copies kept in memory.

    Three ways in, one sweep:

    - **model, optimizer, criterion, data** (the classic form): the finder runs
      ``criterion(model(x), y)``, the backward pass (scaled by a ``GradScaler`` with
      ``amp=True`` and float16, divided over ``accumulation_steps`` batches) and
      ``optimizer.step()``; batches are moved to the model's device.
    - **step** with an optimizer: ``step(batch) -> loss`` is your own training step (forward,
      backward, ``optimizer.step()``, your own autocast and ``GradScaler``); the finder sets the
      lr on ``optimizer`` before each call. Without ``data`` it is a closure, called as
      ``step()``, that fetches its own batch. With ``accumulation_steps=k`` it is called ``k``
      times per lr (it steps the optimizer every ``k``-th call, as your loop does).
    - **step** with hand-written updates: when ``step`` accepts ``lr``, it is called as
      ``step(batch, lr=lr)`` (or ``step(lr=lr)``); no optimizer is needed (e.g.
      ``p.data.add_(p.grad, alpha=-lr)`` as in pytorch/examples' word_language_model).

    With several param groups the sweep's lr is the first group's, and every other group keeps
    its ratio to it (a head at 10x the backbone stays at 10x).

    Example::

        import torch, autolr.torch
        model = torch.nn.Linear(64, 10)
        opt = torch.optim.Adam(model.parameters())
        loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True)
        result = autolr.torch.find_lr(model, opt, torch.nn.functional.cross_entropy, loader)

        def step(batch, lr):                          # a loop that updates weights by hand
            model.zero_grad()
            loss = criterion(model(batch[0]), batch[1])
            loss.backward()
            for p in model.parameters():
                p.data.add_(p.grad, alpha=-lr)
            return loss
        result = autolr.torch.find_lr(model, data=loader, step=step, start_lr=1e-3, end_lr=1e3)
        print(result.suggestion)

    Args:
        model: the model; in the classic form called as ``model(x)`` (``model(*x)`` for a tuple
            or list ``x``, ``model(**x)`` for a dict).
        optimizer: the optimizer the training will use (its type and settings matter);
            optional when ``step`` accepts ``lr``.
        criterion: ``criterion(model(x), y)`` returns the scalar loss (classic form, and to
            judge ``val_data``).
        data: a DataLoader or any iterable of batches (``(x, y)`` in the classic form; whatever
            ``step`` takes otherwise); restarted (or, for a one-shot iterator, its batches
            replayed) when shorter than the sweep.
        step: your training step (see above); replaces ``criterion``.
        val_data: judge each lr on these batches instead of the training batch, as
            torch-lr-finder's ``val_loader`` does: after every step the model is evaluated (eval
            mode, no gradients) with ``criterion`` on all of them. Smoother, and costs a pass
            over them per point.
        restore: other objects the sweep changes, each with ``state_dict()`` and
            ``load_state_dict()`` (your ``GradScaler``, a scheduler that ``step`` steps, an
            EMA of the weights): put back afterwards too.
        start_lr: the first learning rate.
        end_lr: the last learning rate.
        num_iter: the number of optimizer steps (points on the curve).
        smooth: the moving-average factor of the smoothed loss, in [0, 1).
        diverge: stop when the smoothed loss exceeds this multiple of the best smoothed loss.
        accumulation_steps: mini-batches (or ``step`` calls) per point of the curve.
        amp: classic form: run the forward pass under ``torch.autocast`` (with a ``GradScaler``
            for float16). A ``step`` runs its own.
        amp_dtype: the autocast dtype (default: float16 on CUDA, bfloat16 elsewhere).
        method: which suggestion is ``result.suggestion``: ``"minimum"`` (the closest to the
            dense-grid optimum in ``docs/torch.md``), ``"steepest"`` or ``"valley"`` (fastai's
            default).
        seed: seed torch, ``random`` and ``numpy`` for the sweep (the caller's random states are
            restored afterwards either way).

    Returns:
        An :class:`LRFinderResult`.
    """
    import torch

    if not 0 < start_lr < end_lr:
        raise ValueError(f"need 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
    if num_iter < 2:
        raise ValueError(f"num_iter must be >= 2, got {num_iter}")
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth must be in [0, 1), got {smooth}")
    if diverge <= 1:
        raise ValueError(f"diverge must be > 1, got {diverge}")
    if accumulation_steps < 1:
        raise ValueError(f"accumulation_steps must be >= 1, got {accumulation_steps}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    takes_lr = _check_form(optimizer, criterion, data, step, val_data, amp)
    for obj in restore:
        if not (callable(getattr(obj, "state_dict", None))
                and callable(getattr(obj, "load_state_dict", None))):
            raise ValueError(
                "restore: expected objects with state_dict() and load_state_dict(), got "
                f"{type(obj).__name__}"
            )
    params = list(model.parameters())
    if not params:
        raise ValueError("model has no parameters")
    device = params[0].device
    ratios = _group_ratios(optimizer)

    snapshot = _Snapshot(model, optimizer, _generators(data) + _generators(val_data), restore)
    try:
        if seed is not None:
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed % 2**32)
        # after the snapshot: a shuffling loader draws from torch's RNG
        batches = _cycle(data) if data is not None else None
        val_batches = _replayable(val_data) if val_data is not None else None
        if amp_dtype is None:
            amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        scaler = torch.amp.GradScaler(device.type, enabled=amp and amp_dtype == torch.float16)
        ratio = end_lr / start_lr
        lrs: list[float] = []
        losses: list[float] = []
        smoothed: list[float] = []
        avg, best = 0.0, math.inf
        stop_reason = "completed"
        model.train()
        flags = [(m, m.training) for m in model.modules()]
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        for i in range(num_iter):
            lr = start_lr * ratio ** (i / (num_iter - 1))
            if optimizer is not None:
                _set_lr(optimizer, lr, ratios)
            total = 0.0
            for _ in range(accumulation_steps):
                if step is not None:
                    args = (next(batches),) if batches is not None else ()
                    out = step(*args, **({"lr": lr} if takes_lr else {}))
                    total += _loss_value(out, what="step") / accumulation_steps
                    continue
                assert batches is not None and criterion is not None and optimizer is not None
                x, y = next(batches)
                x, y = _to(x, device), _to(y, device)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                    loss = criterion(_call(model, x), y)
                scaler.scale(loss / accumulation_steps).backward()  # type: ignore[no-untyped-call]
                total += float(loss.detach().float()) / accumulation_steps
            if step is None:
                assert optimizer is not None
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
            if val_batches is not None:
                assert criterion is not None
                total = _evaluate(model, criterion, val_batches, device, flags,
                                  amp=amp, amp_dtype=amp_dtype)
            lrs.append(lr)
            losses.append(total)
            if not math.isfinite(total):
                smoothed.append(math.nan)
                stop_reason = "nonfinite"
                break
            avg = smooth * avg + (1 - smooth) * total
            value = avg / (1 - smooth ** (i + 1))
            smoothed.append(value)
            best = min(best, value)
            if value > diverge * best:
                stop_reason = "diverged"
                break
    finally:
        snapshot.restore()
    suggestions = suggest_lrs(lrs, losses, beta=smooth)
    return LRFinderResult(
        lrs=tuple(lrs),
        losses=tuple(losses),
        smoothed=tuple(smoothed),
        suggestions=suggestions,
        method=method,
        stop_reason=stop_reason,
    )


def _check_form(
    optimizer: Any, criterion: Any, data: Any, step: Any, val_data: Any, amp: bool
) -> bool:
    """Check that the arguments make one of the three forms; True when ``step`` takes ``lr``."""
    if val_data is not None and criterion is None:
        raise ValueError("val_data: judging on validation batches needs criterion(model(x), y)")
    if step is None:
        for name, value in (("optimizer", optimizer), ("criterion", criterion), ("data", data)):
            if value is None:
                raise ValueError(
                    f"{name}: find_lr needs model, optimizer, criterion and data, or step=your "
                    "training step (see help(autolr.torch.find_lr))"
                )
        return False
    if not callable(step):
        raise ValueError(f"step: expected a callable, got {type(step).__name__}")
    if criterion is not None and val_data is None:
        raise ValueError(
            "criterion: with step=..., your step computes the loss; criterion only judges val_data"
        )
    if amp:
        raise ValueError(
            "amp: with step=..., your step runs its own autocast and GradScaler "
            "(pass the scaler in restore=[scaler] to have its state put back)"
        )
    takes_lr = _accepts(step, "lr")
    if optimizer is None and not takes_lr:
        raise ValueError(
            "step: with no optimizer the step must accept lr (step(batch, lr) for updates by "
            "hand); or pass the optimizer it steps"
        )
    return takes_lr


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
    p = params.get(name)
    if p is not None:
        return p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    return any(q.kind is q.VAR_KEYWORD for q in params.values())


def _group_ratios(optimizer: Any) -> list[float]:
    """Each param group's lr relative to the first group's (all 1.0 when they are equal)."""
    if optimizer is None:
        return []
    base = [float(g["lr"]) for g in optimizer.param_groups]
    if all(b == base[0] for b in base):
        return [1.0] * len(base)
    if base[0] <= 0:
        raise ValueError(
            "optimizer: the first param group's lr is 0 but others are not; the sweep's lr is "
            "the first group's and the others keep their ratio to it: put a trained group first"
        )
    return [b / base[0] for b in base]


def _set_lr(optimizer: Any, lr: float, ratios: list[float]) -> None:
    import torch

    for group, r in zip(optimizer.param_groups, ratios):
        if isinstance(group["lr"], torch.Tensor):
            group["lr"].fill_(lr * r)
        else:
            group["lr"] = lr * r


def _loss_value(out: Any, *, what: str) -> float:
    """A float from what a step returned: a number or a one-element tensor."""
    item = getattr(out, "detach", None)
    if callable(item):
        out = out.detach().float()
        if out.numel() != 1:
            raise ValueError(f"{what}: must return the scalar loss, got a tensor of shape "
                             f"{tuple(out.shape)}")
        return float(out)
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        return float(out)
    raise ValueError(f"{what}: must return the loss (a number or a one-element tensor), "
                     f"got {type(out).__name__}")


def _evaluate(
    model: Any, criterion: Callable[[Any, Any], Any], batches: Iterable[Any], device: Any,
    flags: list[tuple[Any, bool]], *, amp: bool, amp_dtype: Any,
) -> float:
    """The mean loss over ``batches`` (weighted by batch size) in eval mode, then flags back."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
        for x, y in batches:
            x, y = _to(x, device), _to(y, device)
            n = len(y) if hasattr(y, "__len__") else 1
            total += float(criterion(_call(model, x), y).detach().float()) * n
            count += n
    for m, flag in flags:
        m.training = flag
    if count == 0:
        raise ValueError("val_data is empty: it needs at least one (x, y) batch")
    return total / count


def _replayable(data: Iterable[Any]) -> Iterable[Any]:
    """``data`` itself, or the list of its batches when it is a one-shot iterator."""
    return list(data) if isinstance(data, Iterator) else data


class _Snapshot:
    """In-memory copies of everything a sweep changes, and ``restore()`` to put them back."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None,
        generators: list[torch.Generator],
        others: Sequence[Any] = (),
    ) -> None:
        import torch

        self.model = model
        self.optimizer = optimizer
        with torch.no_grad():
            self.tensors = [
                (t, t.detach().clone()) for t in itertools.chain(model.parameters(), model.buffers())
            ]
            self.grads = [
                (p, None if p.grad is None else p.grad.detach().clone()) for p in model.parameters()
            ]
        self.training = [(m, m.training) for m in model.modules()]
        # The optimizer's own objects, deep-copied: state keyed by the live parameters, and the
        # hyper-parameters of each group (lr, initial_lr set by schedulers, betas, ...).
        self.opt_state = {} if optimizer is None else {
            p: copy.deepcopy(s) for p, s in optimizer.state.items()
        }
        self.opt_groups = [] if optimizer is None else [
            {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            for g in optimizer.param_groups
        ]
        self.opt_attrs = {} if optimizer is None else {
            k: copy.deepcopy(v) for k, v in vars(optimizer).items() if k in ("_opt_called",)
        }
        self.others = [(obj, copy.deepcopy(obj.state_dict())) for obj in others]
        self.rng_torch = torch.get_rng_state()
        cuda = torch.cuda.is_initialized()  # type: ignore[no-untyped-call]  # untyped in torch
        self.rng_cuda = torch.cuda.get_rng_state_all() if cuda else None
        self.rng_python = random.getstate()
        self.rng_numpy = np.random.get_state()
        self.generators = [(g, g.get_state()) for g in generators]

    def restore(self) -> None:
        import torch

        with torch.no_grad():
            for live, saved in self.tensors:
                live.copy_(saved)
        for p, g in self.grads:
            p.grad = g
        for m, flag in self.training:
            m.training = flag
        for obj, state in self.others:
            obj.load_state_dict(copy.deepcopy(state))
        if self.optimizer is not None:
            self._restore_optimizer(self.optimizer)
        torch.set_rng_state(self.rng_torch)
        if self.rng_cuda is not None:
            torch.cuda.set_rng_state_all(self.rng_cuda)
        random.setstate(self.rng_python)
        np.random.set_state(self.rng_numpy)
        for gen, state in self.generators:
            gen.set_state(state)

    def _restore_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.state.clear()
        optimizer.state.update(self.opt_state)
        for group, saved in zip(optimizer.param_groups, self.opt_groups):
            for k in [k for k in group if k != "params" and k not in saved]:
                del group[k]
            group.update(saved)
        for k in ("_opt_called",):
            if k in self.opt_attrs:
                setattr(optimizer, k, self.opt_attrs[k])
            elif hasattr(optimizer, k):
                delattr(optimizer, k)


def _generators(data: Any) -> list[torch.Generator]:
    """The torch generators a DataLoader shuffles with (its own, its sampler's), to restore."""
    import torch

    found: list[torch.Generator] = []
    if data is None:
        return found
    holders = [data, getattr(data, "sampler", None), getattr(data, "batch_sampler", None)]
    holders.append(getattr(holders[2], "sampler", None))
    for holder in holders:
        g = getattr(holder, "generator", None)
        if isinstance(g, torch.Generator) and all(g is not f for f in found):
            found.append(g)
    return found


def _cycle(data: Iterable[Any]) -> Iterator[Any]:
    """Batches of ``data`` forever; a ValueError now if ``data`` has none."""
    it = iter(data)
    one_shot = it is data
    try:
        first = next(it)
    except StopIteration:
        raise ValueError("data is empty: find_lr needs at least one (x, y) batch") from None
    return _forever(data, first, it, one_shot)


def _forever(data: Iterable[Any], first: Any, it: Iterator[Any], one_shot: bool) -> Iterator[Any]:
    seen: list[Any] = [first]
    yield first
    for batch in it:
        if one_shot:
            seen.append(batch)
        yield batch
    while True:
        if one_shot:
            yield from seen
        else:
            got = False
            for batch in data:
                got = True
                yield batch
            if not got:
                raise ValueError("data yielded no batches on a second pass")


def _to(value: Any, device: torch.device) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, (list, tuple)):
        return type(value)(_to(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    return value


def _call(model: torch.nn.Module, x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return model(*x)
    if isinstance(x, dict):
        return model(**x)
    return model(x)
