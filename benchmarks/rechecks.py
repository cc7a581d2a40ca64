"""Re-checks and distinct lrs explored by a TPE study, by n_trials and threads.

    python -m benchmarks.rechecks

A train function that accepts ``seed`` (so ``recheck`` defaults to 2) and sleeps 50 ms.
"""
import math, sys, tempfile, time
import optuna
import autolr

optuna.logging.set_verbosity(optuna.logging.WARNING)
print("| n_trials | n_jobs | re-checks | distinct lrs explored |")
print("| --- | --- | --- | --- |")
for n in (5, 8, 12):
    for jobs in (1, 2, 3, 6):
        d = tempfile.mkdtemp()
        @autolr.tune(n_trials=n, seed=0, sampler="tpe", pruner=False, show_progress_bar=False,
                     storage=f"sqlite:///{d}/s.db")
        def train(lr: float, seed: int = 0) -> float:
            time.sleep(0.05)
            return abs(math.log10(lr) + 2) + 0.01 * seed
        r = train.run(n_jobs=jobs)
        ts = [t for t in r.study.trials if t.state.name == "COMPLETE"]
        checks = sum(1 for t in ts if "autolr.recheck_of" in t.user_attrs)
        lrs = {t.params["lr"] for t in ts if "autolr.recheck_of" not in t.user_attrs}
        print(f"| {n} | {jobs} | {checks} | {len(lrs)} |", flush=True)
