"""``python -m autolr``: the same as the ``autolr`` command."""

from __future__ import annotations

from autolr.cli import main

raise SystemExit(main())
