"""Every bad input autolr was tried with, and what it answers.

``python tests/bad_inputs.py`` prints the table in docs/errors.md (run from the repository root);
tests/test_bad_inputs.py checks each answer is one line naming the parameter, raised before
anything is written, and that docs/errors.md shows exactly what autolr says today.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    what: str  # the bad input, as a person would describe it
    names: str  # the parameter the answer must name
    run: Callable[[Path], object]  # does the bad thing inside a scratch directory


def _tune(**options: object) -> Callable[[Path], object]:
    def go(tmp: Path) -> object:
        import autolr

        return autolr.tune(**options)(lambda lr: lr)  # type: ignore[call-overload]

    return go


def _returns(value: object) -> Callable[[Path], object]:
    def go(tmp: Path) -> object:
        import autolr

        def train(lr: float) -> object:
            return value

        train.__qualname__ = "train"

        return autolr.tune(n_trials=2, storage=f"sqlite:///{tmp / 's.db'}", show_progress_bar=False)(
            train
        ).run()

    return go


def _reports(value: object, step: object) -> Callable[[Path], object]:
    def go(tmp: Path) -> object:
        import autolr

        @autolr.tune(n_trials=1, storage=f"sqlite:///{tmp / 's.db'}", show_progress_bar=False,
                     catch=())
        def train(lr: float) -> float:
            autolr.report(1.0, step=0)
            autolr.report(value, step=step)  # type: ignore[arg-type]
            return 1.0

        return train.run()

    return go


def _signature(fn: Callable[..., float]) -> Callable[[Path], object]:
    def go(tmp: Path) -> object:
        import autolr

        return autolr.tune(fn)  # type: ignore[call-overload]

    return go


def _stored(tmp: Path) -> str:
    import autolr

    url = f"sqlite:///{tmp / 's.db'}"
    autolr.tune(n_trials=1, storage=url, study_name="s", show_progress_bar=False)(lambda lr: lr).run()
    return url


def _resume(**options: object) -> Callable[[Path], object]:
    def go(tmp: Path) -> object:
        import autolr

        url = _stored(tmp)
        return autolr.tune(storage=url, study_name="s", **options)(lambda lr: lr).run()  # type: ignore[call-overload]

    return go


def _changed(what: str) -> Callable[[Path], object]:
    """A study made by ``train``; resumed with other code (``"code"``) or kwargs."""

    def go(tmp: Path) -> object:
        import autolr

        def train(lr: float, epochs: int = 1) -> float:
            return lr * epochs

        def train2(lr: float, epochs: int = 1) -> float:
            return lr * epochs + 1

        train.__qualname__ = train2.__qualname__ = "train"  # as module-level functions read
        url = f"sqlite:///{tmp / 's.db'}"
        options = {"storage": url, "study_name": "s", "n_trials": 1, "show_progress_bar": False}
        autolr.tune(**options)(train).run(epochs=1)  # type: ignore[call-overload]
        if what == "code":
            return autolr.tune(**options)(train2).run(epochs=1)  # type: ignore[call-overload]
        return autolr.tune(**options)(train).run(epochs=2)  # type: ignore[call-overload]

    return go


def _load_unknown(tmp: Path) -> object:
    import autolr

    return autolr.load("nope", storage=_stored(tmp))


def _load_missing_file(tmp: Path) -> object:
    import autolr

    return autolr.load("train", storage=f"sqlite:///{tmp / 'missing.db'}")


def _not_sqlite(tmp: Path) -> object:
    import autolr

    (tmp / "notes.db").write_text("my notes\n")
    return autolr.tune(storage=f"sqlite:///{tmp / 'notes.db'}")(lambda lr: lr).run()


def _run_kw(**kwargs: object) -> Callable[[Path], object]:
    def go(tmp: Path) -> object:
        import autolr

        def train(lr: float, epochs: int = 1) -> float:
            return lr

        train.__qualname__ = "train"  # as a module-level function reads

        return autolr.tune(storage=f"sqlite:///{tmp / 's.db'}")(train).run(**kwargs)

    return go


def _finder(data: list[object]) -> Callable[[Path], object]:
    def go(tmp: Path) -> object:
        import torch

        from autolr.torch import find_lr

        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        batches = [(torch.full((4, 2), float("nan")), torch.zeros(4, 1))] if data else []
        return find_lr(model, opt, torch.nn.MSELoss(), batches).search_range()

    return go


def _stability(tmp: Path) -> object:
    import autolr

    return autolr.Stability(smoothing=2)


def _pruning(tmp: Path) -> object:
    import autolr

    return autolr.Pruning(policy="hyperbandish")


def _sklearn(tmp: Path) -> object:
    from sklearn.datasets import load_iris
    from sklearn.neighbors import KNeighborsClassifier

    from autolr.sklearn import LRSearchCV

    X, y = load_iris(return_X_y=True)
    return LRSearchCV(KNeighborsClassifier(), storage=f"sqlite:///{tmp / 's.db'}").fit(X, y)


def _cli(*argv: str) -> Callable[[Path], object]:
    def go(tmp: Path) -> object:
        url = _stored(tmp)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.run(
            [sys.executable, "-m", "autolr", *argv, "--storage", url],
            capture_output=True, text=True, env=env, cwd=tmp, timeout=120,
        )
        raise SystemExit(f"exit {proc.returncode}: {proc.stderr.strip()}")

    return go


CASES: list[Case] = [
    Case("`n_trials=0`", "n_trials", _tune(n_trials=0)),
    Case("`n_trials=2.5`", "n_trials", _tune(n_trials=2.5)),
    Case("`timeout=-1`", "timeout", _tune(timeout=-1)),
    Case("`lr=(0, 0.1)`", "lr", _tune(lr=(0, 0.1))),
    Case("`lr=(0.1, 0.001)` (low >= high)", "lr", _tune(lr=(0.1, 0.001))),
    Case("`lr=0.001` (one number)", "lr", _tune(lr=0.001)),
    Case("`lr=(1e-5, inf)`", "lr", _tune(lr=(1e-5, math.inf))),
    Case('`lr="finder"`', "lr", _tune(lr="finder")),
    Case('`direction="down"`', "direction", _tune(direction="down")),
    Case("`seed=-1`", "seed", _tune(seed=-1)),
    Case('`study_name=""`', "study_name", _tune(study_name="")),
    Case('`sampler="bayes"` (unknown sampler)', "sampler", _tune(sampler="bayes")),
    Case('`pruner="median"` (unknown pruner)', "pruner", _tune(pruner="median")),
    Case("`points_per_decade=2` without grid mode", "points_per_decade", _tune(points_per_decade=2)),
    Case('`catch="ValueError"`', "catch", _tune(catch="ValueError")),
    Case("`stability={...}` (a dict)", "stability", _tune(stability={"enabled": False})),
    Case("`recheck=-1`", "recheck", _tune(recheck=-1)),
    Case('`show_progress_bar="yes"`', "show_progress_bar", _tune(show_progress_bar="yes")),
    Case('`storage="studies/autolr.db"` (a path, not a URL)', "storage", _tune(storage="studies/autolr.db")),
    Case('`storage="sqlite://"` (no file)', "storage", _tune(storage="sqlite://")),
    Case('`storage="ftp://host/x"`', "storage", _tune(storage="ftp://host/x")),
    Case('`storage="postgresql://u:hunter2@host:notaport/db"`', "storage",
         _tune(storage="postgresql://u:hunter2@host:notaport/db")),
    Case("`storage=42`", "storage", _tune(storage=42)),
    Case("storage file that is not SQLite", "storage", _not_sqlite),
    Case("train function without `lr`", "tune", _signature(lambda: 0.0)),
    Case("train function with `learning_rate` instead of `lr`", "tune", _signature(lambda learning_rate: 0.0)),
    Case("train function taking `lr` positional-only", "tune", _signature(lambda lr, /: lr)),
    Case("train function returns `None`", "return value", _returns(None)),
    Case('train function returns `"0.5"`', "return value", _returns("0.5")),
    Case("train function returns a list", "return value", _returns([0.1])),
    Case("train function returns a 3-element tensor", "return value",
         lambda tmp: _returns(__import__("torch").ones(3))(tmp)),
    Case('`autolr.report("x")`', "autolr.report(value)", _reports("x", 1)),
    Case("`autolr.report(None)`", "autolr.report(value)", _reports(None, 1)),
    Case("`autolr.report(0.5, step=-1)`", "autolr.report(step)", _reports(0.5, -1)),
    Case("`autolr.report(0.5, step=1.5)`", "autolr.report(step)", _reports(0.5, 1.5)),
    Case("`autolr.report(0.5, step=0)` twice (repeated step)", "autolr.report(step)", _reports(0.5, 0)),
    Case("`train.run(epoch=3)` (no such parameter)", "run", _run_kw(epoch=3)),
    Case("`train.run(lr=0.1)`", "run", _run_kw(lr=0.1)),
    Case("resume with another `direction`", "direction", _resume(direction="maximize")),
    Case("resume with another `lr` range", "lr", _resume(lr=(1e-4, 1.0))),
    Case("resume after the train function's code changed", "allow_changed", _changed("code")),
    Case("resume with other `run()` keywords (`epochs=2`)", "allow_changed", _changed("kwargs")),
    Case('`train.run(fresh="yes")`', "fresh", _run_kw(fresh="yes")),
    Case('`autolr.load("nope")` (unknown study)', "study_name", _load_unknown),
    Case("`autolr.load` from a file that does not exist", "storage", _load_missing_file),
    Case("`autolr.Stability(smoothing=2)`", "smoothing", _stability),
    Case('`autolr.Pruning(policy="hyperbandish")`', "policy", _pruning),
    Case("`find_lr` on an empty data loader", "data", _finder([])),
    Case("`find_lr` whose every loss is NaN, then `.search_range()`", "start_lr", _finder([1])),
    Case("`LRSearchCV` on an estimator with no learning rate", "lr_param", _sklearn),
    Case("`autolr best nope` (command line, unknown study)", "no study", _cli("best", "nope")),
    Case("`autolr delete nope --yes` (unknown study)", "no study", _cli("delete", "nope", "--yes")),
    Case("`autolr rename s s` (the new name exists)", "exists already", _cli("rename", "s", "s")),
]


def answer(case: Case) -> tuple[str, str, list[str]]:
    """(exception type, message, files left in the scratch dir besides the setup's)."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        before_cwd = os.getcwd()
        os.chdir(tmp)
        try:
            case.run(tmp)
        except SystemExit as exc:
            return "exit", str(exc).replace(str(tmp), "<tmp>"), []
        except Exception as exc:  # noqa: BLE001 - what it raises is the point
            msg = str(exc).replace(str(tmp), "<tmp>")
            return type(exc).__name__, msg, sorted(p.name for p in tmp.rglob("*"))
        finally:
            os.chdir(before_cwd)
        return "nothing", "", []


def markdown() -> str:
    rows = ["| bad input | autolr answers |", "| --- | --- |"]
    for case in CASES:
        kind, msg, _ = answer(case)
        msg = re.sub(r"\s+", " ", msg).replace("|", "\\|")
        rows.append(f"| {case.what} | `{kind}`: {msg} |")
    return "\n".join(rows)


if __name__ == "__main__":
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print(markdown())
