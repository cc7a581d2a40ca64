"""Hand a study's workers to Dask or Ray: ``train.run(executor=..., workers=k)``.

Run it::

    python examples/executors.py dask    # pip install 'autolr[dask]'
    python examples/executors.py ray     # pip install 'autolr[ray]'

A team that already runs a Dask or Ray cluster gives autolr its executor: each of the ``k`` jobs
imports the train function (so it must be a module-level name of an importable file, as for
``workers=``) and runs trials on the shared study until the study holds its total. The storage
is the only thing the jobs share: on a real cluster, give a URL every machine reaches
(``postgresql://...``); here a local cluster on this machine shares a SQLite file. A job that
dies (its worker killed) leaves its trial to be failed and run again, as with ``workers=``.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile

import autolr


def loss(lr: float) -> float:
    """A stand-in for training: some arithmetic, then a loss that is best near lr = 3e-3."""
    x = sum(math.sqrt(i) for i in range(20_000))
    for epoch in range(6):
        autolr.report((math.log10(lr) + 2.5) ** 2 + 1.0 / (epoch + 1), step=epoch)
    return (math.log10(lr) + 2.5) ** 2 + x * 0.0


# A module-level name: the cluster's workers import it from this file.
train = autolr.tune(study_name="executors", show_progress_bar=False)(loss)


def summary(engine: str, result: autolr.Result) -> str:
    trials = result.study.get_trials(deepcopy=False)
    workers = {t.user_attrs.get("autolr.worker", "?").split(":")[1] for t in trials}
    return f"{engine}: {len(trials)} trials, by {len(workers)} processes; best lr {result.best_lr:.2e}"


def run_dask() -> autolr.Result:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        return train.run(executor=client.get_executor(), workers=2)


def run_ray() -> autolr.Result:
    import ray

    import autolr.ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=True)
    try:
        return train.run(executor=autolr.ray.RayExecutor(), workers=2)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    engine = sys.argv[1] if len(sys.argv) > 1 else "dask"
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AUTOLR_STORAGE"] = f"sqlite:///{tmp}/study.db"
        result = run_dask() if engine == "dask" else run_ray()
        print(summary(engine, result))
