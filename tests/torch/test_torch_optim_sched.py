"""Optimizer and schedule search: real optimizers, real Optuna trials, the lr shapes checked."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
import pytest

torch = pytest.importorskip("torch")

from autolr.torch import LR_SCALE, SCHEDULES, Schedule, lr_factor, optimizer, scheduler  # noqa: E402

torch.set_num_threads(1)


def _params() -> list[Any]:
    torch.manual_seed(0)
    return list(torch.nn.Linear(4, 2).parameters())


# -- optimizer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixed", "cls", "settings"),
    [
        ({"optimizer": "adam"}, torch.optim.Adam, {}),
        ({"optimizer": "adamw", "adamw_weight_decay": 3e-3}, torch.optim.AdamW,
         {"weight_decay": 3e-3}),
        ({"optimizer": "rmsprop", "rmsprop_momentum": 0.9}, torch.optim.RMSprop,
         {"momentum": 0.9}),
        ({"optimizer": "sgd", "sgd_momentum": 0.95, "sgd_nesterov": True}, torch.optim.SGD,
         {"momentum": 0.95, "nesterov": True}),
    ],
)
def test_each_optimizer_runs_at_its_scaled_lr_with_its_settings(
    fixed: dict[str, Any], cls: type, settings: dict[str, Any]
) -> None:
    trial = optuna.trial.FixedTrial(fixed)
    opt = optimizer(trial, _params(), lr=1e-3)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == pytest.approx(1e-3 * LR_SCALE[fixed["optimizer"]])
    assert trial.user_attrs["autolr.effective_lr"] == pytest.approx(group["lr"])
    for k, v in settings.items():
        assert group[k] == v


def test_scaled_ranges_centre_adam_on_1e_3_and_sgd_higher() -> None:
    centre = math.sqrt(1e-5 * 1e-1)  # the default study range (1e-5, 1e-1)
    assert centre * LR_SCALE["adam"] == pytest.approx(1e-3)
    assert 1e-3 <= centre * LR_SCALE["rmsprop"] <= 1e-2
    assert 1e-2 <= centre * LR_SCALE["sgd"] <= 1e-1


def test_without_lr_it_suggests_lr_itself() -> None:
    trial = optuna.trial.FixedTrial({"optimizer": "sgd", "lr": 2e-3, "sgd_momentum": 0.9,
                                     "sgd_nesterov": False})
    opt = optimizer(trial, _params())
    assert opt.param_groups[0]["lr"] == pytest.approx(2e-3 * LR_SCALE["sgd"])


def test_bad_choices_and_lr_are_value_errors() -> None:
    trial = optuna.trial.FixedTrial({"optimizer": "adam"})
    with pytest.raises(ValueError, match="choices"):
        optimizer(trial, _params(), choices=("adam", "lion"), lr=1e-3)
    with pytest.raises(ValueError, match="lr"):
        optimizer(trial, _params(), lr=-1.0)


def test_a_study_over_optimizers_and_schedules_trains_digits() -> None:
    """30 real trials: every optimizer and schedule gets built, stepped and trains."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = torch.as_tensor((x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1), dtype=torch.float32)
    y = torch.as_tensor(y)
    seen: set[tuple[str, str]] = set()

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)  # what @autolr.tune does
        torch.manual_seed(0)
        model = torch.nn.Linear(64, 10)
        opt = optimizer(trial, model.parameters(), lr=lr)
        sched = scheduler(trial, opt, steps_per_epoch=10, epochs=2)
        seen.add((type(opt).__name__, sched.name))
        for _ in range(2):
            for i in range(10):
                xb, yb = x[i * 100 : (i + 1) * 100], y[i * 100 : (i + 1) * 100]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(xb), yb).backward()
                opt.step()
                sched.step()
            with torch.no_grad():
                val = torch.nn.functional.cross_entropy(model(x[1000:]), y[1000:]).item()
            sched.epoch_end(val)
        return val

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=10))
    study.optimize(objective, n_trials=30)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert {o for o, _ in seen} == {"Adam", "AdamW", "RMSprop", "SGD"}
    assert {s for _, s in seen} == set(SCHEDULES)
    assert study.best_value < math.log(10) / 2  # it learned something


# -- schedules ----------------------------------------------------------------------------------

FIXED = {
    "constant": {},
    "step": {"step_gamma": 0.1, "step_every": 0.34},
    "exponential": {"exponential_final": 0.01},
    "cosine": {"cosine_final": 0.001},
    "cyclic": {"cyclic_cycles": 2, "cyclic_ratio": 4.0},
    "onecycle": {"onecycle_pct_start": 0.3},
    "plateau": {"plateau_patience": 1},
}


def _lrs(name: str, *, epochs: int = 6, spe: int = 10, warmup: bool | float = False,
         metrics: list[float] | None = None) -> tuple[list[float], Schedule]:
    opt = torch.optim.SGD(_params(), lr=0.1)
    trial = optuna.trial.FixedTrial({"scheduler": name, **FIXED[name], "warmup_frac": 0.1})
    sched = scheduler(trial, opt, steps_per_epoch=spe, epochs=epochs, warmup=warmup)
    out = []
    for epoch in range(epochs):
        for _ in range(spe):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        sched.epoch_end(None if metrics is None else metrics[epoch])
    return out, sched


def test_constant_stays_put() -> None:
    lrs, _ = _lrs("constant")
    assert lrs == [0.1] * 60


def test_step_cuts_by_gamma_every_few_epochs() -> None:
    lrs, _ = _lrs("step")  # every round(0.34 * 6) = 2 epochs
    per_epoch = lrs[::10]
    assert per_epoch == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    assert lrs[:10] == [0.1] * 10


def test_exponential_decays_geometrically_to_its_final_fraction() -> None:
    lrs, _ = _lrs("exponential")
    ratios = np.array(lrs[1:]) / np.array(lrs[:-1])
    assert np.allclose(ratios, ratios[0]) and ratios[0] < 1
    assert lrs[-1] == pytest.approx(0.1 * 0.01)


def test_cosine_matches_torchs_cosine_annealing() -> None:
    lrs, _ = _lrs("cosine")
    opt = torch.optim.SGD(_params(), lr=0.1)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=59, eta_min=0.1 * 0.001)
    expected = []
    for _ in range(60):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert lrs == pytest.approx(expected, rel=1e-6)


def test_cyclic_is_triangles_between_base_and_peak() -> None:
    lrs, _ = _lrs("cyclic")
    a = np.array(lrs)
    assert a.min() == pytest.approx(0.1 / 4) and a.max() == pytest.approx(0.1, rel=0.02)
    peaks = [i for i in range(1, 59) if a[i] >= a[i - 1] and a[i] > a[i + 1]]
    assert len(peaks) == 2  # two cycles


def test_onecycle_follows_torchs_shape() -> None:
    lrs, _ = _lrs("onecycle")
    opt = torch.optim.SGD(_params(), lr=0.1)
    ref = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.1, total_steps=60, pct_start=0.3, cycle_momentum=False
    )
    expected = []
    for _ in range(60):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert lrs[0] == pytest.approx(expected[0]) and lrs[-1] == pytest.approx(expected[-1], rel=0.05)
    assert int(np.argmax(lrs)) == pytest.approx(int(np.argmax(expected)), abs=1)
    assert np.max(np.abs(np.array(lrs) - np.array(expected))) < 0.01  # 10% of the peak


def test_plateau_cuts_by_ten_after_patience_at_most_twice() -> None:
    metrics = [1.0, 0.5, 0.5, 0.5, 0.5, 0.5]  # stalls from epoch 2; patience 1: cut on the 2nd
    lrs, _ = _lrs("plateau", metrics=metrics)
    assert lrs[::10] == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.01, 0.01])
    lrs, _ = _lrs("plateau", epochs=10, metrics=[1.0] + [0.9] * 9)
    assert min(lrs) == pytest.approx(0.001)  # two cuts, then it stays


def test_plateau_needs_the_metric() -> None:
    with pytest.raises(ValueError, match="metric"):
        _lrs("plateau")


def test_warmup_ramps_linearly_then_hands_over() -> None:
    lrs, _ = _lrs("cosine", warmup=True)  # warmup_frac 0.1 of 60 steps = 6 steps
    assert lrs[:6] == pytest.approx([0.1 * (i + 1) / 6 * lr_factor(
        "cosine", i, total_steps=60, steps_per_epoch=10, params=FIXED["cosine"]) for i in range(6)])
    assert lrs[6] == pytest.approx(0.1 * lr_factor("cosine", 6, total_steps=60,
                                                   steps_per_epoch=10, params=FIXED["cosine"]))
    onecycle, _ = _lrs("onecycle", warmup=True)
    assert onecycle == _lrs("onecycle", warmup=False)[0]  # has its own warm-up


def test_state_dict_round_trip_resumes_the_same_lrs() -> None:
    full, _ = _lrs("cyclic")
    opt = torch.optim.SGD(_params(), lr=0.1)
    trial = optuna.trial.FixedTrial({"scheduler": "cyclic", **FIXED["cyclic"]})
    first = scheduler(trial, opt, steps_per_epoch=10, epochs=6)
    for _ in range(25):
        first.step()
    state = first.state_dict()
    opt2 = torch.optim.SGD(_params(), lr=0.1)
    second = scheduler(trial, opt2, steps_per_epoch=10, epochs=6)
    second.load_state_dict(state)
    assert second.get_last_lr() == pytest.approx([full[25]])


def test_bad_scheduler_options_are_value_errors() -> None:
    opt = torch.optim.SGD(_params(), lr=0.1)
    trial = optuna.trial.FixedTrial({"scheduler": "constant"})
    with pytest.raises(ValueError, match="choices"):
        scheduler(trial, opt, steps_per_epoch=10, epochs=2, choices=("warm_restarts",))
    with pytest.raises(ValueError, match="steps_per_epoch"):
        scheduler(trial, opt, steps_per_epoch=0, epochs=2)
    with pytest.raises(ValueError, match="warmup"):
        scheduler(trial, opt, steps_per_epoch=10, epochs=2, warmup=1.5)
