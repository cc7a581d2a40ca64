"""Hugging Face ``Trainer``: a callback that reports each evaluation to autolr.

Needs ``pip install autolr[transformers]`` (transformers and accelerate).

Example::

    from transformers import Trainer, TrainingArguments
    import autolr
    from autolr.transformers import AutolrCallback

    @autolr.tune(n_trials=12)
    def finetune(lr: float) -> float:
        callback = AutolrCallback()                  # reports eval_loss, stops when told
        args = TrainingArguments("out", learning_rate=lr, eval_strategy="epoch",
                                 num_train_epochs=5, save_strategy="no", report_to="none")
        Trainer(model=make_model(), args=args, train_dataset=train, eval_dataset=val,
                callbacks=[callback]).train()
        return callback.last_value
"""

from __future__ import annotations

from typing import Any

try:
    from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
except ImportError as e:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "autolr.transformers needs Hugging Face transformers: pip install autolr[transformers]"
    ) from e

from autolr._callbacks import Reporting

__all__ = ["AutolrCallback"]


class AutolrCallback(Reporting, TrainerCallback):
    """Reports an evaluation metric to autolr at each evaluation, and stops the trial when told.

    At every evaluation during ``Trainer.train`` it calls
    ``autolr.report(metrics[monitor], step=state.global_step)``. When autolr stops the trial
    (unstable or hopeless) the callback catches :class:`autolr.TrialPruned` and sets
    ``control.should_training_stop``: training ends cleanly and autolr records the trial as
    stopped, with the reason and step. An evaluation at a step already reported (a
    ``trainer.evaluate()`` after training) is not reported again. Outside a study it only
    remembers the values.

    Example::

        callback = AutolrCallback(monitor="eval_loss")
        trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                          callbacks=[callback])
        trainer.train()
        return callback.last_value

    Args:
        monitor: the metric to report, as the Trainer names it (``"eval_loss"``; a name
            without the ``eval_`` prefix, such as ``"accuracy"`` from ``compute_metrics``, is
            looked up with it too).

    Attributes:
        last_value: the metric at the last evaluation (``None`` before the first one).
        stopped: the :class:`autolr.TrialPruned` that stopped the trial, or ``None``.
    """

    def __init__(self, *, monitor: str = "eval_loss") -> None:
        self._start_reporting(monitor)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        metrics = metrics or {}
        key = self.monitor if self.monitor in metrics else f"eval_{self.monitor}"
        if key not in metrics:
            found = ", ".join(sorted(metrics)) or "none"
            raise ValueError(
                f"monitor: no metric {self.monitor!r} in the evaluation's metrics ({found})"
            )
        if self.report_value(metrics[key], state.global_step):
            control.should_training_stop = True
