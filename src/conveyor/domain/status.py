"""Every status an execution, stage, action or job can have, and the moves between them.

Each enum's values are CodePipeline's strings. Each has one table of legal moves: the decider
only asks for listed moves, and every SQL update that changes a status is guarded by the
status it expects, so a move that is not in the table, or that lost a race, changes nothing.
``docs/state-machines.md`` draws these tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TypeVar


class ExecutionStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    SUCCEEDED = "Succeeded"
    SUPERSEDED = "Superseded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


class StageStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    SKIPPED = "Skipped"


class ActionStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ABANDONED = "Abandoned"


class JobStatus(StrEnum):
    CREATED = "Created"
    QUEUED = "Queued"
    DISPATCHED = "Dispatched"
    IN_PROGRESS = "InProgress"
    TIMED_OUT = "TimedOut"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ConditionStatus(StrEnum):
    """One stage condition's evaluation (a condition is met when all its rules pass)."""

    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    ERRORED = "Errored"
    SUCCEEDED = "Succeeded"
    CANCELLED = "Cancelled"
    ABANDONED = "Abandoned"
    OVERRIDDEN = "Overridden"


class RuleStatus(StrEnum):
    """One rule execution of a condition."""

    IN_PROGRESS = "InProgress"
    ABANDONED = "Abandoned"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


E, S, A, J = ExecutionStatus, StageStatus, ActionStatus, JobStatus
C, R = ConditionStatus, RuleStatus

EXECUTION_MOVES: Mapping[ExecutionStatus, frozenset[ExecutionStatus]] = {
    # Stopped straight from InProgress: a stop of an execution with nothing running.
    E.IN_PROGRESS: frozenset(
        {E.STOPPING, E.STOPPED, E.SUCCEEDED, E.SUPERSEDED, E.FAILED, E.CANCELLED}
    ),
    E.STOPPING: frozenset({E.STOPPED}),
    # A retried stage puts a failed or stopped execution back in progress, same id.
    E.FAILED: frozenset({E.IN_PROGRESS}),
    E.STOPPED: frozenset({E.IN_PROGRESS}),
    E.SUCCEEDED: frozenset(),
    E.SUPERSEDED: frozenset(),
    E.CANCELLED: frozenset(),
}

STAGE_MOVES: Mapping[StageStatus, frozenset[StageStatus]] = {
    # Skipped: a beforeEntry condition with result SKIP was not met.
    S.IN_PROGRESS: frozenset(
        {S.STOPPING, S.STOPPED, S.SUCCEEDED, S.FAILED, S.CANCELLED, S.SKIPPED}
    ),
    S.STOPPING: frozenset({S.STOPPED}),
    S.FAILED: frozenset({S.IN_PROGRESS}),
    S.STOPPED: frozenset({S.IN_PROGRESS}),
    S.SUCCEEDED: frozenset(),
    S.CANCELLED: frozenset(),
    S.SKIPPED: frozenset(),
}

ACTION_MOVES: Mapping[ActionStatus, frozenset[ActionStatus]] = {
    A.IN_PROGRESS: frozenset({A.SUCCEEDED, A.FAILED, A.ABANDONED}),
    A.SUCCEEDED: frozenset(),
    A.FAILED: frozenset(),
    A.ABANDONED: frozenset(),
}

JOB_MOVES: Mapping[JobStatus, frozenset[JobStatus]] = {
    J.CREATED: frozenset({J.QUEUED, J.FAILED}),
    J.QUEUED: frozenset({J.DISPATCHED, J.FAILED, J.TIMED_OUT}),
    J.DISPATCHED: frozenset({J.IN_PROGRESS, J.SUCCEEDED, J.FAILED, J.TIMED_OUT}),
    J.IN_PROGRESS: frozenset({J.SUCCEEDED, J.FAILED, J.TIMED_OUT}),
    J.SUCCEEDED: frozenset(),
    J.FAILED: frozenset(),
    J.TIMED_OUT: frozenset(),
}

CONDITION_MOVES: Mapping[ConditionStatus, frozenset[ConditionStatus]] = {
    C.IN_PROGRESS: frozenset(
        {C.FAILED, C.ERRORED, C.SUCCEEDED, C.CANCELLED, C.ABANDONED, C.OVERRIDDEN}
    ),
    C.FAILED: frozenset(),
    C.ERRORED: frozenset(),
    C.SUCCEEDED: frozenset(),
    C.CANCELLED: frozenset(),
    C.ABANDONED: frozenset(),
    C.OVERRIDDEN: frozenset(),
}

RULE_MOVES: Mapping[RuleStatus, frozenset[RuleStatus]] = {
    R.IN_PROGRESS: frozenset({R.SUCCEEDED, R.FAILED, R.ABANDONED}),
    R.SUCCEEDED: frozenset(),
    R.FAILED: frozenset(),
    R.ABANDONED: frozenset(),
}

# A condition that ended this way lets the stage go on as if it were met.
CONDITION_MET = frozenset({C.SUCCEEDED, C.OVERRIDDEN})

ACTIVE_EXECUTION = frozenset({E.IN_PROGRESS, E.STOPPING})
ACTIVE_STAGE = frozenset({S.IN_PROGRESS, S.STOPPING})
ACTIVE_JOB = frozenset({J.QUEUED, J.DISPATCHED, J.IN_PROGRESS})
# The actions a retry of failed actions runs again.
FAILED_ACTIONS = frozenset({A.FAILED, A.ABANDONED})


Status = TypeVar("Status", bound=StrEnum)


def can_move(table: Mapping[Status, frozenset[Status]], old: Status, new: Status) -> bool:
    return new in table[old]


def conditions_status(statuses: Iterable[str | None]) -> str | None:
    """The status of a stage's conditions of one kind, from each condition's latest status
    (None: not evaluated yet), as GetPipelineState reports it: in progress while one is or
    one is still to come, failed once one failed, overridden once one was; None when none
    was evaluated."""
    found = list(statuses)
    seen = [s for s in found if s is not None]
    if not seen:
        return None
    for status in ("InProgress", "Failed", "Errored", "Abandoned", "Cancelled"):
        if status in seen:
            return status
    if "Overridden" in seen:
        return "Overridden"
    return "InProgress" if len(seen) < len(found) else "Succeeded"
