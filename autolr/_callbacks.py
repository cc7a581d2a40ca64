"""What the framework callbacks (Lightning, Hugging Face, Keras) share: report, remember, stop.

No framework is imported here; each ``autolr.<framework>.AutolrCallback`` mixes this in and
only says where its metric and step come from and how its framework stops.
"""

from __future__ import annotations

from typing import Any

from autolr._context import TrialPruned, report


def check_monitor(monitor: Any) -> str:
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(f"monitor: expected the name of a logged metric, got {monitor!r}")
    return monitor


class Reporting:
    """``last_value``, ``stopped`` and :meth:`report_value` for a framework callback."""

    def _start_reporting(self, monitor: Any) -> None:
        self.monitor = check_monitor(monitor)
        self.last_value: float | None = None
        self.stopped: TrialPruned | None = None
        self._last_step = -1

    def report_value(self, value: Any, step: int) -> bool:
        """Remember ``value`` and report it at ``step``; True when autolr says stop (once).

        A step not after the last one reported (an evaluation with no training since) and
        anything after the stop are remembered but not reported.
        """
        self.last_value = float(value)
        if self.stopped is not None or step <= self._last_step:
            return False
        self._last_step = step
        try:
            report(self.last_value, step=step)
        except TrialPruned as exc:
            self.stopped = exc
            return True
        return False
