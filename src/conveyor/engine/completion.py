"""Finishing an action attempt, whoever reports it: a job worker, an approver, the sweeper.

The attempt's row takes the result; a success publishes the action's output variables under
its namespace and its output artifacts (with the source revision, for source actions) to
the execution; then the execution moves on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conveyor.domain.events import ACTION, ACTION_STATES, action_detail
from conveyor.domain.status import ActionStatus
from conveyor.engine.runner import Outcome, Runner
from conveyor.store import ActionRecord, PipelineRecord, Tx


@dataclass(frozen=True, slots=True)
class Finish:
    succeeded: bool
    summary: str | None = None
    external_id: str | None = None
    external_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    output_variables: dict[str, str] = field(default_factory=dict)
    # A source revision: revisionId, revisionChangeIdentifier, created, revisionSummary, ...
    revision: dict[str, Any] | None = None
    updated_by: str | None = None
    percent_complete: int | None = None


def finish_action(
    tx: Tx,
    runner: Runner,
    pipeline: PipelineRecord,
    action: ActionRecord,
    finish: Finish,
    *,
    job_done: bool = False,
) -> Outcome:
    """Record the result of an attempt still in progress and advance its execution.

    ``job_done``: the caller has already settled the attempt's job, so there is none left
    active to close.
    """
    now = runner.clock.now()
    status = ActionStatus.SUCCEEDED if finish.succeeded else ActionStatus.FAILED
    changed = tx.actions.update(
        action.id,
        ActionStatus.IN_PROGRESS,
        status=status,
        updated=now,
        summary=finish.summary,
        external_id=finish.external_id or action.external_id,
        external_url=finish.external_url or action.external_url,
        error_code=finish.error_code,
        error_message=finish.error_message,
        output_variables=finish.output_variables if finish.succeeded else None,
        revision=finish.revision,
        updated_by=finish.updated_by,
        percent_complete=finish.percent_complete,
    )
    if not changed:
        return Outcome()
    if not job_done:
        for job in tx.jobs.active_for(action.id):
            tx.jobs.update(job.id, job.status, status="Failed", lease_until=None, updated=now)
    if finish.succeeded:
        _publish(tx, action, finish, now)
    plan = runner.plans.get(tx, pipeline.id, action.pipeline_version)
    stage = plan.stage(action.stage)
    assert stage is not None
    result = {
        "external-execution-id": finish.external_id,
        "external-execution-summary": finish.summary,
        "external-execution-url": finish.external_url,
        "error-code": None if finish.succeeded else finish.error_code,
    }
    runner.event(
        tx,
        pipeline,
        ACTION,
        action_detail(
            pipeline.name,
            action.execution_id,
            action.stage,
            action.action,
            ACTION_STATES[status],
            action.pipeline_version,
            runner.scope.region,
            stage.actions[action.action].type_id,
            **{
                "output-artifacts": action.output_artifacts or None,
                "execution-result": {k: v for k, v in result.items() if v} or None,
            },
        ),
    )
    return runner.advance(tx, pipeline, focus=action.execution_id)


def _publish(tx: Tx, action: ActionRecord, finish: Finish, now: float) -> None:
    namespace = action.input.get("namespace")
    if not namespace and not action.output_artifacts:
        # Nothing to publish: the execution only learns that it changed.
        tx.executions.require_update(action.execution_id, None, updated=now)
        return
    execution = tx.executions.get(action.execution_id)
    assert execution is not None
    outputs = dict(execution.outputs)
    if namespace:
        outputs[namespace] = dict(finish.output_variables)
    artifacts = dict(execution.artifacts)
    for artifact in action.output_artifacts:
        location = artifact["s3location"]
        entry: dict[str, Any] = {
            "bucket": location["bucket"],
            "key": location["key"],
            "action": action.action,
        }
        if finish.revision:
            entry.update(finish.revision)
        artifacts[artifact["name"]] = entry
    tx.executions.require_update(
        execution.id, None, outputs=outputs, artifacts=artifacts, updated=now
    )
