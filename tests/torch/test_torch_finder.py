"""The LR range test on real (tiny) torch trainings over scikit-learn's digits."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from autolr.torch import LRFinderResult, find_lr, suggest_lrs  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)


def _loader(digits: tuple[Any, Any], *, seed: int = 0, batch_size: int = 64) -> Any:
    ds = torch.utils.data.TensorDataset(*digits)
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, generator=g)


def _mlp(seed: int = 0, *, norm: bool = False) -> Any:
    torch.manual_seed(seed)
    layers: list[Any] = [torch.nn.Linear(64, 32)]
    if norm:
        layers.append(torch.nn.BatchNorm1d(32))
    layers += [torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(32, 10)]
    return torch.nn.Sequential(*layers)


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a nested state dict, keyed by its path."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
        return out
    if isinstance(obj, (list, tuple)):
        out = {}
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}/{i}"))
        return out
    return {prefix: obj.clone() if isinstance(obj, torch.Tensor) else obj}


def _assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before.keys() == after.keys()
    for k, v in before.items():
        w = after[k]
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, w), k
        else:
            assert v == w, k


def test_everything_is_restored_bit_identical_after_a_sweep_that_hit_nan(digits: Any) -> None:
    model = _mlp(norm=True)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=100)
    loader = _loader(digits)
    for i, (x, y) in enumerate(loader):  # real optimizer state, BatchNorm stats, a live grad
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
        if i == 3:
            break
    model.eval()
    model[0].train()  # a mixed train/eval state must come back as it was
    tensors = {f"p/{n}": t.detach().clone() for n, t in model.named_parameters()}
    tensors |= {f"b/{n}": t.detach().clone() for n, t in model.named_buffers()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    flags = [m.training for m in model.modules()]
    opt_before = _flatten(opt.state_dict())
    sched_before = _flatten(sched.state_dict())
    rng = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())

    result = find_lr(
        model, opt, torch.nn.functional.cross_entropy, loader, end_lr=1e12, diverge=1e300
    )

    assert result.stop_reason == "nonfinite"  # it really blew up
    assert not math.isfinite(result.losses[-1])
    for n, t in model.named_parameters():
        assert torch.equal(t, tensors[f"p/{n}"]), n
        assert torch.equal(t.grad, grads[n]), n
    for n, t in model.named_buffers():
        assert torch.equal(t, tensors[f"b/{n}"]), n
    assert [m.training for m in model.modules()] == flags
    _assert_same(opt_before, _flatten(opt.state_dict()))
    _assert_same(sched_before, _flatten(sched.state_dict()))
    assert torch.equal(torch.get_rng_state(), rng[0])
    assert random.getstate() == rng[1]
    assert np.array_equal(np.random.get_state()[1], rng[2])


def test_training_after_the_sweep_matches_training_without_it(digits: Any) -> None:
    def run(with_finder: bool) -> list[float]:
        model = _mlp(seed=3)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
        loader = _loader(digits, seed=3)
        torch.manual_seed(7)
        if with_finder:
            find_lr(model, opt, torch.nn.functional.cross_entropy, loader, num_iter=40)
        losses = []
        for i, (x, y) in enumerate(loader):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            if i == 12:
                break
        return losses

    assert run(True) == run(False)


def test_nan_loss_truncates_the_curve_and_keeps_a_finite_suggestion(digits: Any) -> None:
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = find_lr(
        model, opt, torch.nn.functional.cross_entropy, _loader(digits), end_lr=1e12, diverge=1e300
    )
    assert result.stop_reason == "nonfinite"
    nan_lr = result.lrs[-1]
    for name, lr in result.suggestions.items():
        assert lr is not None and math.isfinite(lr), name
        assert result.lrs[0] / 10 <= lr < nan_lr, name
    low, high = result.search_range()
    assert low < result.suggestion < high
    last_finite = max(x for x, v in zip(result.lrs, result.losses) if math.isfinite(v))
    assert high <= last_finite


def test_suggestion_is_stable_across_seeds_and_sensible_on_digits(digits: Any) -> None:
    suggestions = []
    for seed in range(3):
        model = _mlp(seed=seed)
        opt = torch.optim.Adam(model.parameters())
        result = find_lr(
            model, opt, torch.nn.functional.cross_entropy, _loader(digits, seed=seed), seed=seed
        )
        assert result.stop_reason == "diverged"
        suggestions.append(result.suggestion)
    logs = np.log10(suggestions)
    assert logs.max() - logs.min() <= 0.3, suggestions  # within a factor of 2
    # Adam on standardized digits: the dense grid (docs/torch.md) puts the optimum at 3e-3..1e-2
    assert 1e-3 <= 10 ** logs.mean() <= 1e-2, suggestions


def test_same_seed_gives_the_same_curve(digits: Any) -> None:
    def once() -> LRFinderResult:
        model = _mlp()
        opt = torch.optim.Adam(model.parameters())
        loss = torch.nn.functional.cross_entropy
        return find_lr(model, opt, loss, _loader(digits), num_iter=30, seed=5)

    a, b = once(), once()
    assert a.losses == b.losses and a.suggestions == b.suggestions


def test_a_list_shorter_than_the_sweep_is_cycled_and_a_generator_replayed(digits: Any) -> None:
    x, y = digits
    batches = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 128, 32)]  # 4 batches
    loss = torch.nn.functional.cross_entropy
    for data in (batches, (b for b in batches)):
        model = _mlp()
        opt = torch.optim.Adam(model.parameters())
        result = find_lr(model, opt, loss, data, end_lr=1e-2, num_iter=25)
        assert len(result.lrs) == 25 and result.stop_reason == "completed"
        assert result.lrs[0] == pytest.approx(1e-7) and result.lrs[-1] == pytest.approx(1e-2)


@pytest.mark.parametrize("empty", [[], iter(())], ids=["list", "iterator"])
def test_empty_data_is_a_one_line_value_error_naming_data(empty: Any) -> None:
    model = _mlp()
    opt = torch.optim.Adam(model.parameters())
    with pytest.raises(ValueError, match="data") as info:
        find_lr(model, opt, torch.nn.functional.cross_entropy, empty)
    assert "\n" not in str(info.value)


class _Counting:
    """An iterable of batches that counts the batches it hands out."""

    def __init__(self, digits: Any) -> None:
        self.x, self.y = digits
        self.served = 0

    def __iter__(self) -> Iterator[Any]:
        for i in range(0, 320, 32):
            self.served += 1
            yield self.x[i : i + 32], self.y[i : i + 32]


def test_gradient_accumulation_takes_that_many_batches_per_step(digits: Any) -> None:
    data = _Counting(digits)
    model = _mlp()
    opt = torch.optim.Adam(model.parameters())
    result = find_lr(
        model, opt, torch.nn.functional.cross_entropy, data, num_iter=12, end_lr=1e-3,
        accumulation_steps=3,
    )
    assert len(result.lrs) == 12
    assert data.served == 36


def test_amp_bfloat16_on_cpu_runs_and_suggests(digits: Any) -> None:
    model = _mlp()
    opt = torch.optim.Adam(model.parameters())
    before = [p.detach().clone() for p in model.parameters()]
    result = find_lr(model, opt, torch.nn.functional.cross_entropy, _loader(digits), amp=True)
    assert result.suggestion is not None and 1e-4 < result.suggestion < 1e-1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_float16_amp_uses_the_model_device(digits: Any) -> None:  # pragma: no cover
    model = _mlp().cuda()
    opt = torch.optim.Adam(model.parameters())
    before = [p.detach().clone() for p in model.parameters()]
    result = find_lr(model, opt, torch.nn.functional.cross_entropy, _loader(digits), amp=True)
    assert result.suggestion is not None
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"start_lr": 1.0, "end_lr": 0.1}, "start_lr"),
        ({"num_iter": 1}, "num_iter"),
        ({"smooth": 1.0}, "smooth"),
        ({"diverge": 1.0}, "diverge"),
        ({"accumulation_steps": 0}, "accumulation_steps"),
        ({"method": "fastest"}, "method"),
    ],
)
def test_bad_options_name_the_argument(kwargs: dict[str, Any], match: str, digits: Any) -> None:
    model = _mlp()
    with pytest.raises(ValueError, match=match):
        find_lr(model, torch.optim.Adam(model.parameters()), torch.nn.functional.cross_entropy,
                _loader(digits), **kwargs)


# -- the pure suggestion logic -------------------------------------------------------------------


def _sigmoid_curve(lrs: np.ndarray, centre: float) -> list[float]:
    return [1.0 / (1.0 + math.exp(4.0 * (math.log10(x) - centre))) for x in lrs]


def test_steepest_is_taken_per_decade_not_per_step() -> None:
    # Uneven spacing: 60 points crowded into [1e-6, 1e-4], 20 spread over [1e-4, 1]. The loss
    # drops by 1 per decade at 1e-5 (the sigmoid's centre, crowded part), then keeps falling by
    # 0.4 per decade over the sparse part. Per decade the steepest descent is at 1e-5; per step
    # the sparse ramp looks steeper (0.4 x 0.2 decade > 1 x 0.033 decade).
    lrs = np.concatenate([np.logspace(-6, -4, 60, endpoint=False), np.logspace(-4, 0, 21)[1:]])
    losses = _sigmoid_curve(lrs, centre=-5.0)
    losses = [v - 0.4 * max(0.0, math.log10(x) + 4) for v, x in zip(losses, lrs)]
    s = suggest_lrs(lrs, losses, skip_start=0.0, skip_end=0, sigma=0.1)
    assert s["steepest"] is not None
    assert abs(math.log10(s["steepest"]) + 5.0) <= 0.15
    index_grad = np.gradient(np.asarray(losses))  # what an index-based finder would pick
    assert abs(math.log10(lrs[int(np.argmin(index_grad))]) + 5.0) > 0.5


def test_suggestions_ignore_everything_from_the_first_nan_on() -> None:
    lrs = np.logspace(-6, 0, 61)
    losses = _sigmoid_curve(lrs, centre=-3.0)
    clean = suggest_lrs(lrs[:45], losses[:45])
    poisoned = losses[:45] + [math.nan, -1e9, math.inf] + losses[48:]
    assert suggest_lrs(lrs, poisoned) == clean


def test_too_short_a_curve_gives_no_suggestion_and_search_range_says_why() -> None:
    s = suggest_lrs([1e-7, 1e-6, 1e-5], [1.0, math.nan, 1.0])
    assert s == {"minimum": None, "steepest": None, "valley": None}
    result = LRFinderResult(lrs=(1e-7, 1e-6), losses=(1.0, math.nan), smoothed=(1.0, math.nan),
                            suggestions=s, stop_reason="nonfinite")
    with pytest.raises(ValueError, match="start_lr"):
        result.search_range()


def test_search_range_spans_the_requested_decades_around_the_suggestion() -> None:
    lrs = tuple(float(x) for x in np.logspace(-7, 1, 100))
    losses = tuple(_sigmoid_curve(np.asarray(lrs), centre=-3.0))
    result = LRFinderResult(lrs=lrs, losses=losses, smoothed=losses,
                            suggestions=suggest_lrs(lrs, losses))
    lr = result.suggestion
    assert lr is not None
    low, high = result.search_range()
    assert low == pytest.approx(lr / 10) and high == pytest.approx(lr * 10)
    low, high = result.search_range(below=2, above=0.5)
    assert low == pytest.approx(lr / 100) and high == pytest.approx(lr * 10**0.5)


# -- plotting and imports ------------------------------------------------------------------------


def test_plot_draws_curves_and_suggestions_on_a_log_axis(digits: Any) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    model = _mlp()
    result = find_lr(model, torch.optim.Adam(model.parameters()),
                     torch.nn.functional.cross_entropy, _loader(digits), num_iter=50)
    ax = result.plot()
    assert ax.get_xscale() == "log"
    labels = [line.get_label() for line in ax.get_lines()]
    assert "centred (suggestions)" in labels
    assert any(label.startswith("minimum: ") for label in labels)
    import matplotlib.pyplot as plt

    plt.close(ax.figure)


def _run_without(module: str, code: str) -> subprocess.CompletedProcess[str]:
    prelude = f"import sys; sys.modules[{module!r}] = None\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True)


def test_plot_without_matplotlib_names_the_extra() -> None:
    code = (
        "from autolr.torch import LRFinderResult\n"
        "r = LRFinderResult(lrs=(1e-3, 1e-2, 1e-1), losses=(1.0, 0.5, 2.0), "
        "smoothed=(1.0, 0.7, 1.2))\n"
        "r.plot()\n"
    )
    proc = _run_without("matplotlib", code)
    assert proc.returncode != 0
    assert "pip install autolr[plot]" in proc.stderr


def test_autolr_torch_without_torch_names_the_extra() -> None:
    proc = _run_without("torch", "import autolr.torch\n")
    assert proc.returncode != 0
    assert "pip install autolr[torch]" in proc.stderr


def test_import_autolr_does_not_import_torch() -> None:
    code = "import sys, autolr, autolr._grid\nprint('torch' in sys.modules)\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
