"""Learning-rate schedule search: ``scheduler(trial, optimizer, ...)`` returns a :class:`Schedule`.

Every choice is one pure function of the step, :func:`lr_factor`, times the optimizer's initial
learning rate, so the shapes are testable without torch and every schedule is stepped the same
way: ``step()`` after every ``optimizer.step()``, ``epoch_end(val_loss)`` after every epoch.

Names stored in the study (conditional params carry their schedule's name):

| param | distribution | when |
| --- | --- | --- |
| ``scheduler`` | categorical over ``choices`` | always |
| ``warmup_frac`` | uniform [0, 0.1] of all steps | constant, step, exponential, cosine, plateau |
| ``step_gamma`` | log-uniform [0.1, 0.5] | step |
| ``step_every`` | uniform [0.2, 0.5] of the epochs | step |
| ``exponential_final`` | log-uniform [1e-3, 0.3] (last lr / first lr) | exponential |
| ``cosine_final`` | log-uniform [1e-4, 1e-1] (last lr / first lr) | cosine |
| ``cyclic_cycles`` | int [1, 4] full triangles over the run | cyclic |
| ``cyclic_ratio`` | log-uniform [3, 10] (peak lr / base lr) | cyclic |
| ``onecycle_pct_start`` | uniform [0.1, 0.5] | onecycle |
| ``plateau_patience`` | int [1, 5] epochs | plateau |
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from autolr.torch._optim import check_choices

if TYPE_CHECKING:
    import optuna
    import torch

__all__ = ["SCHEDULES", "Schedule", "lr_factor", "scheduler"]

SCHEDULES = ("constant", "step", "exponential", "cosine", "cyclic", "onecycle", "plateau")
WARMUP_APPLIES = ("constant", "step", "exponential", "cosine", "plateau")

PLATEAU_FACTOR = 0.1
"""Reduce-on-plateau cuts the learning rate by 10x ..."""
PLATEAU_MIN_SCALE = 0.01
"""... at most twice: once when the loss plateaus, once more to fine-tune."""
_PLATEAU_THRESHOLD = 1e-4  # relative improvement that counts, as torch's ReduceLROnPlateau
_ONECYCLE_DIV = 25.0  # torch's OneCycleLR defaults
_ONECYCLE_FINAL_DIV = 1e4


def lr_factor(
    name: str,
    step: int,
    *,
    total_steps: int,
    steps_per_epoch: int,
    params: Mapping[str, float] | None = None,
    warmup_steps: int = 0,
) -> float:
    """The multiplier of the initial learning rate before optimizer step ``step`` (from 0).

    ``step`` runs from 0 to ``total_steps - 1`` (the last step runs at the schedule's final
    value); later steps are clamped. Plateau reductions are not included (they depend on
    the metric; :class:`Schedule` applies them).

    Example::

        >>> lr_factor("cosine", 50, total_steps=101, steps_per_epoch=10,
        ...           params={"cosine_final": 0.0})
        0.5

    Args:
        name: one of :data:`SCHEDULES`.
        step: the number of optimizer steps already taken.
        total_steps: ``steps_per_epoch * epochs``.
        steps_per_epoch: optimizer steps per epoch.
        params: the schedule's parameters, named as in the study.
        warmup_steps: linear warm-up from ``1/warmup_steps`` to 1 over this many first steps
            (ignored by ``cyclic`` and ``onecycle``, which start low by design).
    """
    p = dict(params or {})
    t = min(max(int(step), 0), total_steps - 1)
    frac = t / max(total_steps - 1, 1)  # the last step runs at the schedule's final value
    if name == "constant" or name == "plateau":
        f = 1.0
    elif name == "step":
        epochs = total_steps / steps_per_epoch
        every = max(1, round(p["step_every"] * epochs))
        f = p["step_gamma"] ** ((t // steps_per_epoch) // every)
    elif name == "exponential":
        f = p["exponential_final"] ** frac
    elif name == "cosine":
        final = p["cosine_final"]
        f = final + (1 - final) * (1 + math.cos(math.pi * frac)) / 2
    elif name == "cyclic":
        phase = (frac * p["cyclic_cycles"]) % 1.0
        tri = 1.0 - abs(2.0 * phase - 1.0)
        low = 1.0 / p["cyclic_ratio"]
        f = low + (1.0 - low) * tri
    elif name == "onecycle":
        pct = p["onecycle_pct_start"]
        start, end = 1 / _ONECYCLE_DIV, 1 / (_ONECYCLE_DIV * _ONECYCLE_FINAL_DIV)
        if frac < pct:
            f = _anneal(start, 1.0, frac / pct)
        else:
            f = _anneal(1.0, end, (frac - pct) / (1 - pct))
    else:
        raise ValueError(f"unknown schedule {name!r}; choose from {SCHEDULES}")
    if warmup_steps > 0 and name in WARMUP_APPLIES and t < warmup_steps:
        f *= (t + 1) / warmup_steps
    return float(f)


def _anneal(a: float, b: float, pct: float) -> float:
    """Cosine from ``a`` (pct 0) to ``b`` (pct 1)."""
    return b + (a - b) * (1 + math.cos(math.pi * pct)) / 2


class Schedule:
    """A learning-rate schedule built by :func:`scheduler`; step it the same way whatever it is.

    Call ``step()`` after every ``optimizer.step()`` and ``epoch_end(val_loss)`` once after every
    epoch (the metric is required for ``plateau`` and ignored otherwise). The learning rate of
    every parameter group is ``initial_lr * lr_factor(...) * plateau_scale``.

    Example::

        sched = autolr.torch.scheduler(trial, opt, steps_per_epoch=len(loader), epochs=epochs)
        for epoch in range(epochs):
            for x, y in loader:
                opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
                sched.step()
            sched.epoch_end(val_loss)

    Args:
        optimizer: the optimizer whose learning rates it sets.
        name: one of :data:`SCHEDULES`.
        steps_per_epoch: optimizer steps per epoch.
        epochs: epochs of the run.
        params: the schedule's parameters, named as in the study.
        warmup_frac: fraction of all steps spent warming up linearly.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        name: str,
        *,
        steps_per_epoch: int,
        epochs: int,
        params: Mapping[str, float] | None = None,
        warmup_frac: float = 0.0,
    ) -> None:
        if name not in SCHEDULES:
            raise ValueError(f"unknown schedule {name!r}; choose from {SCHEDULES}")
        _check_positive_int("steps_per_epoch", steps_per_epoch)
        _check_positive_int("epochs", epochs)
        if not 0 <= warmup_frac < 1:
            raise ValueError(f"warmup_frac must be in [0, 1), got {warmup_frac}")
        self.optimizer = optimizer
        self.name = name
        self.params = dict(params or {})
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = steps_per_epoch * epochs
        self.warmup_steps = round(warmup_frac * self.total_steps)
        self.base_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        self.last_step = 0
        self.plateau_scale = 1.0
        self._best = math.inf
        self._bad_epochs = 0
        self._apply()

    def step(self) -> None:
        """Advance one optimizer step; call after every ``optimizer.step()``."""
        self.last_step += 1
        self._apply()

    def epoch_end(self, metric: float | None = None) -> None:
        """Call once after every epoch; ``plateau`` needs the validation ``metric`` (lower is
        better) and cuts the learning rate by 10x after ``plateau_patience`` epochs without a
        relative improvement of 1e-4, at most twice."""
        if self.name != "plateau":
            return
        if metric is None:
            raise ValueError("the 'plateau' schedule needs epoch_end(metric): pass the val loss")
        value = float(metric)
        if value < self._best * (1 - _PLATEAU_THRESHOLD):
            self._best = value
            self._bad_epochs = 0
        else:
            self._bad_epochs += 1
        if self._bad_epochs > self.params["plateau_patience"]:
            self.plateau_scale = max(self.plateau_scale * PLATEAU_FACTOR, PLATEAU_MIN_SCALE)
            self._bad_epochs = 0
            self._apply()

    def get_last_lr(self) -> list[float]:
        """The learning rate of every parameter group, as torch schedulers report it."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the schedule (plain numbers)."""
        return {
            "name": self.name,
            "params": dict(self.params),
            "last_step": self.last_step,
            "plateau_scale": self.plateau_scale,
            "best": self._best,
            "bad_epochs": self._bad_epochs,
            "base_lrs": list(self.base_lrs),
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned and re-apply the learning rates."""
        self.name = state["name"]
        self.params = dict(state["params"])
        self.last_step = int(state["last_step"])
        self.plateau_scale = float(state["plateau_scale"])
        self._best = float(state["best"])
        self._bad_epochs = int(state["bad_epochs"])
        self.base_lrs = [float(x) for x in state["base_lrs"]]
        self.warmup_steps = int(state["warmup_steps"])
        self.total_steps = int(state["total_steps"])
        self._apply()

    def _apply(self) -> None:
        f = lr_factor(
            self.name,
            self.last_step,
            total_steps=self.total_steps,
            steps_per_epoch=self.steps_per_epoch,
            params=self.params,
            warmup_steps=self.warmup_steps,
        )
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * f * self.plateau_scale

    def __repr__(self) -> str:
        return f"Schedule({self.name!r}, params={self.params}, warmup_steps={self.warmup_steps})"


def scheduler(
    trial: optuna.Trial,
    optimizer: torch.optim.Optimizer,
    *,
    steps_per_epoch: int,
    epochs: int,
    choices: Sequence[str] = SCHEDULES,
    warmup: bool | float = True,
) -> Schedule:
    """Suggest a learning-rate schedule and its parameters for this trial, and build it.

    The optimizer's current learning rate is the schedule's reference: the starting lr (after
    warm-up) for constant, step, exponential, cosine and plateau; the peak for cyclic and
    onecycle. See the module docstring for every searched parameter and its range.

    Example::

        opt = autolr.torch.optimizer(trial, model.parameters(), lr=lr)
        sched = autolr.torch.scheduler(trial, opt, steps_per_epoch=len(loader), epochs=epochs)
        # after every opt.step(): sched.step(); after every epoch: sched.epoch_end(val_loss)

    Args:
        trial: the Optuna trial.
        optimizer: the optimizer, already at its (reference) learning rate.
        steps_per_epoch: optimizer steps per epoch (``len(loader)``, divided by the gradient
            accumulation steps if any).
        epochs: epochs of the run.
        choices: the schedules to choose from, a subset of :data:`SCHEDULES`.
        warmup: ``True`` searches ``warmup_frac`` in [0, 0.1] for the schedules it applies to;
            a float fixes the fraction of steps; ``False`` means no warm-up.

    Returns:
        A :class:`Schedule`: call ``step()`` after every ``optimizer.step()`` and
        ``epoch_end(val_loss)`` after every epoch.
    """
    names = check_choices(choices, SCHEDULES)
    if not isinstance(warmup, bool) and not (
        isinstance(warmup, (int, float)) and 0 <= warmup < 1
    ):
        raise ValueError(f"warmup must be True, False or a fraction in [0, 1), got {warmup!r}")
    _check_positive_int("steps_per_epoch", steps_per_epoch)
    _check_positive_int("epochs", epochs)
    name = str(trial.suggest_categorical("scheduler", names))
    p: dict[str, float] = {}
    if name == "step":
        p["step_gamma"] = trial.suggest_float("step_gamma", 0.1, 0.5, log=True)
        p["step_every"] = trial.suggest_float("step_every", 0.2, 0.5)
    elif name == "exponential":
        p["exponential_final"] = trial.suggest_float("exponential_final", 1e-3, 0.3, log=True)
    elif name == "cosine":
        p["cosine_final"] = trial.suggest_float("cosine_final", 1e-4, 1e-1, log=True)
    elif name == "cyclic":
        p["cyclic_cycles"] = trial.suggest_int("cyclic_cycles", 1, 4)
        p["cyclic_ratio"] = trial.suggest_float("cyclic_ratio", 3.0, 10.0, log=True)
    elif name == "onecycle":
        p["onecycle_pct_start"] = trial.suggest_float("onecycle_pct_start", 0.1, 0.5)
    elif name == "plateau":
        p["plateau_patience"] = trial.suggest_int("plateau_patience", 1, 5)
    warmup_frac = 0.0
    if name in WARMUP_APPLIES:
        if warmup is True:
            warmup_frac = trial.suggest_float("warmup_frac", 0.0, 0.1)
        elif warmup is not False:
            warmup_frac = float(warmup)
    return Schedule(
        optimizer,
        name,
        steps_per_epoch=steps_per_epoch,
        epochs=epochs,
        params=p,
        warmup_frac=warmup_frac,
    )


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
