"""The live state of a pipeline's executions, as the decider sees it, and what it decides.

The engine loads a `Snapshot` (the executions still in progress, plus the one a command is
about), and the decider answers with `Effect`s to apply in order. Everything here is a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from conveyor.domain.pipeline import ExecutionMode
from conveyor.domain.plan import Plan
from conveyor.domain.status import ActionStatus, ExecutionStatus, StageStatus


class RetryMode(StrEnum):
    FAILED_ACTIONS = "FAILED_ACTIONS"
    ALL_ACTIONS = "ALL_ACTIONS"


@dataclass(frozen=True, slots=True)
class ActionRun:
    """The latest attempt of one action in the current stage execution."""

    id: str
    action: str
    status: ActionStatus
    attempt: int
    message: str | None = None


@dataclass(frozen=True, slots=True)
class StageRun:
    stage: str
    status: StageStatus
    # Each retry is a new attempt; actions count from ``base_attempt`` on (a retry of all
    # actions starts afresh, a retry of failed actions keeps what succeeded).
    attempt: int
    base_attempt: int
    actions: Mapping[str, ActionRun] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StopRequest:
    abandon: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Run:
    """One pipeline execution: where it is and what it is doing there."""

    id: str
    # Start order within the pipeline.
    seq: int
    version: int
    status: ExecutionStatus
    stage_index: int
    # Waiting in front of ``stage_index`` (an inbound execution) rather than inside it.
    waiting: bool
    # When it reached its current place, for first-in first-out entry.
    arrived: float
    stop: StopRequest | None = None
    stage: StageRun | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    mode: ExecutionMode
    plans: Mapping[int, Plan]
    # Names of stages whose way in is disabled (inbound, or the previous stage's outbound).
    closed: frozenset[str]
    runs: tuple[Run, ...]
    # The execution that entered each stage last, for "is this the latest?" questions.
    latest_in_stage: Mapping[str, str] = field(default_factory=dict)


# Commands: what people ask for. Their preconditions are checked by the decider.


@dataclass(frozen=True, slots=True)
class Stop:
    run_id: str
    abandon: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    run_id: str
    stage: str
    mode: RetryMode


Command = Stop | Retry


# Effects: what the engine writes, in order.


@dataclass(frozen=True, slots=True)
class RunMoved:
    run_id: str
    stage_index: int
    waiting: bool
    arrived: float


@dataclass(frozen=True, slots=True)
class RunStatusChanged:
    run_id: str
    old: ExecutionStatus
    new: ExecutionStatus
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class StopRecorded:
    run_id: str
    abandon: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class StageEntered:
    run_id: str
    stage: str
    attempt: int
    base_attempt: int
    # Set for a retry: the stage execution exists already and goes back in progress.
    retry_of: StageStatus | None = None


@dataclass(frozen=True, slots=True)
class StageStatusChanged:
    run_id: str
    stage: str
    old: StageStatus
    new: StageStatus


@dataclass(frozen=True, slots=True)
class ActionStarted:
    run_id: str
    stage: str
    action: str
    attempt: int


@dataclass(frozen=True, slots=True)
class ActionAbandoned:
    run_id: str
    stage: str
    action: str


Effect = (
    RunMoved
    | RunStatusChanged
    | StopRecorded
    | StageEntered
    | StageStatusChanged
    | ActionStarted
    | ActionAbandoned
)
