"""Writing what the decider decided: one small writer per effect type.

Each writer makes the guarded write its effect stands for (``UPDATE … WHERE status =
:expected``; under the pipeline's lock a failed guard is a bug, so it raises and the whole
transaction rolls back) and appends the EventBridge event that goes with it. `WRITERS` maps
each effect type to its writer; `Runner.apply` looks effects up there, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from conveyor.domain.events import (
    ACTION,
    ACTION_STATES,
    PIPELINE,
    PIPELINE_STATES,
    STAGE,
    STAGE_STATES,
    action_detail,
    pipeline_detail,
    stage_detail,
)
from conveyor.domain.execution import (
    ActionAbandoned,
    ActionEnded,
    ActionKey,
    ActionResult,
    ActionStarted,
    ConditionEnded,
    ConditionStarted,
    Effect,
    JobStatusChanged,
    RollbackStarted,
    RuleAbandoned,
    RuleEnded,
    RuleKey,
    RuleStarted,
    RunMoved,
    RunStatusChanged,
    Snapshot,
    StageEntered,
    StageStatusChanged,
    StopRecorded,
)
from conveyor.domain.status import (
    ACTION_MOVES,
    CONDITION_MOVES,
    JOB_MOVES,
    RULE_MOVES,
    ActionStatus,
    ConditionStatus,
    ExecutionStatus,
    JobStatus,
    RuleStatus,
    can_move,
)
from conveyor.engine.rollbacks import AUTOMATED, record_rollback
from conveyor.engine.rulestart import prepare_rule
from conveyor.engine.starting import ActionStart, prepare_action
from conveyor.store import ActionRecord, ConditionRecord, ExecutionRecord, PipelineRecord, Tx

if TYPE_CHECKING:
    from conveyor.engine.runner import Runner


@dataclass(slots=True)
class Outcome:
    """What the caller must do after commit: wake workers, cancel jobs."""

    jobs_queued: int = 0
    cancelled_jobs: list[str] = field(default_factory=list)

    def merge(self, other: Outcome) -> None:
        self.jobs_queued += other.jobs_queued
        self.cancelled_jobs += other.cancelled_jobs


@dataclass(slots=True)
class Writing:
    """What the writers of one round share."""

    runner: Runner
    tx: Tx
    pipeline: PipelineRecord
    snapshot: Snapshot
    # The executions the snapshot was loaded from; kept current as outputs are published,
    # since actions started later in the round resolve their variables from them.
    records: dict[str, ExecutionRecord]
    # Attempts the caller has read already (the one a result is about), by id.
    attempts: dict[str, ActionRecord]
    outcome: Outcome
    now: float
    # When the event arrived, before the snapshot was read: the time a result is recorded at
    # (what follows from it is written at ``now``).
    received: float
    # Attempts written this round that could not run: the next round fails them.
    failures: list[tuple[ActionKey, str]] = field(default_factory=list)
    # Rules written this round that could not run: the next round fails them.
    rule_failures: list[tuple[RuleKey, str]] = field(default_factory=list)
    # Executions recorded this round (automatic rollbacks): the next round lets them in.
    recorded: list[str] = field(default_factory=list)

    def version(self, run_id: str) -> int:
        for run in self.snapshot.runs:
            if run.id == run_id:
                return run.version
        return self.pipeline.version

    def event(self, kind: str, detail: dict[str, Any]) -> None:
        self.runner.event(self.tx, self.pipeline, kind, detail)

    def record(self, run_id: str) -> ExecutionRecord:
        found = self.records.get(run_id) or self.tx.executions.get(run_id)
        assert found is not None
        self.records[run_id] = found
        return found


def require(done: bool) -> None:
    if not done:  # pragma: no cover - the pipeline lock makes a lost race impossible
        raise RuntimeError("a guarded write found the row in an unexpected state")


def require_move(table: Any, old: Any, new: Any) -> None:
    """A write outside the status tables is a bug, never a user error."""
    if not can_move(table, old, new):  # pragma: no cover - the decider checked it first
        raise AssertionError(f"illegal status move {old} -> {new}")


def run_moved(w: Writing, effect: RunMoved) -> None:
    w.tx.executions.require_update(
        effect.run_id,
        None,
        stage_index=effect.stage_index,
        waiting=effect.waiting,
        arrived=effect.arrived,
        updated=w.now,
    )


def run_status_changed(w: Writing, effect: RunStatusChanged) -> None:
    w.tx.executions.require_update(
        effect.run_id, effect.old, status=effect.new, summary=effect.summary, updated=w.now
    )
    record = w.records.get(effect.run_id)
    extra: dict[str, Any] = {}
    if effect.new == ExecutionStatus.STOPPING and record is not None:
        extra["stop-execution-comments"] = record.stop_reason
    state = PIPELINE_STATES[effect.new]
    if effect.old in (ExecutionStatus.FAILED, ExecutionStatus.STOPPED):
        state = "RESUMED"
    w.event(
        PIPELINE,
        pipeline_detail(w.pipeline.name, effect.run_id, state, w.version(effect.run_id), **extra),
    )


def stop_recorded(w: Writing, effect: StopRecorded) -> None:
    w.tx.executions.require_update(
        effect.run_id,
        None,
        stop_abandon=effect.abandon,
        stop_reason=effect.reason,
        updated=w.now,
    )
    if effect.run_id in w.records:
        w.records[effect.run_id] = replace(
            w.records[effect.run_id], stop_abandon=effect.abandon, stop_reason=effect.reason
        )


def stage_entered(w: Writing, effect: StageEntered) -> None:
    if effect.retry_of is None:
        w.tx.executions.enter_stage(effect.run_id, w.pipeline.id, effect.stage, w.now)
        state = "STARTED"
    else:
        require(
            w.tx.executions.retry_stage(
                effect.run_id,
                effect.stage,
                effect.retry_of,
                effect.attempt,
                effect.base_attempt,
                w.now,
                manual=not effect.automatic,
            )
        )
        w.tx.stage_runs.retried(
            effect.run_id, effect.stage, effect.attempt, automatic=effect.automatic
        )
        state = "RESUMED"
    w.event(
        STAGE,
        stage_detail(w.pipeline.name, effect.run_id, effect.stage, state, w.version(effect.run_id)),
    )


def stage_status_changed(w: Writing, effect: StageStatusChanged) -> None:
    w.tx.executions.require_stage_status(effect.run_id, effect.stage, effect.old, effect.new, w.now)
    if effect.new not in STAGE_STATES:
        # Skipped (an unmet beforeEntry condition with SKIP): CodePipeline's stage events
        # have no state for it; the condition's own event says what happened.
        return
    w.event(
        STAGE,
        stage_detail(
            w.pipeline.name,
            effect.run_id,
            effect.stage,
            STAGE_STATES[effect.new],
            w.version(effect.run_id),
        ),
    )


def action_started(w: Writing, effect: ActionStarted) -> None:
    # The round's execution row has all that starting needs (variables, outputs,
    # artifacts): moves and status changes do not touch those, and publishing keeps it
    # current.
    record = w.record(effect.run_id)
    plan = w.snapshot.plans[record.version]
    runner = w.runner
    start = prepare_action(
        w.tx,
        runner.scope,
        w.pipeline,
        plan,
        record,
        effect,
        w.now,
        runner.runnable,
        runner.log_base,
    )
    if start.record is not None:
        w.attempts[start.action_execution_id] = start.record
    if start.failure is not None:
        key = ActionKey(effect.run_id, effect.stage, effect.action, start.action_execution_id)
        w.failures.append((key, start.failure))
    else:
        w.outcome.jobs_queued += start.job is not None
    _start_event(w, start, plan.version)


def _start_event(w: Writing, start: ActionStart, version: int) -> None:
    plan = w.snapshot.plans[version]
    stage = plan.stage(start.stage)
    assert stage is not None
    w.event(
        ACTION,
        action_detail(
            w.pipeline.name,
            start.run_id,
            start.stage,
            start.action,
            ACTION_STATES[ActionStatus.IN_PROGRESS],
            plan.version,
            w.runner.scope.region,
            stage.actions[start.action].type_id,
            **{"input-artifacts": start.input_artifacts or None},
        ),
    )


def action_ended(w: Writing, effect: ActionEnded) -> None:
    tx, result = w.tx, effect.result
    action = w.attempts.get(effect.key.action_id) or tx.actions.get(effect.key.action_id)
    assert action is not None
    tx.actions.require_update(
        action.id,
        effect.old,
        status=effect.new,
        updated=w.received,
        summary=result.summary,
        external_id=result.external_id or action.external_id,
        external_url=result.external_url or action.external_url,
        error_code=result.error_code,
        error_message=result.error_message,
        output_variables=dict(result.output_variables) if result.succeeded else None,
        revision=dict(result.revision) if result.revision else None,
        updated_by=result.updated_by,
        percent_complete=result.percent_complete,
    )
    if result.succeeded:
        _publish(w, action, result)
    plan = w.runner.plans.get(tx, w.pipeline.id, action.pipeline_version)
    stage = plan.stage(action.stage)
    assert stage is not None
    detail = {
        "external-execution-id": result.external_id,
        "external-execution-summary": result.summary,
        "external-execution-url": result.external_url,
        "error-code": None if result.succeeded else result.error_code,
    }
    w.event(
        ACTION,
        action_detail(
            w.pipeline.name,
            action.execution_id,
            action.stage,
            action.action,
            ACTION_STATES[effect.new],
            action.pipeline_version,
            w.runner.scope.region,
            stage.actions[action.action].type_id,
            **{
                "output-artifacts": action.output_artifacts or None,
                "execution-result": {k: v for k, v in detail.items() if v} or None,
            },
        ),
    )


def _publish(w: Writing, action: ActionRecord, result: ActionResult) -> None:
    """A success's output variables (under its namespace) and output artifacts (with the
    source revision, for a source) become the execution's."""
    namespace = action.input.get("namespace")
    if not namespace and not action.output_artifacts:
        # Nothing to publish: the execution only learns that it changed.
        w.tx.executions.require_update(action.execution_id, None, updated=w.now)
        return
    execution = w.record(action.execution_id)
    outputs = dict(execution.outputs)
    if namespace:
        outputs[namespace] = dict(result.output_variables)
    artifacts = dict(execution.artifacts)
    for artifact in action.output_artifacts:
        location = artifact["s3location"]
        entry: dict[str, Any] = {
            "bucket": location["bucket"],
            "key": location["key"],
            "action": action.action,
        }
        if result.revision:
            entry.update(result.revision)
        artifacts[artifact["name"]] = entry
    w.tx.executions.require_update(
        execution.id, None, outputs=outputs, artifacts=artifacts, updated=w.now
    )
    w.records[execution.id] = replace(execution, outputs=outputs, artifacts=artifacts)


def job_status_changed(w: Writing, effect: JobStatusChanged) -> None:
    require_move(JOB_MOVES, effect.old, effect.new)
    require(
        w.tx.jobs.update(
            effect.job_id, effect.old, status=effect.new, lease_until=None, updated=w.now
        )
    )
    w.outcome.cancelled_jobs.append(effect.job_id)


def action_abandoned(w: Writing, effect: ActionAbandoned) -> None:
    tx = w.tx
    action = tx.actions.latest(effect.run_id, effect.stage, effect.action)
    if action is None or action.status != ActionStatus.IN_PROGRESS:
        return
    require_move(ACTION_MOVES, ActionStatus.IN_PROGRESS, ActionStatus.ABANDONED)
    require(
        tx.actions.update(
            action.id,
            ActionStatus.IN_PROGRESS,
            status=ActionStatus.ABANDONED,
            summary="Abandoned when the execution was stopped",
            updated=w.now,
        )
    )
    for job in tx.jobs.active_for(action.id):
        job_status_changed(w, JobStatusChanged(job.id, JobStatus(job.status), JobStatus.FAILED))
    plan = w.snapshot.plans[action.pipeline_version]
    stage = plan.stage(action.stage)
    assert stage is not None
    w.event(
        ACTION,
        action_detail(
            w.pipeline.name,
            action.execution_id,
            action.stage,
            action.action,
            ACTION_STATES[ActionStatus.ABANDONED],
            action.pipeline_version,
            w.runner.scope.region,
            stage.actions[action.action].type_id,
        ),
    )


def rollback_started(w: Writing, effect: RollbackStarted) -> None:
    target = w.tx.executions.get(effect.target_id)
    assert target is not None
    plan = w.snapshot.plans[w.snapshot.version]
    index = plan.index(effect.stage)
    assert index is not None
    detail = f"Stage '{effect.stage}' of execution {effect.failed_run_id} failed"
    record = record_rollback(
        w.tx, w.runner, w.pipeline, effect.stage, index, target, AUTOMATED, detail
    )
    w.recorded.append(record.id)


# Conditions' and rules' state changes, in the shape of CodePipeline's other events (whose
# documentation names only the pipeline, stage and action kinds).
CONDITION = "CodePipeline Stage Condition State Change"
RULE = "CodePipeline Rule Execution State Change"
CONDITION_STATES = {
    ConditionStatus.IN_PROGRESS: "STARTED",
    ConditionStatus.SUCCEEDED: "SUCCEEDED",
    ConditionStatus.FAILED: "FAILED",
    ConditionStatus.ERRORED: "ERRORED",
    ConditionStatus.CANCELLED: "CANCELED",
    ConditionStatus.ABANDONED: "ABANDONED",
    ConditionStatus.OVERRIDDEN: "OVERRIDDEN",
}
RULE_STATES = {
    RuleStatus.IN_PROGRESS: "STARTED",
    RuleStatus.SUCCEEDED: "SUCCEEDED",
    RuleStatus.FAILED: "FAILED",
    RuleStatus.ABANDONED: "ABANDONED",
}


def _condition_event(
    w: Writing, run_id: str, stage: str, kind: str, index: int, status: ConditionStatus
) -> None:
    detail = stage_detail(
        w.pipeline.name, run_id, stage, CONDITION_STATES[status], w.version(run_id)
    )
    w.event(CONDITION, {**detail, "condition-type": kind, "condition-index": index})


def _rule_event(w: Writing, rule_id: str, status: RuleStatus, **extra: Any) -> None:
    rule = w.tx.rule_runs.get_rule(rule_id)
    assert rule is not None
    detail = stage_detail(
        w.pipeline.name, rule.execution_id, rule.stage, RULE_STATES[status], rule.pipeline_version
    )
    detail.update(
        {
            "condition-type": rule.kind,
            "condition-index": rule.condition_index,
            "rule": rule.rule,
            "rule-execution-id": rule.id,
            "region": rule.input.get("region"),
            "type": rule.input.get("ruleTypeId"),
        }
    )
    detail.update({k: v for k, v in extra.items() if v})
    w.event(RULE, detail)


def condition_started(w: Writing, effect: ConditionStarted) -> None:
    w.tx.rule_runs.insert_condition(
        ConditionRecord(
            execution_id=effect.run_id,
            stage=effect.stage,
            kind=effect.kind,
            condition_index=effect.index,
            attempt=effect.attempt,
            status=ConditionStatus.IN_PROGRESS,
            summary=None,
            started=w.now,
            updated=w.now,
        )
    )
    _condition_event(
        w, effect.run_id, effect.stage, effect.kind, effect.index, ConditionStatus.IN_PROGRESS
    )


def condition_ended(w: Writing, effect: ConditionEnded) -> None:
    require_move(CONDITION_MOVES, effect.old, effect.new)
    require(
        w.tx.rule_runs.update_condition(
            effect.run_id,
            effect.stage,
            effect.kind,
            effect.index,
            effect.attempt,
            effect.old,
            status=effect.new,
            summary=effect.summary,
            updated=w.now,
        )
    )
    _condition_event(w, effect.run_id, effect.stage, effect.kind, effect.index, effect.new)


def rule_started(w: Writing, effect: RuleStarted) -> None:
    record = w.record(effect.run_id)
    plan = w.snapshot.plans[record.version]
    runner = w.runner
    start = prepare_rule(
        w.tx, runner.scope, w.pipeline, plan, record, effect, w.now, runner.log_base
    )
    if start.failure is not None:
        key = RuleKey(
            effect.run_id, effect.stage, effect.kind, effect.index, effect.rule, start.record.id
        )
        w.rule_failures.append((key, start.failure))
    else:
        w.outcome.jobs_queued += 1
    _rule_event(w, start.record.id, RuleStatus.IN_PROGRESS)


def rule_ended(w: Writing, effect: RuleEnded) -> None:
    require_move(RULE_MOVES, effect.old, effect.new)
    result = effect.result
    require(
        w.tx.rule_runs.update_rule(
            effect.key.rule_execution_id,
            effect.old,
            status=effect.new,
            updated=w.received,
            summary=result.summary,
            external_id=result.external_id,
            error_code=None if result.succeeded else result.error_code,
            error_message=None if result.succeeded else result.error_message,
        )
    )
    outcome = {
        "external-execution-id": result.external_id,
        "external-execution-summary": result.summary,
        "error-code": None if result.succeeded else result.error_code,
    }
    _rule_event(
        w,
        effect.key.rule_execution_id,
        effect.new,
        **{"execution-result": {k: v for k, v in outcome.items() if v} or None},
    )


def rule_abandoned(w: Writing, effect: RuleAbandoned) -> None:
    rule_id = effect.key.rule_execution_id
    require_move(RULE_MOVES, RuleStatus.IN_PROGRESS, RuleStatus.ABANDONED)
    if not w.tx.rule_runs.update_rule(
        rule_id,
        RuleStatus.IN_PROGRESS,
        status=RuleStatus.ABANDONED,
        summary="Abandoned when the execution was stopped",
        updated=w.now,
    ):
        return
    for job in w.tx.jobs.active_for(rule_id):
        job_status_changed(w, JobStatusChanged(job.id, JobStatus(job.status), JobStatus.FAILED))
    _rule_event(w, rule_id, RuleStatus.ABANDONED)


Writer = Callable[[Writing, Any], None]

WRITERS: dict[type[Effect], Writer] = {
    RunMoved: run_moved,
    RunStatusChanged: run_status_changed,
    StopRecorded: stop_recorded,
    StageEntered: stage_entered,
    StageStatusChanged: stage_status_changed,
    ActionStarted: action_started,
    ActionEnded: action_ended,
    ActionAbandoned: action_abandoned,
    JobStatusChanged: job_status_changed,
    RollbackStarted: rollback_started,
    ConditionStarted: condition_started,
    ConditionEnded: condition_ended,
    RuleStarted: rule_started,
    RuleEnded: rule_ended,
    RuleAbandoned: rule_abandoned,
}
