"""CodeBuild builds and test reports: ids, ARNs, the phase timeline, and how a build is recorded.

A build's id is ``<project>:<uuid>``, its ARN ``arn:aws:codebuild:<region>:<account>:build/<id>``.
`Timeline` is the state table of a build's phases as BatchGetBuilds shows them: each phase is
entered once, ends with a status, and the phase after it starts where it ends; the build ends
with a ``COMPLETED`` phase that has only a start. `read_line` reads the build log's
``[Container]`` lines ("Entering phase X", "Phase complete: X State: Y", "Phase context status
code: C Message: M") into timeline steps, so the runner needs no other channel to report them.

`BuildRecorder` is how the CodeBuild provider records a build as it runs (the engine stores
it); `ReportResult` and `CaseResult` are one report group's test results from one build.

A report group named in a buildspec by name (not ARN) is ``<project>-<name>``, as CodeBuild
names it; a report's ARN is ``…:report/<group name>:<build uuid>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from conveyor.domain.arn import Scope

__all__ = [
    "BUILD_PHASES",
    "BuildPlan",
    "BuildRecorder",
    "BuildStart",
    "CaseResult",
    "Page",
    "Phase",
    "ReportResult",
    "Step",
    "Timeline",
    "build_arn",
    "read_line",
    "report_arn",
    "report_group_arn",
]

BUILD_PHASES = (
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
    "COMPLETED",
)
# Build statuses (CodeBuild's StatusType).
IN_PROGRESS = "IN_PROGRESS"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
FAULT = "FAULT"
STOPPED = "STOPPED"
TIMED_OUT = "TIMED_OUT"
FINAL = frozenset({SUCCEEDED, FAILED, FAULT, STOPPED, TIMED_OUT})

_ENTER = re.compile(r"\[Container\] \S+ \S+ Entering phase ([A-Z_]+)\s*\Z")
_COMPLETE = re.compile(r"\[Container\] \S+ \S+ Phase complete: ([A-Z_]+) State: ([A-Z_]+)")
_CONTEXT = re.compile(r"\[Container\] \S+ \S+ Phase context status code: (\S*) Message: (.*)\Z")


def _arn(scope: Scope, resource: str) -> str:
    return f"arn:{scope.partition}:codebuild:{scope.region}:{scope.account}:{resource}"


def build_arn(scope: Scope, build_id: str) -> str:
    return _arn(scope, f"build/{build_id}")


def report_group_arn(scope: Scope, name: str) -> str:
    return _arn(scope, f"report-group/{name}")


def report_arn(scope: Scope, group: str, build_id: str) -> str:
    return _arn(scope, f"report/{group}:{build_id.rpartition(':')[2]}")


def group_name(project: str, named: str) -> str:
    """The report group a buildspec's ``reports`` key names: an ARN's name, or
    ``<project>-<key>``."""
    if named.startswith("arn:") and ":report-group/" in named:
        return named.rpartition(":report-group/")[2]
    return f"{project}-{named}"


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    start: float
    end: float | None = None
    status: str | None = None
    contexts: tuple[tuple[str, str], ...] = ()

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"phaseType": self.name, "startTime": self.start}
        if self.name == "COMPLETED":
            return out
        if self.status is not None:
            out["phaseStatus"] = self.status
        if self.end is not None:
            out["endTime"] = self.end
            out["durationInSeconds"] = max(0, round(self.end - self.start))
        if self.end is not None or self.contexts:
            out["contexts"] = [{"statusCode": c, "message": m} for c, m in self.contexts] or [
                {"statusCode": "", "message": ""}
            ]
        return out

    def dump(self) -> list[Any]:
        return [self.name, self.start, self.end, self.status, [list(c) for c in self.contexts]]

    @classmethod
    def load(cls, row: Sequence[Any]) -> Phase:
        name, start, end, status, contexts = row
        return cls(name, start, end, status, tuple((c[0], c[1]) for c in contexts))


@dataclass(frozen=True, slots=True)
class Step:
    """One change to a timeline: ``enter`` a phase, ``complete`` it with a status, or add a
    ``context`` (status code, message) to the phase that ended last."""

    kind: str
    phase: str = ""
    status: str = ""
    code: str = ""
    message: str = ""


def read_line(line: str) -> Step | None:
    """The timeline step a build log line says, if any."""
    if not line.startswith("[Container] "):
        return None
    if match := _ENTER.match(line):
        return Step("enter", match[1]) if match[1] in BUILD_PHASES else None
    if match := _COMPLETE.match(line):
        return Step("complete", match[1], match[2]) if match[1] in BUILD_PHASES else None
    if match := _CONTEXT.match(line):
        return Step("context", code=match[1], message=match[2].strip())
    return None


@dataclass(frozen=True, slots=True)
class Timeline:
    """A build's phases in order; the last is the current one."""

    phases: tuple[Phase, ...] = ()

    @property
    def current(self) -> str:
        return self.phases[-1].name if self.phases else "SUBMITTED"

    def _closed(self, now: float, status: str) -> tuple[Phase, ...]:
        """The phases with the open one ended (``status`` unless it already has one)."""
        if not self.phases or self.phases[-1].end is not None:
            return self.phases
        last = self.phases[-1]
        return (*self.phases[:-1], replace(last, end=now, status=last.status or status))

    def enter(self, name: str, now: float) -> Timeline:
        if any(p.name == name for p in self.phases):
            return self
        return Timeline((*self._closed(now, SUCCEEDED), Phase(name, now)))

    def complete(self, name: str, status: str, now: float) -> Timeline:
        phases = list(self.phases)
        for index in range(len(phases) - 1, -1, -1):
            if phases[index].name == name:
                if phases[index].end is None:
                    phases[index] = replace(phases[index], end=now, status=status)
                else:
                    phases[index] = replace(phases[index], status=status)
                return Timeline(tuple(phases))
        return self

    def context(self, code: str, message: str) -> Timeline:
        ended = [i for i, p in enumerate(self.phases) if p.end is not None]
        if not ended or not (code or message):
            return self
        index = ended[-1]
        phase = self.phases[index]
        phases = list(self.phases)
        phases[index] = replace(phase, contexts=(*phase.contexts, (code, message)))
        return Timeline(tuple(phases))

    def apply(self, step: Step, now: float) -> Timeline:
        if step.kind == "enter":
            return self.enter(step.phase, now)
        if step.kind == "complete":
            return self.complete(step.phase, step.status, now)
        return self.context(step.code, step.message)

    def finish(self, status: str, now: float, message: str | None = None) -> Timeline:
        """The timeline of a build that ended with ``status``: the open phase ends with it
        (and, failing, the message as its context), then ``COMPLETED``."""
        phases = self.phases
        if phases and phases[-1].end is None:
            last = phases[-1]
            # A phase that failed earlier already says why the build failed: the phase open
            # at the end (FINALIZING) then ends well, unless the build was cut short in it.
            failed_before = any(p.status not in (None, SUCCEEDED) for p in phases[:-1])
            interrupted = status in (STOPPED, TIMED_OUT, FAULT)
            ended = (
                SUCCEEDED if status == SUCCEEDED or (failed_before and not interrupted) else status
            )
            ended = last.status or ended
            contexts = last.contexts
            if ended != SUCCEEDED and message and not contexts:
                contexts = ((_context_code(status), message.splitlines()[0][:1000]),)
            phases = (*phases[:-1], replace(last, end=now, status=ended, contexts=contexts))
        return Timeline((*phases, Phase("COMPLETED", now)))

    def dump(self) -> list[Any]:
        return [phase.dump() for phase in self.phases]

    @classmethod
    def load(cls, rows: Sequence[Sequence[Any]]) -> Timeline:
        return cls(tuple(Phase.load(row) for row in rows))


def _context_code(status: str) -> str:
    return {
        STOPPED: "BUILD_STOPPED",
        TIMED_OUT: "BUILD_TIMED_OUT",
        FAULT: "CLIENT_ERROR",
    }.get(status, "COMMAND_EXECUTION_ERROR")


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One test case of a report: CodeBuild's TestCase less the report."""

    name: str
    status: str  # SUCCEEDED, FAILED, ERROR, SKIPPED or UNKNOWN
    prefix: str = ""
    suite: str = ""
    duration_ns: int = 0
    message: str = ""
    file: str = ""


@dataclass(frozen=True, slots=True)
class ReportResult:
    """One report group's results from one build: the group's key in the buildspec, the file
    format, and its cases (or why there are none)."""

    group: str
    file_format: str
    cases: tuple[CaseResult, ...] = ()
    files: int = 0
    problem: str | None = None

    @property
    def status_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("SUCCEEDED", "FAILED", "ERROR", "SKIPPED", "UNKNOWN"), 0)
        for case in self.cases:
            counts[case.status] = counts.get(case.status, 0) + 1
        return counts


@dataclass(frozen=True, slots=True)
class BuildStart:
    """What is known of a build as it starts running."""

    build_id: str
    project: str
    number: int
    initiator: str
    source_version: str | None = None
    resolved_source_version: str | None = None
    source: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    timeout_minutes: int = 60
    log_url: str | None = None


class BuildRecorder(Protocol):
    """Where a running build is recorded, so that the CodeBuild API shows it."""

    def started(self, build: BuildStart) -> Timeline:
        """The build began running (a pipeline's build is first seen here); the timeline
        it goes on from."""
        ...

    def progressed(self, build_id: str, timeline: Timeline) -> None:
        """A phase began or ended."""
        ...

    def finished(
        self,
        build_id: str,
        status: str,
        timeline: Timeline,
        exported: Mapping[str, str],
        reports: Sequence[ReportResult],
        artifacts: Mapping[str, Any] | None = None,
    ) -> None:
        """The build ended with ``status``."""
        ...


@dataclass(frozen=True, slots=True)
class BuildPlan:
    """A build StartBuild (or RetryBuild) asked for: the project's definition with the
    request's overrides, and the source version to build."""

    build_id: str
    project: str
    definition: Mapping[str, Any]
    source_version: str | None = None
    initiator: str = ""

    @property
    def uuid(self) -> str:
        return self.build_id.rpartition(":")[2]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list (ListBuilds, ListReports…): its ids or ARNs, and the sort key and
    id of its last one when a page follows (None when it is the last)."""

    items: list[str]
    following: tuple[Any, str] | None
