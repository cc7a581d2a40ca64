"""autolr.keras: real Keras 3 fits, on the torch backend, of a small MLP on scikit-learn's digits."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from _examples import load_example  # noqa: E402

import autolr  # noqa: E402
from autolr.keras import AutolrCallback  # noqa: E402

EPOCHS = 5
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def example() -> Any:
    torch.set_num_threads(1)
    return load_example("keras_digits")


def test_runs_on_torch_without_tensorflow() -> None:
    assert keras.backend.backend() == "torch"
    assert "tensorflow" not in sys.modules


def test_callback_reports_each_epoch_and_stops_trials_early(example: Any, db: str) -> None:
    data = example.digits()
    epochs_run: dict[float, int] = {}

    @autolr.tune(n_trials=6, lr=(1e-3, 30.0), seed=0, storage=db, show_progress_bar=False)
    def keras_mlp(lr: float) -> float:
        callback = AutolrCallback()
        history = example.fit(lr, data, epochs=EPOCHS, callbacks=[callback])
        epochs_run[lr] = len(history.history["val_loss"])
        assert callback.last_value == history.history["val_loss"][-1]
        return callback.last_value

    result = keras_mlp.run()
    table = result.trials()
    assert len(table[table["state"].isin(["COMPLETE", "PRUNED"])]) == 6, table
    stopped = table[table["state"] == "PRUNED"]
    assert len(stopped) >= 1 and stopped["stop_reason"].notna().all(), table
    for row in table.itertuples():
        if row.state == "PRUNED":  # fit really returned at the trial's stop
            assert epochs_run[row.lr] == row.steps < EPOCHS
        else:
            assert epochs_run[row.lr] == row.steps == EPOCHS
    rec = result.recommended_trial
    assert rec is not None and rec.state.name == "COMPLETE"
    assert sorted(rec.intermediate_values) == list(range(EPOCHS))
    complete = table[table["state"] == "COMPLETE"]
    assert result.best_value <= 1.25 * complete["value"].min()  # stability-aware, near the best
    default = next(t for t in result.study.trials if t.params["lr"] == pytest.approx(1e-3))
    last = default.intermediate_values[max(default.intermediate_values)]
    assert result.best_value < last / 2  # Adam's 1e-3 is too slow here (measured first)


def test_a_second_fit_in_one_trial_counts_its_epochs_on(example: Any, db: str) -> None:
    data = example.digits()

    @autolr.tune(n_trials=1, storage=db, show_progress_bar=False)
    def two_stages(lr: float) -> float:
        callback = AutolrCallback()
        example.fit(lr, data, epochs=2, callbacks=[callback])
        example.fit(lr, data, epochs=2, callbacks=[callback])
        assert callback.last_value is not None
        return callback.last_value

    trial = two_stages.run().study.trials[0]
    assert sorted(trial.intermediate_values) == [0, 1, 2, 3]


def test_without_validation_data_the_error_names_monitor(example: Any) -> None:
    xt, yt, _, _ = example.digits()
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"^monitor: no metric 'val_loss' .*\(loss\)"):
        model.fit(xt, yt, epochs=1, callbacks=[AutolrCallback()], verbose=0)


def test_autolr_keras_without_keras_names_the_extra() -> None:
    code = "import sys; sys.modules['keras'] = None\nimport autolr.keras\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "pip install autolr[keras]" in proc.stderr


@pytest.mark.parametrize("config", [None, "tensorflow"])
def test_when_keras_would_pick_a_missing_backend_autolr_keras_picks_torch(
    tmp_path: Any, config: str | None
) -> None:
    import importlib.util
    import json

    for missing in ("tensorflow", "jax"):
        if importlib.util.find_spec(missing) is not None:
            pytest.skip(f"{missing} is installed")
    if config is not None:  # keras writes {"backend": "tensorflow"} itself on first import
        (tmp_path / "keras.json").write_text(json.dumps({"backend": config}))
    code = "import autolr.keras, keras; print(keras.backend.backend())\n"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "torch"


def test_an_explicit_keras_backend_is_left_alone() -> None:
    code = "import autolr.keras\n"
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "KERAS_BACKEND=torch" in proc.stderr
