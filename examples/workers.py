"""Several workers on one study: threads, processes, and the command for cluster nodes.

Run it::

    python examples/workers.py

It tunes a small CPU-bound function three ways and prints what each left in the study:

1. ``train.run(n_jobs=2)``: two threads in this process;
2. ``train.run(workers=2)``: two processes on the same study (the function is imported by the
   workers from this file, which is why the calls sit under ``if __name__ == "__main__":``);
3. the same study continued by a separate worker command, as a cluster node would run it::

       autolr worker examples/workers.py:train --storage URL --n-trials 18

   Any number of them may run at once, on any machine that reaches the storage.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile

import autolr

HERE = os.path.dirname(os.path.abspath(__file__))


@autolr.tune(n_trials=6, seed=0, show_progress_bar=False)
def train(lr: float) -> float:
    """A stand-in for training: some arithmetic, then a loss that is best near lr = 3e-3."""
    x = sum(math.sqrt(i) for i in range(20_000))
    for epoch in range(3):
        autolr.report((math.log10(lr) + 2.5) ** 2 + 1.0 / (epoch + 1), step=epoch)
    return (math.log10(lr) + 2.5) ** 2 + x * 0.0


def summary(result: autolr.Result) -> str:
    trials = result.study.get_trials(deepcopy=False)
    workers = {t.user_attrs.get("autolr.worker", "?").rsplit(":", 2)[1] for t in trials}
    done = sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    return f"{done} finished trials, by {len(workers)} processes so far; best lr {result.best_lr:.2e}"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        # A journal file is safe for several processes on one machine (so is the default SQLite
        # file); use postgresql://... or redis://... when the workers are on several machines.
        storage = f"journal:///{tmp}/study.log"
        os.environ["AUTOLR_STORAGE"] = storage  # train has no storage= of its own

        print("threads:   ", summary(train.run(n_jobs=2, n_trials=6)))
        print("processes: ", summary(train.run(workers=2, n_trials=12)))

        # A worker started on its own: it joins the same study and brings it to 18 trials.
        env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
        subprocess.run(
            [sys.executable, "-m", "autolr", "worker", f"{HERE}/workers.py:train", "--n-trials", "18"],
            env=env, check=True,
        )
        print("worker cmd:", summary(autolr.load("train", storage=storage)))
