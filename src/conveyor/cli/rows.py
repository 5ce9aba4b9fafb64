"""The actions of the execution `conveyor run` watches, as rows, and what to say of each.

`rows` turns the engine's `StateView` into one `Row` per action; the rest picks the text a
person wants beside an action: the last line it logged, without the ``[Container] <time>``
prefix every CodeBuild line carries, and once a build is done its test summary
(``2 tests: 2 passed, 0 failed``) rather than whichever line happened to come last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the engine (and SQLAlchemy) is imported only once a run starts
    from conveyor.engine.views import StateView

_READ_BYTES = 8192
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")
# What CodeBuild (and Conveyor's CodeBuild runner) puts before each line of its own.
_CONTAINER = re.compile(r"^\[Container\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:[.,]\d+)? ?")
# A test report's counts in a build's summary, as the CodeBuild provider writes them.
_TESTS = re.compile(r"\b\d+ tests?: \d+ passed, \d+ failed")


@dataclass(frozen=True, slots=True)
class Row:
    """One action of the execution being watched; ``status`` None: not started (yet)."""

    stage: str
    action: str
    status: str | None = None
    started: float | None = None
    updated: float | None = None
    log: Path | None = None
    summary: str | None = None
    error: str | None = None
    is_approval: bool = False
    token: str | None = None
    configuration: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.stage}/{self.action}"

    @property
    def waiting(self) -> bool:
        """Whether this is a manual approval waiting for an answer."""
        return self.is_approval and self.status == "InProgress" and bool(self.token)

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        end = now if self.status == "InProgress" or self.updated is None else self.updated
        return max(0.0, end - self.started)


def rows(state: StateView, execution_id: str, logs: Path) -> list[Row]:
    """The actions of ``state`` as the execution ``execution_id`` ran them (so far)."""
    result = []
    for stage in state.stages:
        for action in stage.actions:
            record = action.latest
            if record is None or record.execution_id != execution_id:
                result.append(Row(stage.name, action.name, is_approval=action.is_approval))
                continue
            resolved = record.input.get("resolvedConfiguration") or {}
            result.append(
                Row(
                    stage=stage.name,
                    action=action.name,
                    status=record.status,
                    started=record.started,
                    updated=record.updated,
                    log=None if action.is_approval else logs / f"{record.id}.log",
                    summary=record.summary,
                    error=record.error_message,
                    is_approval=action.is_approval,
                    token=record.token,
                    configuration={str(k): str(v) for k, v in resolved.items()},
                )
            )
    return result


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _clean(line: str) -> str:
    return _CONTROL.sub("", line.rsplit("\r", 1)[-1]).rstrip()


def log_tail(path: Path | None, count: int) -> list[str]:
    """The last ``count`` lines of the log at ``path`` (none when there is no such file)."""
    if path is None:
        return []
    try:
        with path.open("rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - _READ_BYTES * max(1, count // 4)))
            data = log.read()
    except OSError:
        return []
    lines = [_clean(line) for line in data.decode("utf-8", "replace").splitlines()]
    return lines[-count:]


def readable(line: str) -> str:
    """A log line without the ``[Container] 2026/12/01 10:00:00.123`` prefix."""
    return _CONTAINER.sub("", line, count=1)


def last_line(path: Path | None) -> str:
    """The last line with something to read in the log at ``path``."""
    lines = (readable(line) for line in reversed(log_tail(path, 5)))
    return next((line for line in lines if line.strip()), "")


def first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0]


def reported_tests(row: Row) -> str | None:
    """The test counts of a build that reported tests (its summary says them), else None."""
    line = first_line(row.summary)
    return line if _TESTS.search(line) else None
