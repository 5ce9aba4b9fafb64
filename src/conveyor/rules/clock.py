"""Where rules that wait read the time and how they wait: the system's, unless told otherwise."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Clock"]


def _wait(event: threading.Event, seconds: float) -> bool:
    return event.wait(seconds)


@dataclass(frozen=True, slots=True)
class Clock:
    now: Callable[[], float] = time.time
    # Wait up to the seconds given, or until the event (the job's ``cancelled``) is set;
    # True if it was.
    wait: Callable[[threading.Event, float], bool] = _wait
