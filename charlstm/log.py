"""Progress messages: a ``Log`` is any function that takes one line of text."""

from __future__ import annotations

import sys
from collections.abc import Callable

Log = Callable[[str], None]


def log_to_stderr(message: str) -> None:
    """The default log: one line on stderr, at once (stdout is kept for results)."""
    print(message, file=sys.stderr, flush=True)
