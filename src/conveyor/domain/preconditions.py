"""What the decider checks before it applies a command (stop, retry, rollback): whether the
execution and stage named may take it now, each refusal the CodePipeline error that says why.

These checks read the live state only; `conveyor.domain.decider` applies a command that
passes them. Kept apart, each precondition reads as the API reference states it:

- **stop**: the execution is in progress (``PipelineExecutionNotStoppableException``); a stop
  may follow another only to abandon the running actions
  (``DuplicatedStopRequestException``);
- **retry**: the stage exists; the pipeline was not updated since the execution ran; the
  execution stopped or failed in that stage; it is the stage's latest execution; no other
  execution is in the stage (outside PARALLEL mode); retrying failed actions needs one;
- **rollback**: the stage exists, is not the source stage, and the pipeline is not in
  PARALLEL mode.
"""

from __future__ import annotations

from conveyor.domain.deciderstate import LiveRun, Work
from conveyor.domain.errors import (
    ConflictException,
    DuplicatedStopRequestException,
    NotLatestPipelineExecutionException,
    PipelineExecutionNotStoppableException,
    StageNotFoundException,
    StageNotRetryableException,
    UnableToRollbackStageException,
)
from conveyor.domain.execution import Retry, RetryMode, Rollback, Stop
from conveyor.domain.pipeline import ExecutionMode
from conveyor.domain.status import FAILED_ACTIONS, ExecutionStatus, StageStatus

__all__ = ["retryable", "rollbackable", "stoppable"]

E, S = ExecutionStatus, StageStatus


def stoppable(work: Work, command: Stop) -> LiveRun:
    """The execution ``command`` stops, if it may be stopped now."""
    run = work.find(command.run_id)
    if not run.active:
        raise PipelineExecutionNotStoppableException(
            f"Execution {run.id} is {run.status}; only an execution in progress can be stopped."
        )
    already_abandoning = run.stop is not None and run.stop.abandon
    if run.status == E.STOPPING and (not command.abandon or already_abandoning):
        raise DuplicatedStopRequestException(
            f"Execution {run.id} is already stopping; only a stop that abandons its "
            "running actions can follow."
        )
    return run


def retryable(work: Work, command: Retry) -> LiveRun:
    """The execution whose stage ``command`` retries, if the stage may be retried now."""
    run = work.find(command.run_id)
    index = _stage_index(work, run, command.stage)
    if run.version != work.snapshot.version:
        raise StageNotRetryableException(
            f"The pipeline was updated after execution {run.id} ran; its stage "
            f"'{command.stage}' can no longer be retried."
        )
    stage = run.stage
    if run.stage_index != index or run.waiting or stage is None:
        raise StageNotRetryableException(
            f"Execution {run.id} did not stop or fail in stage '{command.stage}'."
        )
    if stage.status not in (S.FAILED, S.STOPPED) or run.status not in (E.FAILED, E.STOPPED):
        raise StageNotRetryableException(
            f"Stage '{command.stage}' of execution {run.id} is {stage.status}; only a failed "
            "or stopped stage can be retried."
        )
    if work.snapshot.latest_in_stage.get(command.stage, run.id) != run.id:
        raise NotLatestPipelineExecutionException(
            f"Execution {run.id} is not the latest execution in stage '{command.stage}'."
        )
    busy = any(
        r.active and not r.waiting and r.stage_index == index for r in work.runs if r is not run
    )
    if busy and work.snapshot.mode != ExecutionMode.PARALLEL:
        raise ConflictException(f"Stage '{command.stage}' is busy with another execution.")
    failed = [a for a in stage.actions.values() if a.status in FAILED_ACTIONS]
    if command.mode == RetryMode.FAILED_ACTIONS and not failed:
        raise StageNotRetryableException(
            f"Stage '{command.stage}' of execution {run.id} has no failed actions."
        )
    return run


def rollbackable(work: Work, event: Rollback) -> LiveRun:
    """The rollback execution of ``event``, if its stage may be rolled back."""
    run = work.find(event.run_id)
    index = _stage_index(work, run, event.stage)
    if work.snapshot.mode == ExecutionMode.PARALLEL:
        raise UnableToRollbackStageException(
            "A pipeline in PARALLEL execution mode cannot roll back a stage."
        )
    if index == 0:
        raise UnableToRollbackStageException(
            f"Stage '{event.stage}' is the source stage, which cannot be rolled back."
        )
    if not run.rollback or run.stage_index != index or not run.waiting:
        raise AssertionError("a rollback execution waits in front of its stage")
    return run


def _stage_index(work: Work, run: LiveRun, name: str) -> int:
    index = work.snapshot.plans[run.version].index(name)
    if index is None:
        raise StageNotFoundException(f"Stage '{name}' does not exist.")
    return index
