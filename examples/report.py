"""Reports: tune a toy training, then print the lr comparison and write an HTML report and plots.

Run: python examples/report.py [OUT_DIR]   (default: a new temporary directory; nothing is
written into the repository). Then try: autolr report toy --storage sqlite:///OUT_DIR/studies.db
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import autolr


def toy(lr: float) -> float:
    """A loss that converges faster with a larger lr, and blows up above about 0.3."""
    loss = 2.0
    for epoch in range(15):
        if lr > 0.3:
            loss *= 1.8
        else:
            floor = 0.2 + 0.05 * (math.log10(lr) + 2) ** 2
            loss -= min(lr * 15, 0.9) * (loss - floor)
        autolr.report(loss, step=epoch)
    return loss


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="autolr-report-"))
    out.mkdir(parents=True, exist_ok=True)
    train = autolr.tune(
        n_trials=20, seed=0, lr=(1e-4, 1.0), storage=f"sqlite:///{out / 'studies.db'}",
        show_progress_bar=False,
    )(toy)
    result = train.run()
    print(result.comparison()[["lr_range", "trials", "unstable", "median_steps_to_converge", "verdict"]]
          .to_string(index=False))
    print("recommended lr:", result.best_lr)
    print("wrote", result.export(out / "report.html"))
    try:
        for kind in ("lr", "curves", "history"):
            print("wrote", result.plot(kind, path=out / f"{kind}.png") and out / f"{kind}.png")
    except ImportError as exc:  # matplotlib is optional
        print(exc)


if __name__ == "__main__":
    main()
