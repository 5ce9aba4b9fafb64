"""Recording a build as it runs: its phases read from its own log, its end, its reports.

`Recording` stands between the provider and the job log. Every line written passes through
unchanged; the ``[Container]`` lines that enter or complete a phase move the build's
`Timeline`, which is handed to the installation's `BuildRecorder` as each phase starts, so
BatchGetBuilds shows a running build's phases. A recorder that fails (the database is away)
never fails the build: the problem is logged once and the build goes on unrecorded.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from conveyor.domain.builds import (
    FAILED,
    STOPPED,
    SUCCEEDED,
    TIMED_OUT,
    BuildRecorder,
    BuildStart,
    ReportResult,
    Timeline,
    read_line,
)

__all__ = ["Recording"]

log = logging.getLogger("conveyor.builds")


class Recording(io.StringIO):
    """A write-through log that records the build's phases as its lines go by."""

    def __init__(self, recorder: BuildRecorder, build_id: str, target: TextIO) -> None:
        super().__init__()
        self.recorder = recorder
        self.build_id = build_id
        self.target = target
        self.timeline = Timeline()
        self.partial = ""
        self.broken = False
        # How the build's shell was stopped ("timed out", "cancelled"), if it was.
        self.stopped: str | None = None
        self.artifacts: dict[str, Any] | None = None
        self.reports: list[ReportResult] = []

    def _call(self, what: str, *args: Any) -> Any:
        if self.broken:
            return None
        try:
            return getattr(self.recorder, what)(*args)
        except Exception:
            self.broken = True
            log.warning("build %s: cannot record it", self.build_id, exc_info=True)
            return None

    def begin(self, start: BuildStart) -> None:
        timeline = self._call("started", start)
        if isinstance(timeline, Timeline):
            self.timeline = timeline

    def write(self, text: str) -> int:
        self.target.write(text)
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        moved = False
        for line in lines:
            step = read_line(line)
            if step is not None:
                self.timeline = self.timeline.apply(step, time.time())
                # A phase's end and its context are followed at once by the next phase's
                # start: recording at each start (and at the end) keeps to one write a phase.
                moved = moved or step.kind == "enter"
        if moved:
            self._call("progressed", self.build_id, self.timeline)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def end(self, succeeded: bool, message: str | None, exported: Mapping[str, str]) -> str:
        """Record the build's end; the status it ended with."""
        if succeeded:
            status = SUCCEEDED
        elif self.stopped == "timed out":
            status = TIMED_OUT
        elif self.stopped is not None:
            status = STOPPED
        else:
            status = FAILED
        timeline = self.timeline.finish(status, time.time(), message)
        self.timeline = timeline
        reports: Sequence[ReportResult] = self.reports
        self._call("finished", self.build_id, status, timeline, exported, reports, self.artifacts)
        return status
