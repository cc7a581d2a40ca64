"""The benchmark task suite: small torch trainings that run offline on one CPU thread.

Every task is a :class:`Task` with a name, a docstring (what it is, why it is in the suite, the
source of an adapted script), the training script's own ``default_lr``, ``epochs``, a
``direction`` (``"minimize"`` a loss or ``"maximize"`` an accuracy) and
``train(lr, *, seed, report=None) -> float``, which trains from scratch and returns the final
validation metric after calling ``report(value, epoch)`` once per epoch (epochs count from 1).
For a given ``(lr, seed)`` a run is deterministic; it uses one torch thread. Data comes from the
datasets scikit-learn ships or is generated here with fixed seeds.

The value returned is raw: it may be ``nan`` or huge when the learning rate is too high (real
training code does that too); :meth:`Task.score` caps it at a trivial predictor's value
(``cap``) so that means over seeds stay meaningful.

The families live in one module each (:mod:`.mlp`, :mod:`.conv`, :mod:`.seq`, :mod:`.misc`,
:mod:`.adapted`); :data:`TASKS` has them all. Which half a task belongs to is decided by
:mod:`benchmarks.split`, never here.

Example::

    from benchmarks.tasks import TASKS
    task = TASKS["digits_adam"]
    print(task.train(1e-3, seed=0))
"""

from __future__ import annotations

from benchmarks.tasks._core import REGISTRY, ReportFn, Task

from benchmarks.tasks import adapted, conv, misc, mlp, seq  # noqa: F401  (registers the tasks)

TASKS: dict[str, Task] = dict(sorted(REGISTRY.items()))
"""All tasks by name (sorted)."""

QUICK_TASKS: tuple[str, ...] = ("iris_sgd", "digits_adam")
"""The tasks ``python -m benchmarks --quick`` runs (one of each half)."""

__all__ = ["TASKS", "QUICK_TASKS", "Task", "ReportFn"]
