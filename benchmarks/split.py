"""The fixed split of the task suite into a *tuning* half and a *held-out* half.

The rule, decided before any default was tuned and never changed: sort the task names by
``sha256("autolr-split:" + name)`` and put the first half (rounded down) in ``tuning``, the rest
in ``heldout``. Defaults may be chosen on the tuning half only; every table reports both halves.
A task added later lands wherever its hash puts it among the others; no task is ever moved by
hand.

``python -m benchmarks.split`` prints both halves.

Example::

    from benchmarks.split import half_of, TUNING, HELDOUT
    print(half_of("digits_adam"), len(TUNING), len(HELDOUT))
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from benchmarks.tasks import TASKS

SALT = "autolr-split:"

__all__ = ["SALT", "split", "TUNING", "HELDOUT", "HALVES", "half_of", "tasks_of"]


def _h(name: str) -> str:
    return hashlib.sha256((SALT + name).encode()).hexdigest()


def split(names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(tuning, heldout)``: names sorted by their salted sha256, first half tuning."""
    ordered = sorted(names, key=_h)
    k = len(ordered) // 2
    return tuple(sorted(ordered[:k])), tuple(sorted(ordered[k:]))


TUNING, HELDOUT = split(TASKS)
"""The two halves of :data:`benchmarks.tasks.TASKS`, each sorted by name."""

HALVES: dict[str, tuple[str, ...]] = {"tuning": TUNING, "heldout": HELDOUT}


def half_of(name: str) -> str:
    """``"tuning"`` or ``"heldout"``."""
    if name in TUNING:
        return "tuning"
    if name in HELDOUT:
        return "heldout"
    raise KeyError(f"unknown task {name!r}")


def tasks_of(half: str) -> tuple[str, ...]:
    """The tasks of ``"tuning"``, ``"heldout"`` or ``"both"`` (tuning first)."""
    if half == "both":
        return TUNING + HELDOUT
    return HALVES[half]


if __name__ == "__main__":
    for h, names in HALVES.items():
        print(f"{h} ({len(names)}): {', '.join(names)}")
