"""autolr.lightning: real Lightning fits of a small classifier on scikit-learn's breast cancer data."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")

import autolr  # noqa: E402
from autolr.lightning import AutolrCallback, tune_lr  # noqa: E402

torch.set_num_threads(1)
EPOCHS = 5
UNSTABLE = {"nan", "inf", "diverged", "oscillating"}
STOPPED = UNSTABLE | {"underperforming"}


@pytest.fixture(autouse=True)
def _quiet() -> None:
    warnings.filterwarnings("ignore", module="lightning")  # "no workers in your DataLoader" etc.


@pytest.fixture(scope="module")
def loaders() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    x, y = load_breast_cancer(return_X_y=True)
    xt, xv, yt, yv = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    mu, sd = xt.mean(0), xt.std(0)

    def loader(x: Any, y: Any, shuffle: bool) -> Any:
        ds = torch.utils.data.TensorDataset(torch.tensor((x - mu) / sd, dtype=torch.float32),
                                            torch.tensor(y))
        return torch.utils.data.DataLoader(ds, batch_size=50, shuffle=shuffle)

    return loader(xt, yt, True), loader(xv, yv, False)


class LitClassifier(L.LightningModule):
    """The learning rate lives in ``hparams``, as ``save_hyperparameters()`` puts it."""

    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(30, 32), torch.nn.ReLU(),
                                       torch.nn.Linear(32, 2))

    def training_step(self, batch: Any, _: int) -> Any:
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch: Any, _: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)


def make_trainer(**kwargs: Any) -> Any:
    options = {"max_epochs": EPOCHS, "accelerator": "cpu", "logger": False,
               "enable_checkpointing": False, "enable_progress_bar": False,
               "enable_model_summary": False, **kwargs}
    return L.Trainer(**options)


def _check_study(result: autolr.Result, n_trials: int) -> Any:
    """The total is exact, stopped trials ran fewer epochs, the recommendation is a stable lr."""
    table = result.trials()
    counted = table[table["state"].isin(["COMPLETE", "PRUNED"])]
    assert len(counted) == n_trials, table
    stopped = table[table["state"] == "PRUNED"]
    assert len(stopped) >= 1, table[["lr", "state", "steps", "stop_reason"]]
    assert set(stopped["stop_reason"]) <= STOPPED
    complete = table[table["state"] == "COMPLETE"]
    assert (complete["steps"] == EPOCHS).all()  # one report per epoch; the sanity check is not one
    assert (stopped["steps"] < EPOCHS).all()
    rec = result.recommended_trial
    assert rec is not None and rec.state.name == "COMPLETE"
    unstable = stopped[stopped["stop_reason"].isin(UNSTABLE)]
    if len(unstable):
        assert result.best_lr < unstable["lr"].min()
    assert result.best_value <= 1.25 * complete["value"].min()  # stability-aware, near the best
    return table


def test_callback_reports_each_validation_and_stops_unstable_trials_early(
    loaders: Any, db: str
) -> None:
    train_loader, val_loader = loaders
    epochs_run: dict[float, int] = {}

    @autolr.tune(n_trials=5, lr=(1e-3, 30.0), seed=0, storage=db, show_progress_bar=False)
    def lit(lr: float) -> float:
        torch.manual_seed(0)
        callback = AutolrCallback()
        trainer = make_trainer(callbacks=[callback])
        trainer.fit(LitClassifier(lr=lr), train_loader, val_loader)
        epochs_run[lr] = trainer.current_epoch
        assert callback.last_value is not None
        return callback.last_value

    result = lit.run()
    table = _check_study(result, 5)
    for row in table.itertuples():
        if row.state == "PRUNED":  # fit really ended early, cleanly, at the trial's stop
            assert epochs_run[row.lr] == row.steps < EPOCHS
        else:
            assert epochs_run[row.lr] == EPOCHS
    steps = sorted(result.recommended_trial.intermediate_values)
    assert steps == [len(train_loader) * (e + 1) for e in range(EPOCHS)]  # global_step


def test_tune_lr_sets_the_modules_lr_on_fresh_modules_and_trainers(
    loaders: Any, db: str, tmp_path: Path
) -> None:
    train_loader, val_loader = loaders
    result = tune_lr(module=lambda: LitClassifier(lr=0.1), trainer=make_trainer,
                     train_dataloaders=train_loader, val_dataloaders=val_loader, n_trials=6,
                     lr=(1e-3, 30.0), seed=0, storage=db, show_progress_bar=False)
    assert result.study.study_name == "LitClassifier"
    table = _check_study(result, 6)
    # the module's own lr (LitClassifier's default) is measured first, next to 1e-3
    assert {round(lr, 9) for lr in table["lr"].iloc[:2]} == {1e-3, 0.1}
    again = autolr.load("LitClassifier", storage=db)
    assert len(again.trials()) == len(table) and again.best_lr == result.best_lr


def test_tune_lr_checks_its_factories_before_storing_anything(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'never.db'}"
    one = LitClassifier()

    class NoLr(L.LightningModule):
        pass

    cases = [
        ({"module": lambda: one, "trainer": make_trainer}, "^module: returned the same instance"),
        ({"module": NoLr, "trainer": make_trainer}, "^module: NoLr has no 'lr'"),
        ({"module": LitClassifier, "trainer": make_trainer, "attr_name": "eta"}, "^attr_name: "),
        ({"module": lambda: torch.nn.Linear(2, 2), "trainer": make_trainer}, "^module: expected"),
        ({"module": LitClassifier, "trainer": lambda: "trainer"}, "^trainer: expected"),
        ({"module": LitClassifier, "trainer": make_trainer, "monitor": ""}, "^monitor: "),
    ]
    for kwargs, match in cases:
        with pytest.raises((ValueError, TypeError), match=match):
            tune_lr(storage=db, **kwargs)
    assert not (tmp_path / "never.db").exists()


def test_a_metric_that_is_never_logged_is_named_in_the_error(loaders: Any, db: str) -> None:
    train_loader, val_loader = loaders
    with pytest.raises(ValueError, match="monitor: no metric 'val_acc' after validation "
                                         r"\(logged: val_loss\)"):
        tune_lr(module=LitClassifier, trainer=lambda: make_trainer(limit_train_batches=1),
                train_dataloaders=train_loader, val_dataloaders=val_loader, monitor="val_acc",
                n_trials=3, storage=db, show_progress_bar=False)


def test_outside_a_study_the_callback_only_records(loaders: Any) -> None:
    callback = AutolrCallback()
    trainer = make_trainer(callbacks=[callback], max_epochs=None, max_steps=8)
    trainer.fit(LitClassifier(), *loaders)
    assert callback.last_value is not None and callback.stopped is None


def test_autolr_lightning_without_lightning_names_the_extra() -> None:
    code = "import sys; sys.modules['lightning'] = None\nimport autolr.lightning\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "pip install autolr[lightning]" in proc.stderr
