"""Resume: a study survives an interruption and finishes where it stopped.

    python examples/resume.py

The first run is interrupted in its fourth trial (as if Ctrl-C, a crash or a lost node stopped
it); the second run of the very same code trains only what is missing: what the interrupted
trials had reported still counts. The study lives in ``studies/autolr.db`` under the name
``resume_demo``; ``autolr delete resume_demo`` (or deleting the file) starts over.
"""

from __future__ import annotations

import math

import autolr

epochs_trained: list[float] = []
#: Stand-in for Ctrl-C: the first run is stopped after this many epochs (a module setting, not a
#: run() keyword: run() keywords are part of what defines a study, and a change is refused).
interrupt_at: int | None = 7


@autolr.tune(study_name="resume_demo")
def train(lr: float) -> float:
    loss = 1.0
    for step in range(20):
        if interrupt_at is not None and len(epochs_trained) == interrupt_at:
            raise KeyboardInterrupt  # what Ctrl-C does in the middle of a trial
        epochs_trained.append(lr)
        loss = 0.1 + (math.log10(lr) + 2.5) ** 2 / 10 + 0.9 * 0.8**step
        autolr.report(loss, step=step)
    return loss


if __name__ == "__main__":
    try:
        train.run()
        print("the study had already finished: nothing to resume (autolr delete resume_demo)")
    except KeyboardInterrupt:
        print(f"first run: interrupted after {len(epochs_trained)} epochs of training")
    first = len(epochs_trained)
    epochs_trained.clear()
    interrupt_at = None
    result = train.run()  # the very same call resumes
    table = result.trials()
    print(f"second run: trained {len(epochs_trained)} more epochs; the study holds "
          f"{len(table)} trials ({int((table.stop_reason == 'interrupted').sum())} interrupted)")
    print(table[["number", "state", "lr", "value", "steps", "stop_reason"]].to_string(index=False))
    print(f"recommended lr: {result.best_lr:.3g}")
