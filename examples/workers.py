"""Several workers on one study: threads, processes, and the command for cluster nodes.

Run it::

    python examples/workers.py

It tunes a small CPU-bound function three ways, each on a study of its own, and prints what each
left in its study:

1. ``train.run(n_jobs=2)``: two threads in this process;
2. ``train.run(workers=2)``: two processes on one study (the function is imported by the
   workers from this file, which is why the calls sit under ``if __name__ == "__main__":``);
3. two separate worker commands, as cluster nodes would run them::

       autolr worker examples/workers.py:cluster --storage URL

   Any number of them may run at once, on any machine that reaches the storage; the search is
   shared through the storage, and a worker whose next step waits on another's trial waits.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile

import autolr

HERE = os.path.dirname(os.path.abspath(__file__))


def loss(lr: float) -> float:
    """A stand-in for training: some arithmetic, then a loss that is best near lr = 3e-3."""
    x = sum(math.sqrt(i) for i in range(20_000))
    for epoch in range(6):
        autolr.report((math.log10(lr) + 2.5) ** 2 + 1.0 / (epoch + 1), step=epoch)
    return (math.log10(lr) + 2.5) ** 2 + x * 0.0


# One study each; worker processes import these module-level names from this file.
threads = autolr.tune(study_name="threads", show_progress_bar=False)(loss)
processes = autolr.tune(study_name="processes", show_progress_bar=False)(loss)
cluster = autolr.tune(study_name="cluster", show_progress_bar=False)(loss)


def summary(result: autolr.Result) -> str:
    trials = result.study.get_trials(deepcopy=False)
    workers = {t.user_attrs.get("autolr.worker", "?").split(":")[1] for t in trials}
    return f"{len(trials)} trials, by {len(workers)} processes; best lr {result.best_lr:.2e}"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        # A journal file is safe for several processes on one machine (so is the default SQLite
        # file); use postgresql://... or redis://... when the workers are on several machines.
        storage = f"journal:///{tmp}/study.log"
        os.environ["AUTOLR_STORAGE"] = storage  # the studies have no storage= of their own

        print("threads:   ", summary(threads.run(n_jobs=2)))
        print("processes: ", summary(processes.run(workers=2)))

        # Workers started on their own: they share one study (they would on several machines).
        env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
        command = [sys.executable, "-m", "autolr", "worker", f"{HERE}/workers.py:cluster"]
        for proc in [subprocess.Popen(command, env=env) for _ in range(2)]:
            assert proc.wait() == 0
        print("worker cmd:", summary(autolr.load("cluster", storage=storage)))
