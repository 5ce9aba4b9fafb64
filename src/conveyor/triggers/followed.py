"""What the detector follows (a source action with its location) and what it counts."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from conveyor.triggers.catalog import Target
from conveyor.triggers.locations import Location


@dataclass
class Source:
    target: Target
    location: Location | None = None

    @property
    def where(self) -> str:
        """The location problems are logged under: shared by the sources that use it."""
        if self.location is None:
            return f"{self.target.pipeline_name}.{self.target.watch.action}"
        return self.location.git_dir or self.location.url


@dataclass
class Counters:
    """What the detector did, for benchmarks and tests."""

    passes: int = 0
    remote_polls: int = 0
    local_scans: int = 0
    s3_polls: int = 0
    starts: int = 0
    # How many distinct (URL, branch) each recent round of remote polls read.
    rounds: deque[int] = field(default_factory=lambda: deque(maxlen=1024))
    # CPU seconds the detector's own threads spent (git's processes not included).
    cpu: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def spent(self, seconds: float, polls: int = 0) -> None:
        with self._lock:
            self.cpu += seconds
            self.remote_polls += polls
