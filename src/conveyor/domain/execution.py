"""The live state of a pipeline's executions, as the decider sees it, and what it decides.

The engine loads a `Snapshot` (the executions still in progress, plus the one a command is
about), and the decider answers with `Effect`s to apply in order. Everything here is a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from conveyor.domain.pipeline import ExecutionMode
from conveyor.domain.plan import Plan
from conveyor.domain.status import (
    ActionStatus,
    ConditionStatus,
    ExecutionStatus,
    JobStatus,
    RuleStatus,
    StageStatus,
)


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


class ConditionKind(StrEnum):
    """When a stage's conditions are evaluated (CodePipeline's ConditionType, plus onFailure)."""

    BEFORE_ENTRY = "BEFORE_ENTRY"
    ON_SUCCESS = "ON_SUCCESS"
    ON_FAILURE = "ON_FAILURE"


@dataclass(frozen=True, slots=True)
class RuleRun:
    """The rule of a condition being evaluated now (the rules before it passed)."""

    id: str
    rule: str
    status: RuleStatus


@dataclass(frozen=True, slots=True)
class ConditionRun:
    """The evaluation of condition ``index`` of the stage's ``kind`` conditions."""

    kind: ConditionKind
    index: int
    status: ConditionStatus
    # The stage attempt it belongs to: onSuccess and onFailure are evaluated again after a
    # retry, beforeEntry only once per stage execution.
    attempt: int
    rule: RuleRun | None = None


@dataclass(frozen=True, slots=True)
class StageRun:
    stage: str
    status: StageStatus
    # Each retry is a new attempt; actions count from ``base_attempt`` on (a retry of all
    # actions starts afresh, a retry of failed actions keeps what succeeded).
    attempt: int
    base_attempt: int
    actions: Mapping[str, ActionRun] = field(default_factory=dict)
    # The current attempt is the automatic retry of a failure (onFailure RETRY): a failure
    # of this attempt is not retried again.
    auto_retried: bool = False
    # The latest evaluation of each of the stage's conditions, in the order they began.
    conditions: tuple[ConditionRun, ...] = ()


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
    # A rollback execution (executionType ROLLBACK): it runs one stage, then ends.
    rollback: bool = False


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
    # For stages that roll back on failure: the latest standard execution of the current
    # version that succeeded in the stage, the target of an automatic rollback.
    rollback_targets: Mapping[str, str] = field(default_factory=dict)


# Events: everything that can happen to a pipeline's executions. Commands (Stop, Retry) are
# what people ask for, and their preconditions are checked by the decider; the others report
# what happened (a job's result, a lease or deadline running out, an approval answered).


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


@dataclass(frozen=True, slots=True)
class Start:
    """A new execution was recorded, waiting in front of its first stage."""

    run_id: str


@dataclass(frozen=True, slots=True)
class Rollback:
    """A rollback execution was recorded (RollbackStage), waiting in front of ``stage``,
    with the target execution's revisions, variables and artifacts."""

    run_id: str
    stage: str
    target_id: str


@dataclass(frozen=True, slots=True)
class TransitionChanged:
    """A stage's way in or out was enabled or disabled (the snapshot's ``closed`` says which
    stages are closed now)."""

    stage: str
    direction: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class ActionKey:
    """One attempt of one action: what a result is about."""

    run_id: str
    stage: str
    action: str
    action_id: str


@dataclass(frozen=True, slots=True)
class JobRef:
    """A job of an attempt, with the status it had when the event was read (under the
    pipeline's lock)."""

    id: str
    status: JobStatus


@dataclass(frozen=True, slots=True)
class ActionResult:
    """How an attempt ended, as its reporter tells it."""

    succeeded: bool
    summary: str | None = None
    external_id: str | None = None
    external_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    output_variables: Mapping[str, str] = field(default_factory=dict)
    # A source revision: revisionId, revisionChangeIdentifier, created, revisionSummary, ...
    revision: Mapping[str, Any] | None = None
    updated_by: str | None = None
    percent_complete: int | None = None

    @classmethod
    def failure(cls, message: str, code: str = "JobFailed") -> ActionResult:
        return cls(succeeded=False, error_code=code, error_message=message)


@dataclass(frozen=True, slots=True)
class JobReported:
    """A job worker reported its job's result (the job itself is already settled by the job
    protocol); ``others``: any other job of the attempt still active, to close."""

    key: ActionKey
    result: ActionResult
    others: tuple[JobRef, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleKey:
    """One rule execution of one condition: what a rule's result is about."""

    run_id: str
    stage: str
    kind: ConditionKind
    index: int
    rule: str
    rule_execution_id: str


@dataclass(frozen=True, slots=True)
class RuleReported:
    """A rule's job ended (its worker reported, it could not start, or its lease or time ran
    out, reported as a failure)."""

    key: RuleKey
    result: ActionResult


@dataclass(frozen=True, slots=True)
class OverrideCondition:
    """OverrideStageCondition: the stage's ``kind`` conditions, being evaluated for this
    execution, count as met (``Overridden``)."""

    run_id: str
    stage: str
    kind: ConditionKind


@dataclass(frozen=True, slots=True)
class LeaseExpired:
    """The worker holding ``job`` stopped renewing its lease (``crashed``: it belonged to an
    earlier run of this node, which died; the job fails rather than times out). ``key`` is
    None when the job's attempt is gone: the job still ends."""

    key: ActionKey | None
    job: JobRef
    message: str
    crashed: bool = False


@dataclass(frozen=True, slots=True)
class DeadlinePassed:
    """The attempt ran past its time-out; its active jobs time out with it."""

    key: ActionKey
    jobs: tuple[JobRef, ...]
    message: str


@dataclass(frozen=True, slots=True)
class ApprovalAnswered:
    key: ActionKey
    result: ActionResult


@dataclass(frozen=True, slots=True)
class CouldNotStart:
    """Attempts that were written but could not run (a variable did not resolve, an input
    artifact is missing, no provider): each fails with its message."""

    failures: tuple[tuple[ActionKey, str], ...]
    # Rules that could not start, likewise.
    rules: tuple[tuple[RuleKey, str], ...] = ()


Command = Stop | Retry
Event = (
    Stop
    | Retry
    | Start
    | Rollback
    | TransitionChanged
    | JobReported
    | LeaseExpired
    | DeadlinePassed
    | ApprovalAnswered
    | CouldNotStart
    | RuleReported
    | OverrideCondition
)


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
    # The retry is the stage's automatic one (onFailure RETRY), not someone's request.
    automatic: bool = False


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


@dataclass(frozen=True, slots=True)
class ActionEnded:
    """An attempt's result: its status moves from ``old`` to ``new``."""

    key: ActionKey
    old: ActionStatus
    new: ActionStatus
    result: ActionResult


@dataclass(frozen=True, slots=True)
class RollbackStarted:
    """A stage that rolls back on failure failed: a rollback execution of ``stage`` to
    ``target_id`` starts (trigger AutomatedRollback)."""

    failed_run_id: str
    stage: str
    target_id: str


@dataclass(frozen=True, slots=True)
class ConditionStarted:
    run_id: str
    stage: str
    kind: ConditionKind
    index: int
    attempt: int


@dataclass(frozen=True, slots=True)
class ConditionEnded:
    run_id: str
    stage: str
    kind: ConditionKind
    index: int
    attempt: int
    old: ConditionStatus
    new: ConditionStatus
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class RuleStarted:
    """Rule ``rule`` of the condition starts: a rule execution and its job."""

    run_id: str
    stage: str
    kind: ConditionKind
    index: int
    rule: str
    attempt: int


@dataclass(frozen=True, slots=True)
class RuleEnded:
    key: RuleKey
    old: RuleStatus
    new: RuleStatus
    result: ActionResult


@dataclass(frozen=True, slots=True)
class RuleAbandoned:
    """The execution was stopped while the rule ran: the rule and its job are abandoned."""

    key: RuleKey


@dataclass(frozen=True, slots=True)
class JobStatusChanged:
    job_id: str
    old: JobStatus
    new: JobStatus


Effect = (
    RunMoved
    | RunStatusChanged
    | StopRecorded
    | StageEntered
    | StageStatusChanged
    | ActionStarted
    | ActionAbandoned
    | ActionEnded
    | JobStatusChanged
    | RollbackStarted
    | ConditionStarted
    | ConditionEnded
    | RuleStarted
    | RuleEnded
    | RuleAbandoned
)
