"""The ``underperforming`` rule: stop a trial whose curve trails the other trials'.

`Pruning` is the public, frozen configuration (``autolr.Pruning``). `PeerPruner` is the pure
per-trial decision object: the runner builds it once at trial start from a snapshot of the
other trials' curves and states, then asks `PeerPruner.should_stop` on every report with no
storage round trip.

The comparison is best-so-far against best-so-far at the same step (a trial that was good and
then diverged is the stability monitor's business, see ``autolr/_stability.py``). Only
``COMPLETE`` reference trials count: their curves cover the whole run, so the reference set
does not shrink towards the lucky survivors at late steps.

Policies:

* ``"median"``: stop when the trial's best-so-far is worse than the median of the reference
  trials' best-so-far at that step (Optuna's ``MedianPruner`` idea).
* ``"percentile"``: the same against the ``percentile``-th best (lower = stricter).
* ``"asha"``: successive halving by rung: only at rungs ``warmup * reduction_factor**k``; keep
  the trial when it is within the best ``1 / reduction_factor`` of the references at the rung.

Decisions start after the warm-up (a fraction of the reference trials' typical length) and only
when at least ``min_trials`` reference trials reached the step. ``docs/stability.md`` has the
measurements behind the defaults (``benchmarks/stability_defaults.py``).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
import math
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from collections.abc import Mapping
    from collections.abc import Sequence


_POLICIES = ("median", "percentile", "asha")


@dataclass(frozen=True)
class Pruning:
    """How autolr stops trials that trail the others (reason ``underperforming``).

    Example:
        .. code-block:: python

            import autolr

            default = autolr.Pruning()
            stricter = autolr.Pruning(policy="percentile", percentile=25.0)
            off = autolr.Pruning(enabled=False)

    Args:
        enabled: Prune underperforming trials at all.
        policy: ``"median"``, ``"percentile"`` or ``"asha"``.
        percentile: In ``(0, 100)``; the reference percentile for ``"percentile"`` (ignored by
            the other policies; ``"median"`` is 50).
        reduction_factor: ``>= 2``; for ``"asha"``, keep the best ``1/reduction_factor`` at each
            rung and space rungs by this factor.
        warmup: In ``[0, 1)``; no decision before this fraction of the reference trials' median
            length (their median last step).
        min_trials: ``>= 1``; no decision unless at least this many reference trials reached
            the step.
        partial: Also count trials stopped as ``underperforming`` as references, at the steps
            they reached (successive-halving style), so that decisions start before
            ``min_trials`` trials have run to the end.
    """

    enabled: bool = True
    policy: str = "median"
    percentile: float = 50.0
    reduction_factor: int = 3
    warmup: float = 0.25
    min_trials: int = 2
    partial: bool = True

    def __init__(
        self,
        *,
        enabled: bool = True,
        policy: str = "median",
        percentile: float = 50.0,
        reduction_factor: int = 3,
        warmup: float = 0.25,
        min_trials: int = 2,
        partial: bool = True,
    ) -> None:
        if not isinstance(enabled, bool):
            raise ValueError(f"enabled must be a bool, got {enabled!r}.")
        if policy not in _POLICIES:
            raise ValueError(f"policy must be one of {_POLICIES}, got {policy!r}.")
        if isinstance(percentile, bool) or not isinstance(percentile, (int, float)):
            raise ValueError(f"percentile must be a number in (0, 100), got {percentile!r}.")
        if not 0.0 < float(percentile) < 100.0:
            raise ValueError(f"percentile must be a number in (0, 100), got {percentile!r}.")
        if (
            isinstance(reduction_factor, bool)
            or not isinstance(reduction_factor, int)
            or reduction_factor < 2
        ):
            raise ValueError(f"reduction_factor must be an int >= 2, got {reduction_factor!r}.")
        if isinstance(warmup, bool) or not isinstance(warmup, (int, float)):
            raise ValueError(f"warmup must be a number in [0, 1), got {warmup!r}.")
        if not 0.0 <= float(warmup) < 1.0:
            raise ValueError(f"warmup must be a number in [0, 1), got {warmup!r}.")
        if isinstance(min_trials, bool) or not isinstance(min_trials, int) or min_trials < 1:
            raise ValueError(f"min_trials must be an int >= 1, got {min_trials!r}.")
        object.__setattr__(self, "enabled", enabled)
        object.__setattr__(self, "policy", policy)
        object.__setattr__(self, "percentile", float(percentile))
        object.__setattr__(self, "reduction_factor", reduction_factor)
        object.__setattr__(self, "warmup", float(warmup))
        if not isinstance(partial, bool):
            raise ValueError(f"partial must be a bool, got {partial!r}.")
        object.__setattr__(self, "min_trials", min_trials)
        object.__setattr__(self, "partial", partial)


class PeerPruner:
    """Decide locally whether one trial trails the finished ``COMPLETE`` trials.

    Built once per trial from a snapshot; `should_stop` is O(references) the first time a step
    is seen and O(1) afterwards.

    Example:
        .. code-block:: python

            from autolr._pruning import PeerPruner, Pruning

            others = [{1: 1.0, 2: 0.5, 3: 0.3, 4: 0.2}] * 4
            pruner = PeerPruner(Pruning(), others, ["COMPLETE"] * 4)
            pruner.should_stop(0, 2.0)  # False: before the warm-up (1 = 25% of 4 steps)
            pruner.should_stop(2, 1.9)  # True: best so far 1.9 > median 0.5 at step 2

    Args:
        config: The `Pruning` settings.
        curves: Each other finished trial's intermediate values, ``{step: value}``.
        states: Their final states (``"COMPLETE"``, ``"PRUNED"``, ``"FAIL"``), same order.
        direction: ``"minimize"`` or ``"maximize"``.
    """

    def __init__(
        self,
        config: Pruning,
        curves: Sequence[Mapping[int, float]],
        states: Sequence[str],
        *,
        direction: str = "minimize",
    ) -> None:
        if not isinstance(config, Pruning):
            raise ValueError(f"config must be an autolr.Pruning, got {config!r}.")
        if direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}.")
        if len(curves) != len(states):
            raise ValueError(
                f"curves and states must have the same length, got {len(curves)} and "
                f"{len(states)}."
            )
        self._cfg = config
        self._sign = 1.0 if direction == "minimize" else -1.0
        self._best = math.inf
        self._cache: dict[int, float | None] = {}
        self._refs: list[tuple[list[int], list[float]]] = []
        complete_lengths: list[int] = []
        if config.enabled:
            for curve, state in zip(curves, states):
                if state != "COMPLETE" and not (config.partial and state == "PRUNED"):
                    continue
                steps: list[int] = []
                running: list[float] = []
                best = math.inf
                for step in sorted(curve):
                    v = float(curve[step])
                    if v != v:
                        continue
                    best = min(best, self._sign * v)
                    steps.append(int(step))
                    running.append(best)
                if steps:
                    self._refs.append((steps, running))
                    if state == "COMPLETE":
                        complete_lengths.append(steps[-1])
        # The typical full length: the completed trials' median, else the longest curve seen.
        lengths = sorted(complete_lengths)
        if lengths:
            self._length = lengths[len(lengths) // 2]
        else:
            self._length = max((s[-1] for s, _ in self._refs), default=0)
        self._warmup_step = config.warmup * self._length
        self._rungs: list[float] = []
        if config.policy == "asha" and self._length > 0:
            rung = max(self._warmup_step, 1.0)
            while rung <= self._length:
                self._rungs.append(rung)
                rung *= config.reduction_factor
        self._next_rung = 0
        if config.policy == "median":
            self._q = 50.0
        elif config.policy == "percentile":
            self._q = config.percentile
        else:
            self._q = 100.0 / config.reduction_factor

    @property
    def n_references(self) -> int:
        """How many ``COMPLETE`` reference curves the decision uses."""
        return len(self._refs)

    def threshold(self, step: int) -> float | None:
        """The reference value at ``step`` (caller's orientation), or ``None`` if undecidable."""
        t = self._threshold(step)
        return None if t is None else self._sign * t

    def should_stop(self, step: int, value: float) -> bool:
        """Take one report; ``True`` means stop the trial as ``underperforming``."""
        if not self._refs:
            return False
        x = self._sign * float(value)
        if x != x:
            return False  # NaN is the stability monitor's business
        if x < self._best:
            self._best = x
        if step < self._warmup_step:
            return False
        if self._cfg.policy == "asha":
            rungs = self._rungs
            i = self._next_rung
            if i >= len(rungs) or step < rungs[i]:
                return False
            while i < len(rungs) and step >= rungs[i]:
                i += 1
            self._next_rung = i
        t = self._threshold(step)
        if t is None:
            return False
        return self._best > t

    def _threshold(self, step: int) -> float | None:
        if step in self._cache:
            return self._cache[step]
        values = []
        for steps, running in self._refs:
            if steps[-1] < step:
                continue
            i = bisect_right(steps, step)
            if i == 0:
                continue
            values.append(running[i - 1])
        t: float | None = None
        if len(values) >= self._cfg.min_trials:
            values.sort()
            # Linear-interpolated percentile over the sorted (best first) values.
            pos = (len(values) - 1) * self._q / 100.0
            lo = math.floor(pos)
            hi = min(lo + 1, len(values) - 1)
            frac = pos - lo
            a, b = values[lo], values[hi]
            t = a if frac == 0.0 or a == b else a + (b - a) * frac
        if len(self._cache) < 100_000:
            self._cache[step] = t
        return t
