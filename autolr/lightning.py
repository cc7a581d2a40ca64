"""PyTorch Lightning: a callback that reports to autolr, and a helper that tunes a module's lr.

Needs Lightning 2.x: ``pip install autolr[lightning]``. Works with ``lightning.Trainer``
(``lightning.pytorch``); the standalone ``pytorch_lightning`` package has its own ``Callback``
class, which Lightning would not accept from here.

Example::

    import lightning as L
    import autolr
    from autolr.lightning import AutolrCallback, tune_lr

    @autolr.tune(n_trials=12)
    def train(lr: float) -> float:                 # your own function: full control
        callback = AutolrCallback()                # reports val_loss, stops the trial when told
        trainer = L.Trainer(max_epochs=10, callbacks=[callback])
        trainer.fit(LitModel(lr=lr), datamodule=dm)
        return callback.last_value

    result = tune_lr(module=LitModel, trainer=lambda: L.Trainer(max_epochs=10), datamodule=dm)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

try:
    import lightning.pytorch as pl
    from lightning.pytorch.trainer.states import TrainerFn
    from lightning.pytorch.utilities.parsing import (
        lightning_getattr,
        lightning_hasattr,
        lightning_setattr,
    )
except ImportError as e:  # pragma: no cover - exercised by a subprocess test
    raise ImportError("autolr.lightning needs Lightning 2.x: pip install autolr[lightning]") from e

from autolr._callbacks import Reporting, check_monitor
from autolr._tune import tune

if TYPE_CHECKING:
    from autolr._result import Result

__all__ = ["AutolrCallback", "tune_lr"]

#: The attributes Lightning's own ``Tuner.lr_find`` looks for, in this order.
LR_ATTRS = ("lr", "learning_rate")


class AutolrCallback(Reporting, pl.Callback):
    """Reports a logged metric to autolr after every validation, and stops the trial when told.

    After each validation run of ``trainer.fit`` (never the sanity check) it calls
    ``autolr.report(trainer.callback_metrics[monitor], step=trainer.global_step)``: the step is
    the optimizer step, the x axis of Lightning's own loggers. When autolr stops the trial
    (unstable or hopeless), the callback catches :class:`autolr.TrialPruned` and sets
    ``trainer.should_stop``: ``fit`` ends cleanly after that epoch and autolr records the trial
    as stopped, with the reason and step. Outside a study it only remembers the values.

    It reports from ``on_validation_end``, after the module's own ``on_validation_epoch_end``
    (where metrics are often logged) has run, as Lightning's ``EarlyStopping`` does.

    Example::

        callback = AutolrCallback(monitor="val_loss")
        trainer = lightning.Trainer(max_epochs=10, callbacks=[callback])
        trainer.fit(model, datamodule=dm)
        return callback.last_value

    Args:
        monitor: the logged metric to report (``self.log("val_loss", ...)`` in the module).

    Attributes:
        last_value: the metric at the last validation (``None`` before the first one).
        stopped: the :class:`autolr.TrialPruned` that stopped the trial, or ``None``.
    """

    def __init__(self, *, monitor: str = "val_loss") -> None:
        super().__init__()
        self._start_reporting(monitor)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            logged = ", ".join(sorted(metrics)) or "none"
            raise ValueError(
                f"monitor: no metric {self.monitor!r} after validation (logged: {logged}); "
                f"log it with self.log({self.monitor!r}, ...) or pass monitor=..."
            )
        if self.report_value(metrics[self.monitor], trainer.global_step):
            trainer.should_stop = True


def _lr_attr(model: Any, attr_name: str) -> str:
    """The attribute that holds the module's learning rate, as ``Tuner.lr_find`` finds it."""
    if attr_name:
        if not lightning_hasattr(model, attr_name):
            raise ValueError(
                f"attr_name: {type(model).__name__} has no attribute {attr_name!r} "
                "(in the module or its hparams)"
            )
        return attr_name
    for name in LR_ATTRS:
        if lightning_hasattr(model, name):
            return name
    raise ValueError(
        f"module: {type(model).__name__} has no 'lr' or 'learning_rate' attribute (in the module "
        "or its hparams) for autolr to set; add one, or name yours with attr_name=..."
    )


def tune_lr(
    *,
    module: Callable[[], pl.LightningModule],
    trainer: Callable[[], pl.Trainer],
    datamodule: pl.LightningDataModule | None = None,
    train_dataloaders: Any = None,
    val_dataloaders: Any = None,
    monitor: str = "val_loss",
    attr_name: str = "",
    study_name: str | None = None,
    **options: Any,
) -> Result:
    """Tune a LightningModule's ``lr`` (or ``learning_rate``) attribute with autolr.

    Every trial builds a fresh module with ``module()`` and a fresh Trainer with ``trainer()``,
    sets the trial's learning rate on the module the way Lightning's ``Tuner.lr_find`` does (the
    attribute ``attr_name``, else ``lr``, else ``learning_rate``, in the module or its
    ``hparams``), adds an :class:`AutolrCallback` and runs ``fit``. The trial's value is the
    monitored metric at the last validation. The module's own learning rate (what ``module()``
    sets) is measured first, next to 1e-3. Trials run with ``lightning.seed_everything(seed)``
    first (``seed`` from ``run(seed=...)``, default 0).

    Example::

        import lightning as L
        from autolr.lightning import tune_lr

        result = tune_lr(
            module=LitModel,                    # a class or any function returning a new module
            trainer=lambda: L.Trainer(max_epochs=10, enable_progress_bar=False),
            datamodule=dm,
            n_trials=12, storage="sqlite:///studies/lit.db",
        )
        model = LitModel(lr=result.best_lr)

    Args:
        module: called with no arguments, returns a new LightningModule.
        trainer: called with no arguments, returns a new ``lightning.Trainer`` (the callback is
            appended to its callbacks).
        datamodule: passed to ``fit`` (or ``train_dataloaders`` / ``val_dataloaders``).
        train_dataloaders: passed to ``fit``.
        val_dataloaders: passed to ``fit``.
        monitor: the logged metric to minimize (``direction="maximize"`` for an accuracy).
        attr_name: the module's learning-rate attribute, when it is not ``lr`` or
            ``learning_rate``.
        study_name: default: the module's class name.
        **options: any option of :func:`autolr.tune` (``n_trials``, ``storage``, ``lr`` for the
            search range, ``direction``, ``seed``, ``pruner``, ``timeout``, ...).

    Returns:
        The study's :class:`autolr.Result`.

    Raises:
        ValueError: before anything is stored, when a factory does not build a new object of
            the right type on every call or the module has no learning-rate attribute.
    """
    monitor = check_monitor(monitor)
    attr, name, own_lr = _probe(module, trainer, attr_name)
    fit_kwargs = {"datamodule": datamodule, "train_dataloaders": train_dataloaders,
                  "val_dataloaders": val_dataloaders}

    def train(lr: float = own_lr or 1e-3, seed: int = 0) -> float:
        pl.seed_everything(seed, workers=True, verbose=False)
        model = module()
        lightning_setattr(model, attr, lr)
        fitter = trainer()
        callback = AutolrCallback(monitor=monitor)
        fitter.callbacks.append(callback)  # type: ignore[attr-defined]  # a property Lightning leaves untyped
        fitter.fit(model, **fit_kwargs)
        if callback.last_value is None:
            raise RuntimeError(
                "trainer: fit ran no validation, so there is nothing to tune on; give it "
                "validation data and let it validate at least once"
            )
        return callback.last_value

    train.__name__ = train.__qualname__ = name
    return tune(study_name=study_name or name, **options)(train).run()


def _probe(module: Any, trainer: Any, attr_name: str) -> tuple[str, str, float | None]:
    """Check both factories before anything is stored: (lr attribute, the module's class name,
    the lr the module comes with, if it is a positive number)."""
    for arg, value in (("module", module), ("trainer", trainer)):
        if not callable(value):
            raise ValueError(f"{arg}: expected a function or class to call, got {value!r}")
    if not isinstance(attr_name, str):
        raise ValueError(f"attr_name: expected a string, got {attr_name!r}")
    first, second = module(), module()
    if not isinstance(first, pl.LightningModule):
        raise ValueError(
            f"module: expected a function returning a lightning LightningModule, got one "
            f"returning {type(first).__name__}"
        )
    if first is second:
        raise ValueError(
            "module: returned the same instance twice; every trial needs a new module (pass the "
            "class, or a function that builds one)"
        )
    t1, t2 = trainer(), trainer()
    if not isinstance(t1, pl.Trainer):
        raise ValueError(
            f"trainer: expected a function returning a lightning.Trainer, got one returning "
            f"{type(t1).__name__}"
        )
    if t1 is t2:
        raise ValueError(
            "trainer: returned the same Trainer twice; every trial needs a new one "
            "(e.g. trainer=lambda: lightning.Trainer(max_epochs=10))"
        )
    attr = _lr_attr(first, attr_name)
    own = lightning_getattr(first, attr)
    own_lr = float(own) if isinstance(own, (int, float)) and not isinstance(own, bool) and own > 0 else None
    return attr, type(first).__name__, own_lr
