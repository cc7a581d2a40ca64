"""autolr.transformers: real Hugging Face Trainer runs of a tiny BERT built from a config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from _examples import load_example  # noqa: E402

import autolr  # noqa: E402
from autolr.transformers import AutolrCallback  # noqa: E402

EPOCHS = 3


@pytest.fixture(scope="module")
def bert() -> Any:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)
    return load_example("transformers_tiny_bert")


def test_callback_reports_each_evaluation_and_stops_trials_early(
    bert: Any, db: str, tmp_path: Path
) -> None:
    train, val = bert.Sentiment(640, seed=1), bert.Sentiment(200, seed=2)
    epochs_run: dict[float, float] = {}

    @autolr.tune(n_trials=5, lr=(1e-3, 10.0), seed=0, storage=db, show_progress_bar=False)
    def tiny_bert(lr: float) -> float:
        callback = AutolrCallback()
        trainer = bert.finetune(lr, train=train, val=val, epochs=EPOCHS, out=str(tmp_path),
                                callbacks=[callback])
        epochs_run[lr] = trainer.state.epoch
        trainer.evaluate()  # after training: same step, not reported twice
        assert callback.last_value is not None
        return callback.last_value

    result = tiny_bert.run()
    table = result.trials()
    assert len(table[table["state"].isin(["COMPLETE", "PRUNED"])]) == 5, table
    stopped = table[table["state"] == "PRUNED"]
    assert len(stopped) >= 1 and stopped["stop_reason"].notna().all(), table
    for row in table.itertuples():
        if row.state == "PRUNED":  # the Trainer really stopped at the trial's stop
            assert epochs_run[row.lr] == row.steps < EPOCHS
        else:
            assert row.steps == EPOCHS and epochs_run[row.lr] == EPOCHS
    steps_per_epoch = len(train) // 32
    rec = result.recommended_trial
    assert rec is not None and rec.state.name == "COMPLETE"
    assert sorted(rec.intermediate_values) == [steps_per_epoch * (e + 1) for e in range(EPOCHS)]
    complete = table[table["state"] == "COMPLETE"]
    assert result.best_value <= 1.25 * complete["value"].min()  # stability-aware, near the best
    assert result.best_value < 0.6  # it learned the keyword (chance is 0.69)


def test_a_missing_metric_names_monitor_and_what_was_there(bert: Any, tmp_path: Path) -> None:
    train, val = bert.Sentiment(64, seed=1), bert.Sentiment(32, seed=2)
    with pytest.raises(ValueError, match=r"^monitor: no metric 'accuracy' .*eval_loss"):
        bert.finetune(1e-3, train=train, val=val, epochs=1, out=str(tmp_path),
                      callbacks=[AutolrCallback(monitor="accuracy")])
    with pytest.raises(ValueError, match="^monitor: "):
        AutolrCallback(monitor="")


def test_autolr_transformers_without_transformers_names_the_extra() -> None:
    code = "import sys; sys.modules['transformers'] = None\nimport autolr.transformers\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "pip install autolr[transformers]" in proc.stderr
