"""A train function that can be paused inside :func:`autolr.report` and resumed later.

The search (:mod:`autolr._search`) runs a dozen learning rates for a couple of reports each,
then resumes only the promising ones: a paused run continues where it stopped instead of
starting over. Each trial's train function therefore runs in a thread of its own
(:class:`PausableCall`); only one of them runs at a time, the others wait inside ``report()``:

* the runner's thread calls :meth:`PausableCall.run` with a budget of reports and blocks until
  the trial reaches it (and parks in ``report()``), returns, or raises;
* a parked trial is resumed with a larger budget, or ended with :meth:`PausableCall.stop`, which
  raises the given exception inside its ``report()`` so the user's ``finally`` blocks run;
* the global random states (``random``, NumPy, torch, CUDA) are saved when a trial parks and put
  back when it resumes, so a paused-and-resumed run draws exactly what an uninterrupted one would
  (a trial that seeds its own generators is unaffected either way);
* Ctrl-C reaches the runner's thread; it is passed on to the running trial as a
  ``KeyboardInterrupt`` (``PyThreadState_SetAsyncExc``), so the trial unwinds as if it had been
  pressed there, and is recorded as interrupted.

Torch's autograd, autocast and inference modes are per thread, so a trial parked inside
``torch.no_grad()`` does not leak that mode into another one. Code that must run in the main
thread (``signal.signal`` in the train function) needs ``pruner=False`` (no pausing).
"""

from __future__ import annotations

import contextvars
import ctypes
import random
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

#: Seconds between two checks for Ctrl-C while the runner waits for a trial.
WAIT_SLICE_S = 0.25


@dataclass(frozen=True)
class Outcome:
    """Where a :class:`PausableCall` stands after :meth:`~PausableCall.run`.

    ``paused`` (after ``reports`` reports), ``returned`` (``value``) or ``raised`` (``error``).
    """

    kind: Literal["paused", "returned", "raised"]
    reports: int = 0
    value: object = None
    error: BaseException | None = None


def _random_states() -> list[tuple[Callable[[Any], object], object]]:
    """Setters and states of the global random generators in use (saved when a trial parks)."""
    saved: list[tuple[Callable[[Any], object], object]] = [(random.setstate, random.getstate())]
    np = sys.modules.get("numpy")
    if np is not None:
        saved.append((np.random.set_state, np.random.get_state()))
    torch = sys.modules.get("torch")
    if torch is not None:
        saved.append((torch.set_rng_state, torch.get_rng_state()))
        cuda = getattr(torch, "cuda", None)
        if cuda is not None and cuda.is_available() and cuda.is_initialized():
            saved.append((cuda.set_rng_state_all, cuda.get_rng_state_all()))
    return saved


class PausableCall:
    """``fn(**kwargs)`` in a thread of its own that parks when its report budget is reached.

    Example:
        >>> import autolr._pause as p
        >>> def train(lr: float) -> float:
        ...     for n in range(1, 6):
        ...         call.checkpoint(n)  # autolr.report() does this
        ...     return lr
        >>> call = p.PausableCall(train, {"lr": 0.1})
        >>> call.run(2).kind, call.run(None).value
        ('paused', 0.1)
    """

    def __init__(self, fn: Callable[..., object], kwargs: dict[str, object], *, name: str = "autolr-trial") -> None:
        self._fn = fn
        self._kwargs = kwargs
        self._context = contextvars.copy_context()  # the caller's context vars, autolr's included
        self._go = threading.Event()
        self._parked = threading.Event()
        self._order: BaseException | None = None
        self._outcome: Outcome | None = None
        self._budget: int | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the trial's thread --------------------------------------------------------------------
    def _main(self) -> None:
        try:
            value = self._context.run(self._fn, **self._kwargs)
            self._outcome = Outcome("returned", value=value)
        except BaseException as exc:  # handed to the runner, which decides what it means
            self._outcome = Outcome("raised", error=exc)
        finally:
            self._parked.set()

    def checkpoint(self, reports: int, before_park: Callable[[], None] | None = None) -> None:
        """Called in the trial's thread after each report: park when the budget is reached."""
        budget = self._budget
        if budget is None or reports < budget:
            return
        if before_park is not None:
            before_park()
        states = _random_states()
        self._outcome = Outcome("paused", reports=reports)
        self._go.clear()
        self._parked.set()
        self._go.wait()
        for setter, state in states:
            setter(state)
        order, self._order = self._order, None
        if order is not None:
            raise order

    # -- the runner's thread -------------------------------------------------------------------
    def run(self, budget: int | None) -> Outcome:
        """Run (or resume) until ``budget`` reports (None: to the end); return where it stands."""
        self._budget = budget
        self._parked.clear()
        if self._thread.ident is None:
            self._thread.start()
        else:
            self._go.set()
        return self._wait()

    def stop(self, error: BaseException) -> Outcome:
        """Resume a parked call with ``error`` raised inside its ``report()``; wait for its end."""
        self._order = error
        self._budget = None
        self._parked.clear()
        self._go.set()
        return self._wait()

    def _wait(self) -> Outcome:
        try:
            while not self._parked.wait(WAIT_SLICE_S):
                pass
        except KeyboardInterrupt:
            self._interrupt()
            raise
        assert self._outcome is not None
        return self._outcome

    def _interrupt(self) -> None:
        """Ctrl-C: raise KeyboardInterrupt in the running trial and give it time to unwind."""
        ident = self._thread.ident
        if ident is not None and self._thread.is_alive() and not self._parked.is_set():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt)
            )
        self._parked.wait(30.0)

    @property
    def outcome(self) -> Outcome | None:
        """The last outcome (after an interrupt: how the trial ended)."""
        return self._outcome
