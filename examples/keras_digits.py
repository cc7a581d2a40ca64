"""Tune the learning rate of a Keras 3 model, on PyTorch (no TensorFlow), with one callback.

A small Keras MLP on scikit-learn's digits. ``AutolrCallback`` reports ``val_loss`` after every
epoch; autolr stops the runs that blow up or trail the others, and recommends a stable lr.

    python examples/keras_digits.py                     # ~20 s on one CPU core
    python examples/keras_digits.py --trials 4 --storage sqlite:///keras.db

Needs ``pip install autolr[keras,sklearn]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported

import argparse  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import autolr  # noqa: E402
from autolr.keras import AutolrCallback  # noqa: E402


def digits() -> tuple[Any, Any, Any, Any]:
    x, y = load_digits(return_X_y=True)
    xt, xv, yt, yv = train_test_split(x / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    return xt.astype("float32"), yt, xv.astype("float32"), yv


def fit(lr: float, data: tuple[Any, Any, Any, Any], *, epochs: int,
        callbacks: list[Any]) -> keras.callbacks.History:
    """Train a fresh MLP with Adam at ``lr``, validating after every epoch."""
    keras.utils.set_random_seed(0)
    xt, yt, xv, yv = data
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model.fit(xt, yt, validation_data=(xv, yv), epochs=epochs, batch_size=64,
                     callbacks=callbacks, verbose=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--storage", default=None, help="default: a new temporary SQLite file")
    args = ap.parse_args()
    storage = args.storage or f"sqlite:///{tempfile.mkdtemp(prefix='autolr-keras-')}/keras.db"
    data = digits()

    @autolr.tune(n_trials=args.trials, lr=(1e-4, 1.0), seed=0, storage=storage)
    def keras_digits(lr: float) -> float:
        callback = AutolrCallback()  # reports val_loss each epoch, stops the trial when told
        fit(lr, data, epochs=args.epochs, callbacks=[callback])
        assert callback.last_value is not None
        return callback.last_value

    result = keras_digits.run()
    print(f"backend: {keras.backend.backend()}")
    print(f"recommended lr: {result.best_lr:.3g} (val_loss {result.best_value:.4f})")
    print(result.trials()[["number", "state", "lr", "value", "steps", "stop_reason"]]
          .to_string(index=False))
    print(f"default Adam lr 1e-3: val_loss {np.round(result.trials().query('lr == 0.001')['value'].iloc[0], 4)}")


if __name__ == "__main__":
    main()
