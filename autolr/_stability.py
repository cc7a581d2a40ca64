"""Instability detection for one trial: NaN/inf, divergence and oscillation.

`Stability` is the public, frozen configuration (``autolr.Stability``); `StabilityMonitor` is
the pure per-trial state machine the trial context feeds with every ``autolr.report(value,
step)``. It does no I/O and never talks to Optuna: each `StabilityMonitor.update` is a few
float operations, so it can sit on the hot path of every training step.

How a verdict is reached (values are first oriented so that lower is better; with
``direction="maximize"`` the monitor works on ``-value``):

* ``nan`` / ``inf``: a non-finite report stops the trial at that step, always.
* ``diverged``: optionally each report is first replaced by the median of the last
  ``median_window`` reports (while fewer have arrived: of all so far when their number is odd,
  else the previous median) and smoothed with a bias-corrected exponential moving average
  (``smoothing``); the defaults judge the raw report (window 1, no smoothing). The trial
  diverged when the judged value rises

  - more than ``divergence_factor - 1`` times ``|best|`` above the best smoothed value so far
    (for a positive loss: ``smoothed > divergence_factor * best``), or
  - more than ``rise_over_first * |first|`` above the first report (the loss ended up above
    where it started; reporting the untrained model's loss at step 0 makes this rule catch a
    learning rate that blows up in the first epoch),

  on ``patience`` consecutive reports (default 2: one spike followed by a report back at the
  level is never a divergence; a real blow-up is stopped on its second report).

* ``oscillating``: over the last ``oscillation_window`` reports the value keeps changing
  direction (at least half of the steps reverse direction), the second half of the window is
  no better than the first half, and the mean step-to-step swing is at least
  ``oscillation_swing`` times the window's mean ``|value|``.

The defaults were chosen by ``benchmarks/stability_defaults.py``; ``docs/stability.md`` has the
measured numbers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import math


_DIRECTIONS = ("minimize", "maximize")


@dataclass(frozen=True)
class Stability:
    """How autolr decides that a trial is unstable and stops it.

    All options are keyword-only. ``Stability(enabled=False)`` switches detection off (the
    monitor then never stops a trial, not even on NaN).

    Example:
        .. code-block:: python

            import autolr

            strict = autolr.Stability(divergence_factor=2.0, oscillation_window=6)
            eager = autolr.Stability(patience=1)  # stop on the first report that rose
            robust = autolr.Stability(median_window=3)  # also ignore a single dip
            off = autolr.Stability(enabled=False)

    Args:
        enabled: Detect instability at all.
        median_window: ``>= 1``. The divergence rules judge the median of the last
            ``median_window`` reports (until the window is full: of all reports so far when
            their number is odd, else the previous median; the lower median for an even
            window), so with 3 a single spike or dip of any size is ignored; ``1`` judges every
            report as it is. A real blow-up is seen ``median_window // 2`` reports later.
        smoothing: Factor ``beta`` in ``[0, 1)`` of the exponential moving average applied to
            the running median before the divergence rules (0 = no smoothing; larger =
            smoother and slower).
        divergence_factor: ``> 1``. Stop as ``diverged`` when the smoothed value is more than
            ``divergence_factor - 1`` times ``|best|`` above the best smoothed value so far.
        rise_over_first: ``>= 0`` or ``None`` (rule off). Stop as ``diverged`` when the
            smoothed value exceeds the first report by more than ``rise_over_first * |first|``.
        patience: ``>= 1``. A divergence rule must hold on this many consecutive reports before
            the trial is stopped (1 = at once). With the default 2 and no smoothing, one spike
            of any size followed by a report back at the level is never a divergence, and a
            real blow-up is stopped on its second report. NaN/inf always stop at once.
        oscillation_window: Number of recent reports judged for oscillation; ``0`` (the
            default, see ``docs/stability.md``) switches the rule off, otherwise at least 4.
        oscillation_swing: ``> 0``. Minimum mean step-to-step swing, relative to the window's
            mean ``|value|``, for the window to count as oscillating.
    """

    enabled: bool = True
    median_window: int = 1
    smoothing: float = 0.0
    divergence_factor: float = 4.0
    rise_over_first: float | None = 0.1
    patience: int = 2
    oscillation_window: int = 0
    oscillation_swing: float = 0.1

    def __init__(
        self,
        *,
        enabled: bool = True,
        median_window: int = 1,
        smoothing: float = 0.0,
        divergence_factor: float = 4.0,
        rise_over_first: float | None = 0.1,
        patience: int = 2,
        oscillation_window: int = 0,
        oscillation_swing: float = 0.1,
    ) -> None:
        if not isinstance(enabled, bool):
            raise ValueError(f"enabled must be a bool, got {enabled!r}.")
        median_window = _count("median_window", median_window)
        patience = _count("patience", patience)
        smoothing = _real("smoothing", smoothing)
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}.")
        divergence_factor = _real("divergence_factor", divergence_factor)
        if not 1.0 < divergence_factor < math.inf:
            raise ValueError(
                f"divergence_factor must be a finite number > 1, got {divergence_factor!r}."
            )
        if rise_over_first is not None:
            rise_over_first = _real("rise_over_first", rise_over_first)
            if not 0.0 <= rise_over_first < math.inf:
                raise ValueError(
                    "rise_over_first must be a finite number >= 0 or None, "
                    f"got {rise_over_first!r}."
                )
        if isinstance(oscillation_window, bool) or not isinstance(oscillation_window, int):
            raise ValueError(
                f"oscillation_window must be an int (0 or >= 4), got {oscillation_window!r}."
            )
        if oscillation_window != 0 and oscillation_window < 4:
            raise ValueError(
                f"oscillation_window must be 0 (off) or >= 4, got {oscillation_window!r}."
            )
        oscillation_swing = _real("oscillation_swing", oscillation_swing)
        if not 0.0 < oscillation_swing < math.inf:
            raise ValueError(
                f"oscillation_swing must be a finite number > 0, got {oscillation_swing!r}."
            )
        object.__setattr__(self, "enabled", enabled)
        object.__setattr__(self, "median_window", median_window)
        object.__setattr__(self, "patience", patience)
        object.__setattr__(self, "smoothing", smoothing)
        object.__setattr__(self, "divergence_factor", divergence_factor)
        object.__setattr__(self, "rise_over_first", rise_over_first)
        object.__setattr__(self, "oscillation_window", oscillation_window)
        object.__setattr__(self, "oscillation_swing", oscillation_swing)


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    return value


def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a real number, got {value!r}.")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be a real number, got nan.")
    return value


class StabilityMonitor:
    """Per-trial instability detector; feed it every report, stop when it returns a reason.

    Pure and cheap: no I/O, no Optuna, O(``median_window`` log ``median_window`` +
    ``oscillation_window``) work per update.

    Once a reason has been returned the monitor stays stopped and returns the same reason for
    every later update.

    Example:
        .. code-block:: python

            from autolr._stability import Stability, StabilityMonitor

            mon = StabilityMonitor(Stability(), direction="minimize")
            for step, loss in enumerate([2.3, 1.2, 0.9, 50.0, 400.0]):
                reason = mon.update(step, loss)
                if reason is not None:
                    print(step, reason)  # 4 diverged (patience 2: step 3 alone is not enough)
                    break

    Args:
        config: The `Stability` settings.
        direction: ``"minimize"`` (a loss) or ``"maximize"`` (e.g. accuracy).
    """

    __slots__ = (
        "_cfg",
        "_sign",
        "_beta",
        "_n",
        "_ema",
        "_norm",
        "_first",
        "_best",
        "_window",
        "_recent",
        "_median",
        "_med_n",
        "_patience",
        "_strikes",
        "_reason",
        "_stop_step",
        "_enabled",
        "_factor_m1",
        "_rise",
        "_osc_n",
    )

    def __init__(self, config: Stability, *, direction: str = "minimize") -> None:
        if not isinstance(config, Stability):
            raise ValueError(f"config must be an autolr.Stability, got {config!r}.")
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}.")
        self._cfg = config
        self._sign = 1.0 if direction == "minimize" else -1.0
        self._enabled = config.enabled
        self._beta = config.smoothing
        self._factor_m1 = config.divergence_factor - 1.0
        self._rise = config.rise_over_first
        self._osc_n = config.oscillation_window
        self._n = 0
        self._ema = 0.0
        self._norm = 0.0
        self._first = math.nan
        self._best = math.inf
        self._window: deque[float] = deque(maxlen=max(self._osc_n, 1))
        self._med_n = config.median_window
        self._recent: deque[float] = deque(maxlen=self._med_n)
        self._patience = config.patience
        self._strikes = 0
        self._median = math.nan
        self._reason: str | None = None
        self._stop_step: int | None = None

    @property
    def config(self) -> Stability:
        """The settings this monitor was built with."""
        return self._cfg

    @property
    def reason(self) -> str | None:
        """The stop reason returned so far, or ``None``."""
        return self._reason

    @property
    def stop_step(self) -> int | None:
        """The step of the report that stopped the trial, or ``None``."""
        return self._stop_step

    @property
    def smoothed(self) -> float | None:
        """The current smoothed value in the caller's orientation, or ``None`` before any report."""
        if self._n == 0:
            return None
        return self._sign * self._ema

    @property
    def suspect(self) -> bool:
        """Whether the last report tripped a divergence rule that ``patience`` has not confirmed.

        A runner should not stop such a trial for another reason (e.g. as ``underperforming``)
        before the next report decides whether it diverged or recovered.
        """
        return self._reason is None and self._strikes > 0

    def update(self, step: int, value: float) -> str | None:
        """Take one report; return ``None`` (keep going) or a stop reason.

        Reasons: ``"nan"``, ``"inf"``, ``"diverged"``, ``"oscillating"``.
        """
        if self._reason is not None:
            return self._reason
        if not self._enabled:
            return None
        if value != value:
            return self._stop(step, "nan")
        if value == math.inf or value == -math.inf:
            return self._stop(step, "inf")
        x = self._sign * value
        raw = x
        if self._med_n > 1:
            # Median of the last `median_window` reports; until the window is full, of all
            # reports so far when their number is odd (the previous median when it is even), so
            # that a lone outlier never moves it, not even at the second report.
            recent = self._recent
            recent.append(x)
            k = len(recent)
            if k % 2 or k == self._med_n:
                x = sorted(recent)[(k - 1) // 2]
            else:
                x = self._median
            self._median = x

        # Bias-corrected EMA, clamped between the previous average and the new value so that
        # rounding (or overflow with huge values) can never move it outside that interval.
        beta = self._beta
        self._n += 1
        if self._n == 1:
            ema = x
            self._norm = 1.0 - beta
            self._first = raw
        else:
            prev = self._ema
            old_norm = self._norm
            self._norm = old_norm * beta + (1.0 - beta)
            w = (1.0 - beta) / self._norm
            ema = prev * (1.0 - w) + x * w
            if x <= prev:
                ema = min(max(ema, x), prev)
            else:
                ema = min(max(ema, prev), x)
        self._ema = ema
        rising = False
        if ema < self._best:
            self._best = ema
        else:
            best = self._best
            first = self._first
            rise = self._rise
            rising = (ema - best > self._factor_m1 * abs(best) and ema > best) or (
                rise is not None and ema - first > rise * abs(first) and ema > first
            )
        if rising:
            self._strikes += 1
            if self._strikes >= self._patience:
                return self._stop(step, "diverged")
        else:
            self._strikes = 0

        n = self._osc_n
        if n:
            window = self._window
            window.append(raw)
            if len(window) == n and self._oscillating(window):
                return self._stop(step, "oscillating")
        return None

    def _oscillating(self, window: deque[float]) -> bool:
        values = list(window)
        n = len(values)
        reversals = 0
        last_sign = 0
        total_swing = 0.0
        level = 0.0
        prev = values[0]
        for v in values[1:]:
            d = v - prev
            prev = v
            if d > 0.0:
                sign = 1
            elif d < 0.0:
                sign = -1
            else:
                sign = 0
            if sign:
                if last_sign and sign != last_sign:
                    reversals += 1
                last_sign = sign
            total_swing += abs(d)
        if 2 * reversals < n - 2:
            return False
        half = n // 2
        first_half = sum(values[:half]) / half
        second_half = sum(values[n - half :]) / half
        if not second_half >= first_half:
            return False
        for v in values:
            level += abs(v)
        level /= n
        mean_swing = total_swing / (n - 1)
        return mean_swing >= self._cfg.oscillation_swing * level and mean_swing > 0.0

    def _stop(self, step: int, reason: str) -> str:
        self._reason = reason
        self._stop_step = step
        return reason
