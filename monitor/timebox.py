"""Run a blocking call with a deadline when the call itself has none.

The call runs in a daemon thread that we stop waiting for at the deadline: it cannot be
cancelled, but it cannot keep the process alive either, so callers bound the work
itself too (a DNS lookup ends on its own, text extraction gets a size cap).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def call_with_timeout(function: Callable[[], T], seconds: float, name: str) -> T:
    """function(), or TimeoutError after `seconds`; its own exceptions are re-raised here."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(name)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
