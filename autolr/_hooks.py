"""What a run shows while it runs: the progress bar over the study's finished trials.

A hook is handed to the loop as a plain callable (``progress=bar.update``) and never imports the
loop, so the loop knows nothing of terminals (skorch's callbacks never import the net either).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import NoReturn

    from tqdm import tqdm


class ProgressBar:
    """A tqdm bar of ``total`` trials, or nothing when switched off (None: on for a terminal)."""

    def __init__(self, *, total: int, desc: str, show: bool | None, initial: int = 0) -> None:
        self.total = total
        self.bar: tqdm[NoReturn] | None = None
        if sys.stderr.isatty() if show is None else show:
            from tqdm.auto import tqdm  # loaded when a bar is shown: picks a notebook or terminal bar

            self.bar = tqdm(total=total, initial=min(initial, total), desc=desc)

    @property
    def shown(self) -> bool:
        return self.bar is not None

    def update(self, finished: int) -> None:
        """Show ``finished`` trials done (capped at the total)."""
        if self.bar is not None:
            self.bar.n = min(finished, self.total)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
