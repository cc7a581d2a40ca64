"""Optimizer search: ``optimizer(trial, params)`` suggests an optimizer and builds it.

Names stored in the study (all conditional params carry their optimizer's name, so TPE models
each one only on the trials where it exists):

| param | distribution | when |
| --- | --- | --- |
| ``optimizer`` | categorical over ``choices`` | always |
| ``lr`` | log-uniform ``LR_RANGE`` (only when ``lr`` is not passed in) | always |
| ``adamw_weight_decay`` | log-uniform [1e-4, 1e-1] | adamw |
| ``rmsprop_momentum`` | categorical {0.0, 0.9} | rmsprop |
| ``sgd_momentum`` | uniform [0.8, 0.99] | sgd |
| ``sgd_nesterov`` | categorical {False, True} | sgd |

The study's ``lr`` is the *reference* learning rate, on the Adam scale; the optimizer runs at
``lr * LR_SCALE[optimizer]`` (recorded as the user attribute ``autolr.effective_lr``). One ``lr``
distribution for every optimizer keeps the search space the same in every trial (multivariate TPE
models ``lr`` and ``optimizer`` jointly) while each optimizer is searched around its own sensible
range: a study over lr in (1e-5, 1e-1) tries Adam in (1e-5, 1e-1), RMSprop in (3e-5, 0.3) and SGD
in (3e-4, 3).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from autolr._schema import ATTR_EFFECTIVE_LR, PARAM

if TYPE_CHECKING:
    import optuna
    import torch

__all__ = ["LR_RANGE", "LR_SCALE", "OPTIMIZERS", "optimizer"]

OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")

LR_SCALE: dict[str, float] = {
    "adam": 1.0,
    "adamw": 1.0,
    "rmsprop": math.sqrt(10.0),  # centred on ~3e-3: between the 1e-3 habit and torch's 1e-2
    "sgd": 30.0,  # with momentum: centred on ~3e-2, the 1e-3..1 range SGD needs
}
"""The effective learning rate is ``lr * LR_SCALE[name]``."""

LR_RANGE = (1e-5, 1e-1)
"""The range ``optimizer()`` suggests ``lr`` on when it is not given one."""


def check_choices(choices: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    """``choices`` as a tuple of distinct names from ``allowed``; a one-line error otherwise."""
    names = tuple(choices)
    if not names:
        raise ValueError("choices is empty")
    unknown = [c for c in names if c not in allowed]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"choices must be distinct names from {tuple(allowed)}, got {names!r}")
    return names


def optimizer(
    trial: optuna.Trial,
    params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
    *,
    choices: Sequence[str] = OPTIMIZERS,
    lr: float | None = None,
    extras: bool = True,
) -> torch.optim.Optimizer:
    """Suggest an optimizer (and its own settings) for this trial and build it.

    Example::

        @autolr.tune(n_trials=30, lr=(1e-5, 1e-1))
        def train(lr, trial=None):
            model = make_model()
            opt = autolr.torch.optimizer(trial, model.parameters(), lr=lr)
            ...

    Args:
        trial: the Optuna trial.
        params: the parameters (or parameter groups) to optimize.
        choices: the optimizers to choose from, a subset of ``("adam", "adamw", "rmsprop",
            "sgd")``.
        lr: the reference learning rate (the study's ``lr``, e.g. the one ``@autolr.tune``
            passes in). When ``None`` it is suggested as ``lr`` on :data:`LR_RANGE`.
        extras: also search each optimizer's own settings (weight decay, momentum, ...);
            ``False`` keeps torch's defaults (SGD gets momentum 0.9).

    Returns:
        The optimizer, running at ``lr * LR_SCALE[name]``.
    """
    import torch

    names = check_choices(choices, OPTIMIZERS)
    if lr is None:
        lr = trial.suggest_float(PARAM, *LR_RANGE, log=True)
    elif not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    name = str(trial.suggest_categorical("optimizer", names))
    effective = float(lr) * LR_SCALE[name]
    trial.set_user_attr(ATTR_EFFECTIVE_LR, effective)

    if name == "adam":
        return torch.optim.Adam(params, lr=effective)
    if name == "adamw":
        wd = trial.suggest_float("adamw_weight_decay", 1e-4, 1e-1, log=True) if extras else 1e-2
        return torch.optim.AdamW(params, lr=effective, weight_decay=wd)
    if name == "rmsprop":
        momentum = trial.suggest_categorical("rmsprop_momentum", (0.0, 0.9)) if extras else 0.0
        return torch.optim.RMSprop(params, lr=effective, momentum=float(momentum))
    momentum = trial.suggest_float("sgd_momentum", 0.8, 0.99) if extras else 0.9
    nesterov = bool(trial.suggest_categorical("sgd_nesterov", (False, True))) if extras else False
    return torch.optim.SGD(params, lr=effective, momentum=momentum, nesterov=nesterov)
