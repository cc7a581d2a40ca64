"""A study remembers what made it: other code, kwargs or range are refused in one line on resume;
fresh=True starts over keeping the old trials; allow_changed=True continues knowingly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest

import autolr
from autolr._fingerprint import Fingerprint, changes
from autolr._schema import STUDY_FINGERPRINT, STUDY_FINGERPRINT_CHANGES


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 's.db'}"


def _train_a(url: str, **options: object) -> autolr.Tuned[..., float]:
    @autolr.tune(n_trials=2, sampler="random", seed=0, storage=url, study_name="s",
                 show_progress_bar=False, **options)  # type: ignore[call-overload]
    def train(lr: float, epochs: int = 1) -> float:
        return lr * epochs

    return train  # type: ignore[no-any-return]


def _train_b(url: str) -> autolr.Tuned[..., float]:
    @autolr.tune(n_trials=2, sampler="random", seed=0, storage=url, study_name="s",
                 show_progress_bar=False)
    def train(lr: float, epochs: int = 1) -> float:
        return lr * epochs + 1.0  # another body

    return train


def test_changes_in_words() -> None:
    def f(lr: float, x: int = 1) -> float:
        return lr

    def g(lr: float, x: int = 1) -> float:
        # a comment and a docstring do not count
        """doc"""
        return lr

    def h(lr: float, y: int = 1) -> float:
        return lr

    assert changes(Fingerprint.of(f, {}), Fingerprint.of(g, {})) == []
    diff = changes(Fingerprint.of(f, {"x": 1}), Fingerprint.of(h, {"x": [1, 2]}))
    assert any("parameters (lr, x -> lr, y)" in d for d in diff)
    assert "run() keyword x (1 -> [1, 2])" in diff
    # objects whose repr changes every run are compared by type and shape only
    assert Fingerprint.of(f, {"x": object()}) == Fingerprint.of(f, {"x": object()})


def test_changed_source_is_refused_in_one_line(tmp_path: Path) -> None:
    url = _url(tmp_path)
    _train_a(url).run()
    with pytest.raises(ValueError) as err:
        _train_b(url).run(n_trials=3)
    msg = str(err.value)
    assert "\n" not in msg
    assert "train function's code" in msg
    assert "fresh=True" in msg and "allow_changed=True" in msg and "study_name" in msg
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2  # nothing run


def test_changed_kwargs_are_refused(tmp_path: Path) -> None:
    url = _url(tmp_path)
    train = _train_a(url)
    train.run(epochs=2)
    with pytest.raises(ValueError, match=r"run\(\) keyword epochs \(2 -> 1\)"):
        train.run(n_trials=3, epochs=1)
    with pytest.raises(ValueError, match=r"keyword epochs \(2 -> unset\)"):
        train.run(n_trials=3)
    train.run(n_trials=3, epochs=2)  # the same inputs resume


def test_changed_range_is_refused(tmp_path: Path) -> None:
    url = _url(tmp_path)
    _train_a(url, lr=(1e-4, 1e-1)).run()
    with pytest.raises(ValueError, match=r"^lr: .*fresh=True") as err:
        _train_a(url, lr=(1e-5, 1e-1)).run(n_trials=3)
    assert "\n" not in str(err.value)


def test_fresh_keeps_the_old_trials_under_another_name(tmp_path: Path) -> None:
    url = _url(tmp_path)
    _train_a(url).run(epochs=2)
    old = {t.params["lr"] for t in optuna.load_study(study_name="s", storage=url).trials}
    result = _train_b(url).run(fresh=True)
    names = [s.study_name for s in optuna.get_all_study_summaries(url)]
    archived = [n for n in names if n.startswith("s.old-")]
    assert len(archived) == 1 and "s" in names
    kept = optuna.load_study(study_name=archived[0], storage=url)
    assert {t.params["lr"] for t in kept.trials} == old
    assert len(result.study.trials) == 2
    stored = Fingerprint.from_json(result.study.user_attrs[STUDY_FINGERPRINT])
    assert stored is not None and stored.kwargs == {}


def test_allow_changed_continues_and_records_the_change(tmp_path: Path) -> None:
    url = _url(tmp_path)
    train = _train_a(url)
    train.run(epochs=2)
    result = train.run(n_trials=3, epochs=1, allow_changed=True)
    assert len(result.study.trials) == 3
    history = result.study.user_attrs[STUDY_FINGERPRINT_CHANGES]
    assert "run() keyword epochs (2 -> 1)" in history[0]["changes"]
    train.run(n_trials=4, epochs=1)  # the new inputs are the study's now


def test_a_study_from_before_fingerprints_is_accepted_and_given_one(tmp_path: Path) -> None:
    url = _url(tmp_path)
    _train_a(url).run()
    con = sqlite3.connect(tmp_path / "s.db")
    with con:
        con.execute("DELETE FROM study_user_attributes WHERE key = ?", (STUDY_FINGERPRINT,))
    con.close()
    result = _train_b(url).run(n_trials=3)  # accepted: nothing to compare with
    assert STUDY_FINGERPRINT in result.study.user_attrs


def test_a_finished_study_says_nothing_was_trained(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    url = _url(tmp_path)
    train = _train_a(url)
    train.run()
    capfd.readouterr()
    calls: list[float] = []
    result = train.run()
    err = capfd.readouterr().err
    assert not calls and len(result.study.trials) == 2
    assert "already complete (2 trials): nothing was trained" in err
    assert "Using an existing study" not in err



@pytest.mark.services
def test_refuse_fresh_and_allow_changed_on_postgres(pg_url: str) -> None:
    train = _train_a(pg_url)
    train.run(epochs=2)
    with pytest.raises(ValueError, match=r"keyword epochs \(2 -> 3\)"):
        train.run(n_trials=3, epochs=3)
    assert len(train.run(n_trials=3, epochs=3, allow_changed=True).study.trials) == 3
    result = _train_b(pg_url).run(fresh=True)
    names = optuna.get_all_study_names(pg_url)
    archived = [n for n in names if n.startswith("s.old-")]
    assert len(archived) == 1 and len(result.study.trials) == 2
    assert len(optuna.load_study(study_name=archived[0], storage=pg_url).trials) == 3
