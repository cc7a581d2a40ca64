"""Bad input gets one line naming the parameter, raised before anything is written."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

import autolr


def ok(lr: float) -> float:
    return lr


BAD_OPTIONS = [
    ({"n_trials": 0}, r"^n_trials: expected an int >= 1 or None, got 0$"),
    ({"n_trials": 2.5}, r"^n_trials: expected an int >= 1"),
    ({"n_trials": True}, r"^n_trials: "),
    ({"timeout": -1}, r"^timeout: expected seconds > 0"),
    ({"timeout": "1h"}, r"^timeout: "),
    ({"lr": (0, 1e-1)}, r"^lr: learning-rate bounds must be finite and > 0"),
    ({"lr": (-1e-3, 1e-1)}, r"^lr: learning-rate bounds must be finite and > 0"),
    ({"lr": (1e-1, 1e-3)}, r"^lr: low must be < high"),
    ({"lr": (1e-3, 1e-3)}, r"^lr: low must be < high"),
    ({"lr": 1e-3}, r"^lr: expected a \(low, high\) pair"),
    ({"lr": (1e-5, float("inf"))}, r"^lr: learning-rate bounds must be finite"),
    ({"lr": ("a", "b")}, r"^lr: expected positive numbers"),
    ({"lr": "finder"}, r"^lr: autolr cannot run a range test without your model and data; pass lr=autolr.torch.find_lr"),
    ({"direction": "down"}, r"^direction: expected 'minimize' or 'maximize', got 'down'$"),
    ({"seed": -1}, r"^seed: expected an int >= 0"),
    ({"seed": "0"}, r"^seed: "),
    ({"study_name": ""}, r"^study_name: expected a non-empty string"),
    ({"sampler": "bayes"}, r"^sampler: expected 'auto', 'tpe', 'random'"),
    ({"pruner": "median"}, r"^pruner: expected None"),
    ({"catch": "ValueError"}, r"^catch: expected a tuple of Exception classes"),
    ({"stability": {"enabled": False}}, r"^stability: expected an autolr.Stability"),
    ({"storage": "studies/autolr.db"}, r"^storage: expected a URL like"),
    ({"storage": "sqlite://"}, r"^storage: a SQLite URL needs a file path"),
    ({"storage": "ftp://host/x"}, r"^storage: unknown storage scheme 'ftp'"),
    ({"storage": "postgresql://u:hunter2@host:notaport/db"}, r"^storage: malformed database URL"),
    ({"storage": 42}, r"^storage: expected a URL string or an optuna.storages.BaseStorage"),
    ({"show_progress_bar": "yes"}, r"^show_progress_bar: "),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS, ids=[str(o) for o, _ in BAD_OPTIONS])
def test_bad_options_fail_fast_with_one_line(
    options: dict[str, object], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message) as info:
        autolr.tune(**options)(ok)  # type: ignore[arg-type]
    text = str(info.value)
    assert "\n" not in text
    assert "hunter2" not in text  # passwords never printed
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_positional_options_are_refused() -> None:
    with pytest.raises(TypeError):
        autolr.tune(ok, 10)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "fn",
    [lambda: 0.0, lambda learning_rate: 0.0, lambda lr, /: lr],
    ids=["no-args", "wrong-name", "positional-only"],
)
def test_train_function_must_accept_lr(fn: object) -> None:
    with pytest.raises(TypeError, match=r"^tune: the train function .* must accept a keyword argument 'lr'"):
        autolr.tune(fn)  # type: ignore[call-overload]


def test_var_kwargs_function_is_accepted(db: str) -> None:
    @autolr.tune(n_trials=1, storage=db, show_progress_bar=False)
    def train(**kw: float) -> float:
        return kw["lr"]

    assert train.run().best_lr == 1e-3


def test_uncreatable_studies_dir_fails_before_anything(tmp_path: Path) -> None:
    """CI runs as root, which ignores permission bits; a file in the way cannot be ignored."""
    target = tmp_path / "not-a-dir"
    target.write_text("x")
    train = autolr.tune(n_trials=1, storage=f"sqlite:///{target / 'x.db'}")(ok)
    with pytest.raises(autolr.StorageError, match=r"^storage: cannot create the studies directory"):
        train.run()
    assert target.read_text() == "x"


def test_a_file_that_is_not_sqlite_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("my thesis, do not delete\n")
    train = autolr.tune(n_trials=1, storage=f"sqlite:///{path}")(ok)
    with pytest.raises(autolr.StorageError, match=r"is not a SQLite database; autolr will not overwrite it"):
        train.run()
    with pytest.raises(autolr.StorageError, match="not a SQLite database"):
        autolr.load("ok", storage=f"sqlite:///{path}")
    assert path.read_text() == "my thesis, do not delete\n"


def test_storage_object_and_journal_url(tmp_path: Path) -> None:
    mem = optuna.storages.InMemoryStorage()
    assert autolr.tune(n_trials=2, storage=mem, show_progress_bar=False)(ok).run().study.trials
    url = f"journal:///{tmp_path / 'j.log'}"
    result = autolr.tune(n_trials=2, storage=url, show_progress_bar=False)(ok).run()
    assert len(result.study.trials) == 2
    assert len(autolr.load("ok", storage=url).study.trials) == 2


def test_mask_hides_passwords() -> None:
    from autolr._storage import mask

    assert mask("postgresql://me:s3cret@db/x") == "postgresql://me:***@db/x"
    assert mask("redis://:pw@localhost:6379/0") == "redis://:***@localhost:6379/0"
    assert mask("sqlite:///studies/autolr.db") == "sqlite:///studies/autolr.db"


def test_import_autolr_is_light_and_integrations_load_on_use() -> None:
    import subprocess
    import sys

    code = (
        "import sys, autolr\n"
        "heavy = [m for m in ('torch', 'sklearn', 'matplotlib', 'optuna_dashboard') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert autolr.torch.find_lr and autolr.sklearn.LRSearchCV\n"
        "assert 'torch' in sys.modules and 'sklearn' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        autolr.nope  # type: ignore[attr-defined]  # noqa: B018
