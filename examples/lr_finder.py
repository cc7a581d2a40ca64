"""LR range test on scikit-learn's digits: find a learning rate in ~0.1 s and save the plot.

    python examples/lr_finder.py                 # saves into a new temporary directory
    python examples/lr_finder.py lr_find.png     # or where you say

Needs ``pip install autolr[torch,sklearn,plot]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from autolr.torch import find_lr  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    dataset = torch.utils.data.TensorDataset(
        torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters())
    result = find_lr(model, optimizer, torch.nn.functional.cross_entropy, loader, seed=0)

    print(result)
    print(f"suggested lr: {result.suggestion:.2e}")
    low, high = result.search_range()
    print(f"search range for @autolr.tune(lr=result): ({low:.1e}, {high:.1e})")

    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
    else:
        path = Path(tempfile.mkdtemp(prefix="autolr-")) / "lr_find.png"
    ax = result.plot()
    ax.figure.savefig(path, dpi=120, bbox_inches="tight")
    print(f"plot saved to {path}")


if __name__ == "__main__":
    main()
