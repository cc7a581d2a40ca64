"""The range test on loops people write: a step function, a closure, updates by hand,
validation batches, param groups with different lrs, AMP with the user's own GradScaler."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _examples import load_example  # noqa: E402

from autolr.torch import find_lr  # noqa: E402

torch.set_num_threads(1)
F = torch.nn.functional


@pytest.fixture(scope="module")
def digits() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)


def _loader(digits: tuple[Any, Any], *, seed: int = 0) -> Any:
    ds = torch.utils.data.TensorDataset(*digits)
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, generator=g)


def _mlp(seed: int = 0, *, dropout: float = 0.1) -> Any:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                               torch.nn.Dropout(dropout), torch.nn.Linear(32, 10))


def _state(model: Any) -> list[Any]:
    return [t.detach().clone() for t in (*model.parameters(), *model.buffers())]


def _same(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def test_a_step_function_gives_exactly_the_classic_curve(digits: Any) -> None:
    classic_model = _mlp()
    classic_opt = torch.optim.Adam(classic_model.parameters())
    classic = find_lr(classic_model, classic_opt, F.cross_entropy, _loader(digits), seed=1)

    model = _mlp()
    opt = torch.optim.Adam(model.parameters())
    before = _state(model)

    def step(batch: Any) -> Any:
        x, y = batch
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    result = find_lr(model, opt, data=_loader(digits), step=step, seed=1)
    assert result.losses == classic.losses and result.suggestions == classic.suggestions
    assert _same(before, _state(model))
    assert opt.param_groups[0]["lr"] == 1e-3 and not opt.state


def test_a_closure_fetches_its_own_batches(digits: Any) -> None:
    x, y = digits
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    calls = []

    def closure() -> float:
        i = 64 * (len(calls) % 20)
        calls.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        loss = F.cross_entropy(model(x[i : i + 64]), y[i : i + 64])
        loss.backward()
        opt.step()
        return loss.item()

    result = find_lr(model, opt, step=closure, num_iter=30, end_lr=1e-2)
    assert len(calls) == 30 and calls == pytest.approx(list(result.lrs))
    assert result.stop_reason == "completed"


def test_step_is_called_accumulation_steps_times_per_point(digits: Any) -> None:
    model = _mlp()
    opt = torch.optim.Adam(model.parameters())
    seen: list[float] = []

    def step(batch: Any) -> Any:
        seen.append(opt.param_groups[0]["lr"])
        loss = F.cross_entropy(model(batch[0]), batch[1]) / 3
        loss.backward()
        if len(seen) % 3 == 0:  # the user's own accumulation
            opt.step()
            opt.zero_grad()
        return loss * 3

    result = find_lr(model, opt, data=_loader(digits), step=step, num_iter=10, end_lr=1e-2,
                     accumulation_steps=3)
    assert len(seen) == 30
    assert seen == pytest.approx([lr for lr in result.lrs for _ in range(3)])


def test_word_language_model_hand_written_updates_find_a_useful_lr() -> None:
    """pytorch/examples' loop: ``model(data, hidden)`` and ``p.data.add_(p.grad, alpha=-lr)``."""
    wlm = load_example("lr_finder_word_language_model")
    train = wlm.batchify(wlm.corpus(6_000, seed=1), wlm.BATCH)
    val = wlm.batchify(wlm.corpus(2_000, seed=2), wlm.BATCH)
    batches = [wlm.get_batch(train, i) for i in range(0, train.size(0) - 1, wlm.BPTT)]
    torch.manual_seed(0)
    model = wlm.RNNModel()
    model.eval()
    before = _state(model)
    step = wlm.make_step(model)
    lrs_seen: list[float] = []

    def spy(batch: Any, lr: float) -> Any:
        lrs_seen.append(lr)
        return step(batch, lr)

    result = find_lr(model, data=batches, step=spy, start_lr=1e-2, end_lr=1e3, num_iter=60,
                     seed=0)
    assert lrs_seen == list(result.lrs)
    assert _same(before, _state(model)) and not model.training  # restored, eval flag too
    lr = result.suggestion
    assert lr is not None and 0.1 <= lr <= 30, result
    # The suggestion trains, far better than 100x lower (the curve's flat start).
    at = wlm.train_epochs(lr, train, val, epochs=1)
    assert math.isfinite(at) and at < wlm.train_epochs(lr / 100, train, val, epochs=1) - 0.5


def test_val_data_judges_each_lr_on_the_validation_batches_in_eval_mode(digits: Any) -> None:
    x, y = digits
    xv, yv = x[1500:], y[1500:]
    val = [(xv[i : i + 100], yv[i : i + 100]) for i in range(0, len(xv), 100)]
    model = _mlp(dropout=0.5)
    opt = torch.optim.Adam(model.parameters())
    result = find_lr(model, opt, F.cross_entropy, _loader(digits),
                     val_data=(b for b in val), num_iter=40, seed=0)  # a one-shot iterator
    assert len(result.losses) >= 30 and model.training
    model.eval()
    with torch.no_grad():  # the first point: one Adam step at 1e-7 barely moves the model
        untrained = F.cross_entropy(model(xv), yv).item()
    assert result.losses[0] == pytest.approx(untrained, rel=1e-4)
    train_curve = find_lr(model, opt, F.cross_entropy, _loader(digits), num_iter=40, seed=0)
    rough = lambda v: float(np.abs(np.diff(v, 2)).mean())  # noqa: E731
    assert rough(result.losses[:30]) < rough(train_curve.losses[:30]) / 3


def test_param_groups_keep_their_lr_ratios_during_the_sweep(digits: Any) -> None:
    model = _mlp()
    opt = torch.optim.SGD([
        {"params": model[0].parameters(), "lr": 1e-3},
        {"params": model[3].parameters(), "lr": 1e-2, "momentum": 0.9},
    ])
    seen: list[tuple[float, float]] = []

    def step(batch: Any) -> Any:
        seen.append((opt.param_groups[0]["lr"], opt.param_groups[1]["lr"]))
        opt.zero_grad()
        loss = F.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        opt.step()
        return loss

    result = find_lr(model, opt, data=_loader(digits), step=step, num_iter=20, end_lr=1e-1)
    assert [a for a, _ in seen] == pytest.approx(list(result.lrs))
    assert all(b == pytest.approx(10 * a) for a, b in seen)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-2]
    frozen_first = torch.optim.SGD([
        {"params": model[0].parameters(), "lr": 0.0},
        {"params": model[3].parameters(), "lr": 1e-2},
    ])
    with pytest.raises(ValueError, match="optimizer: the first param group's lr is 0"):
        find_lr(model, frozen_first, F.cross_entropy, _loader(digits))


def test_amp_with_the_users_own_grad_scaler_is_put_back(digits: Any) -> None:
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    before = scaler.state_dict()
    scales: list[float] = []

    def step(batch: Any) -> Any:
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(batch[0]), batch[1])
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
        return loss

    result = find_lr(model, opt, data=_loader(digits), step=step, restore=[scaler],
                     end_lr=1e12, diverge=1e300)
    assert result.stop_reason == "nonfinite"
    assert min(scales) < before["scale"]  # the sweep's inf gradients made it back off
    assert scaler.state_dict() == before


class _Batches:
    def __init__(self, digits: Any) -> None:
        self.x, self.y = digits

    def __iter__(self) -> Iterator[Any]:
        for i in range(0, 256, 64):
            yield self.x[i : i + 64], self.y[i : i + 64]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"criterion": None}, "^criterion: find_lr needs"),
        ({"step": lambda b: 1.0, "criterion": F.cross_entropy}, "^criterion: with step"),
        ({"step": lambda b: 1.0, "criterion": None, "amp": True}, "^amp: "),
        ({"step": lambda b: 1.0, "criterion": None, "optimizer": None}, "^step: with no optimizer"),
        ({"step": 3, "criterion": None}, "^step: expected a callable"),
        ({"step": lambda b: None, "criterion": None}, "^step: must return the loss"),
        ({"restore": [object()]}, "^restore: "),
        ({"val_data": [], "criterion": None, "step": lambda b: 1.0}, "^val_data: "),
    ],
)
def test_bad_forms_are_one_line_errors_naming_the_argument(
    kwargs: dict[str, Any], match: str, digits: Any
) -> None:
    model = _mlp()
    args: dict[str, Any] = {"optimizer": torch.optim.Adam(model.parameters()),
                            "criterion": F.cross_entropy, "data": _Batches(digits)}
    args.update(kwargs)
    before = _state(model)
    with pytest.raises(ValueError, match=match) as info:
        find_lr(model, **args)
    assert "\n" not in str(info.value)
    assert _same(before, _state(model))


def test_hand_written_updates_run_without_an_optimizer_and_see_lr(digits: Any) -> None:
    model = _mlp()

    def step(batch: Any, *, lr: float) -> Any:
        model.zero_grad()
        loss = F.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
        return loss

    result = find_lr(model, data=_loader(digits), step=step, start_lr=1e-4, end_lr=1e3)
    assert result.stop_reason in ("diverged", "nonfinite")
    assert result.suggestion is not None and 1e-2 <= result.suggestion <= 10
    assert all(math.isfinite(v) for v in result.losses[:-1])
