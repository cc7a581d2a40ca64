"""Keras 3: a callback that reports ``val_loss`` to autolr after every epoch.

Needs ``pip install autolr[keras]`` (Keras 3). Keras 3 runs on PyTorch, so no TensorFlow is
needed: set ``KERAS_BACKEND=torch`` before Keras is first imported. Without ``KERAS_BACKEND``,
when the backend Keras would pick (``~/.keras/keras.json``'s, else TensorFlow) is not installed
and torch is, importing ``autolr.keras`` before Keras picks torch rather than letting Keras
fail. The callback itself works on any backend.

Example::

    import os
    os.environ["KERAS_BACKEND"] = "torch"      # before keras is imported
    import keras
    import autolr
    from autolr.keras import AutolrCallback

    @autolr.tune(n_trials=12)
    def train(lr: float) -> float:
        model = make_model()
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                      loss="sparse_categorical_crossentropy")
        callback = AutolrCallback()            # reports val_loss, stops the trial when told
        model.fit(x, y, validation_data=(xv, yv), epochs=10, callbacks=[callback], verbose=0)
        return callback.last_value
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any


def _keras_would_fail() -> bool:
    """True when Keras, imported now, would pick a backend that is not installed, and torch is.

    Keras takes ``KERAS_BACKEND`` (an explicit choice: always left alone), else the backend in
    ``~/.keras/keras.json`` (which Keras itself writes on first import, naming its default
    ``tensorflow``), else ``tensorflow``. When that backend's package is missing, ``import
    keras`` fails; autolr picks the torch backend instead.
    """
    if "keras" in sys.modules or "KERAS_BACKEND" in os.environ:
        return False
    backend = "tensorflow"
    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
    try:
        backend = str(json.loads(config.read_text()).get("backend", backend))
    except (OSError, ValueError, AttributeError):
        pass
    installed = importlib.util.find_spec
    return backend != "torch" and installed(backend) is None and installed("torch") is not None


if _keras_would_fail():
    os.environ["KERAS_BACKEND"] = "torch"

try:
    import keras
except ImportError as e:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "autolr.keras needs Keras 3 and a backend: pip install autolr[keras], and set "
        f"KERAS_BACKEND=torch before keras is imported ({type(e).__name__}: {e})"
    ) from e
if int(keras.__version__.split(".")[0]) < 3:  # pragma: no cover - Keras 2 is not installed here
    raise ImportError(f"autolr.keras needs Keras 3, found {keras.__version__}: pip install autolr[keras]")

from autolr._callbacks import Reporting

__all__ = ["AutolrCallback"]


class AutolrCallback(Reporting, keras.callbacks.Callback):
    """Reports a metric to autolr at the end of every epoch, and stops the trial when told.

    At each epoch end it calls ``autolr.report(logs[monitor], step=epoch)`` (the epoch index,
    counting on when one trial calls ``fit`` again). When autolr stops the trial (unstable or
    hopeless) the callback catches :class:`autolr.TrialPruned` and sets
    ``model.stop_training``: ``fit`` returns after that epoch and autolr records the trial as
    stopped, with the reason and step. Outside a study it only remembers the values.

    Example::

        callback = AutolrCallback(monitor="val_loss")
        model.fit(x, y, validation_data=(xv, yv), epochs=10, callbacks=[callback])
        return callback.last_value

    Args:
        monitor: the key of the epoch's logs to report (``"val_loss"`` needs
            ``validation_data`` or ``validation_split`` in ``fit``).

    Attributes:
        last_value: the metric at the last epoch end (``None`` before the first one).
        stopped: the :class:`autolr.TrialPruned` that stopped the trial, or ``None``.
    """

    def __init__(self, *, monitor: str = "val_loss") -> None:
        super().__init__()
        self._start_reporting(monitor)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            found = ", ".join(sorted(logs)) or "none"
            raise ValueError(
                f"monitor: no metric {self.monitor!r} in the epoch's logs ({found}); give fit "
                "validation_data= (or validation_split=) or pass monitor=..."
            )
        if self.report_value(logs[self.monitor], max(int(epoch), self._last_step + 1)):
            self.model.stop_training = True
