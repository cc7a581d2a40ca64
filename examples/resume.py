"""Resume: a study survives an interruption and finishes where it stopped.

    python examples/resume.py

The first run is interrupted after three trials (as if Ctrl-C, a crash or a lost node stopped it);
the second run of the very same code trains only the missing trials. The study lives in
``studies/autolr.db`` under the name ``resume_demo``; delete that study (or the file) to start over.
"""

from __future__ import annotations

import math

import autolr

calls: list[float] = []


@autolr.tune(n_trials=8, seed=0, study_name="resume_demo")
def train(lr: float, interrupt_after: int | None = None) -> float:
    if interrupt_after is not None and len(calls) == interrupt_after:
        raise KeyboardInterrupt  # what Ctrl-C does in the middle of a trial
    calls.append(lr)
    loss = 1.0
    for step in range(20):
        loss = 0.1 + (math.log10(lr) + 2.5) ** 2 / 10 + 0.9 * 0.8**step
        autolr.report(loss, step=step)
    return loss


if __name__ == "__main__":
    try:
        train.run(interrupt_after=3)
        print("the study had already finished: nothing to resume (delete studies/autolr.db to rerun)")
    except KeyboardInterrupt:
        print(f"first run: interrupted after {len(calls)} finished trials")
    calls.clear()
    result = train.run()  # the very same call resumes
    table = result.trials()
    print(f"second run: trained {len(calls)} more; the study holds {int((table.stop_reason != 'interrupted').sum())} finished trials")
    print(table[["number", "state", "lr", "value", "stop_reason", "retry_of"]].to_string(index=False))
    print(f"recommended lr: {result.best_lr:.3g}")
