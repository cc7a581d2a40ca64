"""Run a study's workers as Ray tasks: ``train.run(executor=autolr.ray.RayExecutor(), workers=k)``.

Ray has no ``concurrent.futures.Executor`` of its own; :class:`RayExecutor` is the few lines that
make one from Ray tasks (each ``submit`` is a task; its ``ObjectRef.future()`` is the Future), so
``train.run(executor=...)`` treats Ray like Dask's ``client.get_executor()`` or a
``ProcessPoolExecutor``. Ray is imported lazily: ``pip install 'autolr[ray]'``.

Example:
    >>> import autolr.ray  # doctest: +SKIP
    >>> ray.init(num_cpus=4)  # or ray.init(address="auto") on a cluster  # doctest: +SKIP
    >>> train.run(executor=autolr.ray.RayExecutor(), workers=4)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

__all__ = ["RayExecutor"]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ImportError("autolr.ray needs Ray: pip install 'autolr[ray]'") from None
    return ray


class RayExecutor(Executor):
    """A ``concurrent.futures.Executor`` whose jobs are Ray tasks (Ray must be initialised).

    Args:
        num_cpus: CPUs each task reserves (default 1): Ray runs as many workers at once as the
            cluster has CPUs for.
        **options: other ``ray.remote`` options (``num_gpus``, ``resources``, ``runtime_env``...).
    """

    def __init__(self, *, num_cpus: float = 1, **options: Any) -> None:
        if isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float)) or num_cpus < 0:
            raise ValueError(f"num_cpus: expected a number >= 0, got {num_cpus!r}")
        self._options = dict(options, num_cpus=num_cpus)
        self._refs: list[Any] = []

    def submit(  # type: ignore[override]
        self, fn: Callable[..., object], /, *args: object, **kwargs: object
    ) -> Future[object]:
        ray = _ray()
        if not ray.is_initialized():
            raise RuntimeError(
                "RayExecutor: call ray.init(...) first (or ray.init(address='auto'))"
            )
        task = ray.remote(**self._options)(fn)
        ref = task.remote(*args, **kwargs)
        self._refs.append(ref)
        future: Future[object] = ref.future()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        ray = _ray()
        if cancel_futures:
            for ref in self._refs:
                ray.cancel(ref)
        if wait and self._refs:
            ray.wait(self._refs, num_returns=len(self._refs))
