"""``train.run(executor=...)`` on a real local Dask cluster and a real local Ray (issue 16).

The same guarantees as ``workers=``: the study ends with exactly its total of finished trials,
no number twice, and a job whose process is SIGKILLed mid-trial leaves that trial failed as
``crashed`` and its lr run again once (the engine reruns the lost job, which finds the study
done or nearly so).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import pytest
from optuna.trial import TrialState

import autolr
from autolr import _schema

ROOT = Path(__file__).resolve().parents[1]
N = 10
HANG_AT = 6

SCRIPT = textwrap.dedent(
    """
    import math, os, sys, time
    import autolr

    HERE = os.path.dirname(os.path.abspath(__file__))

    @autolr.tune(n_trials=%(n)d, sampler="random", seed=0, show_progress_bar=False)
    def train(lr: float, trial) -> float:
        if trial.number == %(hang)d:
            try:
                fd = os.open(os.path.join(HERE, "hung"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                autolr.report(1.0, step=0)
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                time.sleep(600)
        time.sleep(0.05)
        return (math.log10(lr) + 2.5) ** 2

    def main(engine):
        if engine == "dask":
            from distributed import Client, LocalCluster
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                train.run(executor=client.get_executor(), workers=2)
        else:
            import ray
            import autolr.ray
            ray.init(num_cpus=2, include_dashboard=False)
            try:
                train.run(executor=autolr.ray.RayExecutor(), workers=2)
            finally:
                ray.shutdown()

    if __name__ == "__main__":
        main(sys.argv[1])
    """
) % {"n": N, "hang": HANG_AT}


@pytest.mark.parametrize("engine", ["dask", "ray"])
def test_an_executor_holds_the_total_and_survives_a_killed_job(tmp_path: Path, engine: str) -> None:
    pytest.importorskip("distributed" if engine == "dask" else "ray")
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), AUTOLR_STORAGE=storage, OMP_NUM_THREADS="1",
               RAY_AUTH_MODE="disabled")
    proc = subprocess.Popen([sys.executable, str(script), engine], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    marker = tmp_path / "hung"
    deadline = time.monotonic() + 120
    while not (marker.exists() and marker.read_text()):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no job reached the trial to hang in"
        time.sleep(0.05)
    os.kill(int(marker.read_text()), signal.SIGKILL)  # the engine's worker process, mid-trial
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    trials = autolr.load("train", storage=storage).study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))
    assert TrialState.RUNNING not in [t.state for t in trials]
    assert sum(_schema.counted(t) for t in _schema.views(trials)) == N
    crashed = [t for t in trials if t.user_attrs.get("autolr.stop_reason") == "crashed"]
    assert [t.number for t in crashed] == [HANG_AT]
    retries = [t for t in trials if t.user_attrs.get("autolr.retry_of") == HANG_AT]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE


def test_executor_must_be_an_executor_and_needs_a_count_when_it_has_none() -> None:
    @autolr.tune(n_trials=2, storage="sqlite:///unused.db", show_progress_bar=False)
    def train(lr: float) -> float:
        return lr

    with pytest.raises(TypeError, match="executor: expected a concurrent.futures.Executor"):
        train.run(executor="dask")  # type: ignore[arg-type]

    class Bare(Executor):  # an executor that does not say how many jobs it runs at once
        pass

    with pytest.raises(ValueError, match=r"workers: with executor=Bare, give how many jobs"):
        train.run(executor=Bare())
    with ThreadPoolExecutor(2) as threads, pytest.raises(ValueError, match="use n_jobs="):
        train.run(executor=threads)


def test_a_process_pool_executor_holds_the_total(tmp_path: Path) -> None:
    script = tmp_path / "pool_script.py"
    script.write_text(textwrap.dedent(
        f"""
        import math
        from concurrent.futures import ProcessPoolExecutor
        import autolr

        @autolr.tune(n_trials=6, sampler="random", seed=0, storage="sqlite:///{tmp_path}/s.db",
                     show_progress_bar=False)
        def train(lr: float) -> float:
            return (math.log10(lr) + 2.5) ** 2

        if __name__ == "__main__":
            with ProcessPoolExecutor(2) as pool:
                result = train.run(executor=pool)
            print(len(result.study.trials))
        """
    ))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = autolr.load("train", storage=f"sqlite:///{tmp_path}/s.db").study.get_trials()
    assert sum(_schema.counted(t) for t in _schema.views(trials)) == 6
    assert TrialState.RUNNING not in [t.state for t in trials]
