"""Serving optuna-dashboard on a study storage (``autolr dashboard``).

What autolr *stores* for the dashboard (the recommendation as study attributes and a note) is
:mod:`autolr._dashboard`; this module only finds the server and judges the address it binds.
"""

from __future__ import annotations

from collections.abc import Callable

#: Hosts that only this machine can reach.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
INSTALL_HINT = "pip install 'autolr[dashboard]'"


def is_loopback(host: str) -> bool:
    """True for hosts only this machine can reach (127.x, localhost, ::1)."""
    return host in LOOPBACK or host.startswith("127.")


def load_server() -> Callable[..., None]:
    """``optuna_dashboard.run_server``; ImportError naming the extra when it is missing."""
    try:
        from optuna_dashboard import run_server  # optional, and about 3 s to import
    except ImportError:
        raise ImportError(f"autolr dashboard needs optuna-dashboard: {INSTALL_HINT}") from None
    return run_server  # type: ignore[no-any-return]
