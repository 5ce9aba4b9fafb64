"""Commands on executions: start, stop, retry a stage, open or close a transition, answer an
approval. Each is one transaction with the pipeline row locked, then wake-ups after commit."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from conveyor.domain.arn import Scope
from conveyor.domain.errors import (
    ActionNotFoundException,
    ApprovalAlreadyCompletedException,
    ConflictException,
    InvalidApprovalTokenException,
    PipelineExecutionOutdatedException,
    StageNotFoundException,
    UnableToRollbackStageException,
    ValidationException,
)
from conveyor.domain.events import PIPELINE, pipeline_detail
from conveyor.domain.execution import (
    ActionResult,
    ApprovalAnswered,
    ConditionKind,
    Event,
    OverrideCondition,
    Retry,
    RetryMode,
    Rollback,
    Start,
    Stop,
    TransitionChanged,
)
from conveyor.domain.plan import APPROVAL, Plan
from conveyor.domain.status import ActionStatus, ExecutionStatus
from conveyor.engine import lookup
from conveyor.engine.clock import Clock
from conveyor.engine.completion import key_of, report
from conveyor.engine.notify import Notifier
from conveyor.engine.rollbacks import MANUAL, record_rollback
from conveyor.engine.runner import Outcome, Runner
from conveyor.store import ExecutionRecord, PipelineRecord, Store, TransitionRecord, Tx

T = TypeVar("T")

# The revision types each source provider accepts in sourceRevisions.
REVISION_TYPES = {
    "Git": {"COMMIT_ID"},
    "CodeCommit": {"COMMIT_ID"},
    "CodeStarSourceConnection": {"COMMIT_ID"},
    "S3": {"S3_OBJECT_VERSION_ID", "S3_OBJECT_KEY"},
    "ECR": {"IMAGE_DIGEST"},
}


class ExecutionService:
    def __init__(
        self, store: Store, scope: Scope, clock: Clock, runner: Runner, notifier: Notifier
    ) -> None:
        self._store = store
        self._scope = scope
        self._clock = clock
        self._runner = runner
        self._notifier = notifier

    # -- plumbing -----------------------------------------------------------------------------

    def _pipeline(self, tx: Tx, name: str) -> PipelineRecord:
        return lookup.pipeline(tx, self._scope, name, lock=True)

    def _execution(self, tx: Tx, pipeline: PipelineRecord, execution_id: str) -> ExecutionRecord:
        return lookup.execution(tx, self._scope, pipeline, execution_id)

    def after_commit(self, outcome: Outcome) -> None:
        """Wake whoever must act now that the change is committed."""
        if outcome.cancelled_jobs:
            self._notifier.jobs_cancelled(outcome.cancelled_jobs)
        if outcome.jobs_queued > 0:
            self._notifier.jobs_queued(outcome.jobs_queued)
        self._notifier.changed()

    def write(self, work: Callable[[Tx], tuple[T, Outcome]]) -> T:
        with self._store.write() as tx:
            result, outcome = work(tx)
        self.after_commit(outcome)
        return result

    # -- commands -----------------------------------------------------------------------------

    def start(
        self,
        name: str,
        *,
        trigger_type: str,
        trigger_detail: str | None,
        variables: Sequence[Mapping[str, str]] = (),
        client_token: str | None = None,
        source_revisions: Sequence[Mapping[str, str]] = (),
    ) -> str:
        def work(tx: Tx) -> tuple[str, Outcome]:
            return self.start_locked(
                tx,
                self._pipeline(tx, name),
                trigger_type=trigger_type,
                trigger_detail=trigger_detail,
                variables=variables,
                client_token=client_token,
                source_revisions=source_revisions,
            )

        return self.write(work)

    def start_locked(
        self,
        tx: Tx,
        pipeline: PipelineRecord,
        *,
        trigger_type: str,
        trigger_detail: str | None,
        variables: Sequence[Mapping[str, str]] = (),
        client_token: str | None = None,
        source_revisions: Sequence[Mapping[str, str]] = (),
    ) -> tuple[str, Outcome]:
        """`start` inside a transaction that holds the pipeline's lock: for callers whose own
        writes must commit with the execution (run `write` with it)."""
        if client_token:
            existing = tx.executions.by_token(pipeline.id, client_token)
            if existing is not None:
                return existing.id, Outcome()
        plan = self._runner.plans.get(tx, pipeline.id, pipeline.version)
        now = self._clock.now()
        # An automatic start that cannot run is recorded as failed, saying why; a start
        # that someone asked for is refused instead.
        failure = None
        try:
            resolved = _resolved_variables(plan, variables)
        except ValidationException as exc:
            if trigger_type == "StartPipelineExecution":
                raise
            resolved, failure = [], exc.message
        record = ExecutionRecord(
            id=str(uuid.uuid4()),
            pipeline_id=pipeline.id,
            seq=tx.executions.next_seq(pipeline.id),
            version=pipeline.version,
            status=ExecutionStatus.IN_PROGRESS if failure is None else ExecutionStatus.FAILED,
            summary=failure,
            stage_index=0,
            waiting=True,
            arrived=now,
            stop_abandon=None,
            stop_reason=None,
            trigger_type=trigger_type,
            trigger_detail=trigger_detail,
            execution_mode=pipeline.execution_mode,
            execution_type="STANDARD",
            client_token=client_token,
            variables=resolved,
            source_revisions=_checked_revisions(plan, source_revisions),
            outputs={},
            artifacts={},
            started=now,
            updated=now,
        )
        tx.executions.insert(record)
        trigger = {"trigger-type": trigger_type, "trigger-detail": trigger_detail or ""}
        self._runner.event(
            tx,
            pipeline,
            PIPELINE,
            pipeline_detail(
                pipeline.name,
                record.id,
                "STARTED",
                pipeline.version,
                **{"execution-trigger": trigger},
            ),
        )
        if failure is not None:
            self._runner.event(
                tx,
                pipeline,
                PIPELINE,
                pipeline_detail(pipeline.name, record.id, "FAILED", pipeline.version),
            )
            return record.id, Outcome()
        return record.id, self._runner.advance(tx, pipeline, Start(record.id), focus=record.id)

    def stop(self, name: str, execution_id: str, *, abandon: bool, reason: str | None) -> str:
        def work(tx: Tx) -> tuple[str, Outcome]:
            pipeline = self._pipeline(tx, name)
            record = self._execution(tx, pipeline, execution_id)
            outcome = self._runner.advance(
                tx, pipeline, Stop(execution_id, abandon, reason), extra=[record]
            )
            return execution_id, outcome

        return self.write(work)

    def retry(self, name: str, stage: str, execution_id: str, mode: RetryMode) -> str:
        self._at_stage(name, stage, execution_id, Retry(execution_id, stage, mode))
        return execution_id

    def override_condition(
        self, name: str, stage: str, execution_id: str, kind: ConditionKind
    ) -> None:
        """OverrideStageCondition: the stage's conditions of ``kind``, being evaluated for
        the execution, count as met."""
        self._at_stage(name, stage, execution_id, OverrideCondition(execution_id, stage, kind))

    def _at_stage(self, name: str, stage: str, execution_id: str, event: Event) -> None:
        """Decide ``event``, which an API call makes about ``stage`` of an execution: the stage
        must exist, and the execution that entered it last is told to the decider."""

        def work(tx: Tx) -> tuple[None, Outcome]:
            pipeline = self._pipeline(tx, name)
            plan = self._runner.plans.get(tx, pipeline.id, pipeline.version)
            if plan.stage(stage) is None:
                raise StageNotFoundException(
                    f"Stage '{stage}' does not exist in pipeline '{name}'."
                )
            record = self._execution(tx, pipeline, execution_id)
            latest = tx.executions.latest_in_stage(pipeline.id, stage)
            outcome = self._runner.advance(
                tx,
                pipeline,
                event,
                extra=[record],
                latest_in_stage={stage: latest.execution_id} if latest else {},
            )
            return None, outcome

        self.write(work)

    def rollback(self, name: str, stage: str, target_id: str, caller: str) -> str:
        """RollbackStage: a new execution that runs ``stage`` again with what the target
        execution ran it with."""

        def work(tx: Tx) -> tuple[str, Outcome]:
            pipeline = self._pipeline(tx, name)
            plan = self._runner.plans.get(tx, pipeline.id, pipeline.version)
            stage_plan = plan.stage(stage)
            if stage_plan is None:
                raise StageNotFoundException(
                    f"Stage '{stage}' does not exist in pipeline '{name}'."
                )
            if pipeline.pipeline_type != "V2":
                raise UnableToRollbackStageException(
                    f"Pipeline '{name}' is of type {pipeline.pipeline_type}; only a V2 "
                    "pipeline can roll back a stage."
                )
            target = self._execution(tx, pipeline, target_id)
            if target.version != pipeline.version:
                raise PipelineExecutionOutdatedException(
                    f"Execution {target_id} ran version {target.version} of the pipeline, "
                    f"which is now at version {pipeline.version}; roll back to an execution "
                    "of the current version."
                )
            if target.execution_type == "ROLLBACK":
                raise UnableToRollbackStageException(
                    f"Execution {target_id} is itself a rollback; roll back to a standard "
                    "execution."
                )
            ran = tx.executions.stage(target_id, stage)
            if ran is None or ran.status != "Succeeded":
                status = "never entered it" if ran is None else f"is {ran.status} in it"
                raise UnableToRollbackStageException(
                    f"Execution {target_id} {status}; the target of a rollback of stage "
                    f"'{stage}' must have succeeded in it."
                )
            active = [r.id for r in tx.executions.active(pipeline.id)]
            if tx.stage_runs.rollback_in(pipeline.id, stage, active) is not None:
                raise ConflictException(f"Stage '{stage}' is already being rolled back.")
            record = record_rollback(
                tx, self._runner, pipeline, stage, stage_plan.index, target, MANUAL, caller
            )
            event = Rollback(record.id, stage, target.id)
            outcome = self._runner.advance(tx, pipeline, event, extra=[record], focus=record.id)
            return record.id, outcome

        return self.write(work)

    def set_transition(
        self,
        name: str,
        stage: str,
        direction: str,
        *,
        enabled: bool,
        reason: str | None,
        caller: str,
    ) -> None:
        def work(tx: Tx) -> tuple[None, Outcome]:
            pipeline = self._pipeline(tx, name)
            plan = self._runner.plans.get(tx, pipeline.id, pipeline.version)
            if plan.stage(stage) is None:
                raise StageNotFoundException(
                    f"Stage '{stage}' does not exist in pipeline '{name}'."
                )
            tx.transitions.put(
                TransitionRecord(
                    pipeline.id, stage, direction, enabled, reason, caller, self._clock.now()
                )
            )
            # The row read says nothing of the transition just written.
            event = TransitionChanged(stage, direction, enabled)
            return None, self._runner.advance(tx, replace(pipeline, any_disabled=None), event)

        self.write(work)

    def approve(
        self,
        name: str,
        stage: str,
        action: str,
        token: str,
        *,
        approved: bool,
        summary: str,
        caller: str,
    ) -> float:
        def work(tx: Tx) -> tuple[float, Outcome]:
            pipeline = self._pipeline(tx, name)
            plan = self._runner.plans.get(tx, pipeline.id, pipeline.version)
            stage_plan = plan.stage(stage)
            if stage_plan is None:
                raise StageNotFoundException(
                    f"Stage '{stage}' does not exist in pipeline '{name}'."
                )
            declared = stage_plan.actions.get(action)
            if declared is None or declared.type_id != APPROVAL:
                raise ActionNotFoundException(
                    f"Stage '{stage}' has no manual approval action named '{action}'."
                )
            attempt = tx.actions.by_token(pipeline.id, stage, action, token)
            if attempt is None:
                raise InvalidApprovalTokenException(
                    f"The token '{token}' is not the token of an approval request of action "
                    f"'{action}'."
                )
            if attempt.status != ActionStatus.IN_PROGRESS:
                raise ApprovalAlreadyCompletedException(
                    f"The approval of action '{action}' is already complete ({attempt.status})."
                )
            now = self._clock.now()
            status = "Approved" if approved else "Rejected"
            result = ActionResult(
                succeeded=approved,
                summary=summary or status,
                external_id=token,
                error_code=None if approved else "JobFailed",
                error_message=None
                if approved
                else f"Rejected: {summary}"
                if summary
                else "Rejected",
                updated_by=caller,
            )
            event = ApprovalAnswered(key_of(attempt), result)
            return now, report(tx, self._runner, pipeline, attempt, event)

        return self.write(work)

    def advance(self, name: str) -> None:
        """Let a pipeline's executions move on (after an update, or when nothing else will)."""

        def work(tx: Tx) -> tuple[None, Outcome]:
            pipeline = tx.pipelines.get(name, lock=True)
            if pipeline is None:
                return None, Outcome()
            return None, self._runner.advance(tx, pipeline)

        self.write(work)


def _resolved_variables(plan: Plan, given: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    declared = {v.name: v for v in plan.pipeline.variables}
    values: dict[str, str] = {}
    for variable in given:
        if variable["name"] not in declared:
            raise ValidationException(
                f"Variable '{variable['name']}' is not declared in the pipeline."
            )
        if variable["name"] in values:
            raise ValidationException(f"Variable '{variable['name']}' is given more than once.")
        values[variable["name"]] = variable["value"]
    resolved = []
    for name, declaration in declared.items():
        value = values.get(name, declaration.default_value)
        if value is None:
            raise ValidationException(
                f"Variable '{name}' has no default value; give it a value to start the pipeline."
            )
        resolved.append({"name": name, "resolvedValue": value})
    return resolved


def _checked_revisions(plan: Plan, given: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    sources = {a.name: a for a in plan.stages[0].stage.actions} if plan.stages else {}
    seen = set()
    for override in given:
        action = sources.get(override["actionName"])
        if action is None or not action.is_source:
            raise ValidationException(
                f"sourceRevisions names '{override['actionName']}', which is not a source action "
                "of the pipeline."
            )
        allowed = REVISION_TYPES.get(action.type_id.provider, set())
        if override["revisionType"] not in allowed:
            raise ValidationException(
                f"Source action '{action.name}' ({action.type_id.provider}) does not take a "
                f"revision of type {override['revisionType']}."
            )
        if action.name in seen:
            raise ValidationException(
                f"sourceRevisions names source action '{action.name}' more than once."
            )
        seen.add(action.name)
    return [dict(o) for o in given]
