"""Execution operations: start, stop, retry, transitions, approvals, and reading state back."""

from __future__ import annotations

from typing import Any

from conveyor.api.context import Context, Params
from conveyor.api.shapes import compact
from conveyor.domain.execution import ConditionKind, RetryMode
from conveyor.domain.status import conditions_status
from conveyor.engine.views import ActionView, ConditionView, StageView
from conveyor.store import ActionRecord, ExecutionRecord, RuleRecord

DEFAULT_PAGE = 100


def start_pipeline_execution(ctx: Context, params: Params) -> dict[str, Any]:
    execution_id = ctx.services.executions.start(
        params["name"],
        trigger_type="StartPipelineExecution",
        trigger_detail=ctx.caller,
        variables=params.get("variables") or (),
        client_token=params.get("clientRequestToken"),
        source_revisions=params.get("sourceRevisions") or (),
    )
    return {"pipelineExecutionId": execution_id}


def stop_pipeline_execution(ctx: Context, params: Params) -> dict[str, Any]:
    execution_id = ctx.services.executions.stop(
        params["pipelineName"],
        params["pipelineExecutionId"],
        abandon=bool(params.get("abandon")),
        reason=params.get("reason"),
    )
    return {"pipelineExecutionId": execution_id}


def retry_stage_execution(ctx: Context, params: Params) -> dict[str, Any]:
    execution_id = ctx.services.executions.retry(
        params["pipelineName"],
        params["stageName"],
        params["pipelineExecutionId"],
        RetryMode(params["retryMode"]),
    )
    return {"pipelineExecutionId": execution_id}


def rollback_stage(ctx: Context, params: Params) -> dict[str, Any]:
    execution_id = ctx.services.executions.rollback(
        params["pipelineName"],
        params["stageName"],
        params["targetPipelineExecutionId"],
        ctx.caller,
    )
    return {"pipelineExecutionId": execution_id}


def override_stage_condition(ctx: Context, params: Params) -> None:
    ctx.services.executions.override_condition(
        params["pipelineName"],
        params["stageName"],
        params["pipelineExecutionId"],
        ConditionKind(params["conditionType"]),
    )


def disable_stage_transition(ctx: Context, params: Params) -> None:
    ctx.services.executions.set_transition(
        params["pipelineName"],
        params["stageName"],
        params["transitionType"],
        enabled=False,
        reason=params["reason"],
        caller=ctx.caller,
    )


def enable_stage_transition(ctx: Context, params: Params) -> None:
    ctx.services.executions.set_transition(
        params["pipelineName"],
        params["stageName"],
        params["transitionType"],
        enabled=True,
        reason=None,
        caller=ctx.caller,
    )


def put_approval_result(ctx: Context, params: Params) -> dict[str, Any]:
    result = params["result"]
    approved_at = ctx.services.executions.approve(
        params["pipelineName"],
        params["stageName"],
        params["actionName"],
        params["token"],
        approved=result["status"] == "Approved",
        summary=result.get("summary") or "",
        caller=ctx.caller,
    )
    return {"approvedAt": approved_at}


def _revisions(record: ExecutionRecord) -> list[dict[str, Any]]:
    return [
        compact(
            name=name,
            revisionId=entry.get("revisionId"),
            revisionChangeIdentifier=entry.get("revisionChangeIdentifier"),
            revisionSummary=entry.get("revisionSummary"),
            created=entry.get("created"),
            revisionUrl=entry.get("revisionUrl"),
        )
        for name, entry in record.artifacts.items()
        if entry.get("revisionId")
    ]


def _trigger(record: ExecutionRecord) -> dict[str, Any]:
    return {"triggerType": record.trigger_type, "triggerDetail": record.trigger_detail or ""}


def get_pipeline_execution(ctx: Context, params: Params) -> dict[str, Any]:
    pipeline, record = ctx.services.views.execution(
        params["pipelineName"], params["pipelineExecutionId"]
    )
    return {
        "pipelineExecution": compact(
            pipelineName=pipeline.name,
            pipelineVersion=record.version,
            pipelineExecutionId=record.id,
            status=record.status,
            statusSummary=record.summary,
            artifactRevisions=_revisions(record),
            variables=record.variables,
            trigger=_trigger(record),
            executionMode=record.execution_mode,
            executionType=record.execution_type,
            rollbackMetadata=_rollback_metadata(ctx, record),
        )
    }


def _rollback_metadata(ctx: Context, record: ExecutionRecord) -> dict[str, str] | None:
    if record.execution_type != "ROLLBACK":
        return None
    rollback = ctx.services.views.rollback(record.id)
    if rollback is None:
        return None
    return {"rollbackTargetPipelineExecutionId": rollback.target_id}


def list_pipeline_executions(ctx: Context, params: Params) -> dict[str, Any]:
    name = params["pipelineName"]
    succeeded_in = ((params.get("filter") or {}).get("succeededInStage") or {}).get("stageName")
    query = {"pipelineName": name, "succeededIn": succeeded_in}
    before = ctx.tokens.read("ListPipelineExecutions", query, params.get("nextToken"))
    rows, following = ctx.services.views.executions(
        name, before, params.get("maxResults") or DEFAULT_PAGE, succeeded_in
    )
    summaries = []
    for record in rows:
        sources = [
            compact(
                actionName=entry.get("action"),
                revisionId=entry.get("revisionId"),
                revisionSummary=entry.get("revisionSummary"),
                revisionUrl=entry.get("revisionUrl"),
            )
            for entry in record.artifacts.values()
            if entry.get("revisionId") and entry.get("action")
        ]
        summaries.append(
            compact(
                pipelineExecutionId=record.id,
                status=record.status,
                statusSummary=record.summary,
                startTime=record.started,
                lastUpdateTime=record.updated,
                sourceRevisions=sources,
                trigger=_trigger(record),
                stopTrigger={"reason": record.stop_reason or ""}
                if record.stop_abandon is not None
                else None,
                executionMode=record.execution_mode,
                executionType=record.execution_type,
                rollbackMetadata=_rollback_metadata(ctx, record),
            )
        )
    return compact(
        pipelineExecutionSummaries=summaries,
        nextToken=ctx.tokens.issue("ListPipelineExecutions", query, following)
        if following is not None
        else None,
    )


def _error(record: ActionRecord) -> dict[str, str] | None:
    if record.error_message is None:
        return None
    return {"code": record.error_code or "JobFailed", "message": record.error_message}


def _action_state(view: ActionView, parallel: bool) -> dict[str, Any]:
    latest = view.latest
    execution = None
    if latest is not None:
        show_token = view.is_approval and latest.status == "InProgress" and not parallel
        execution = compact(
            actionExecutionId=latest.id,
            status=latest.status,
            summary=latest.summary,
            lastStatusChange=latest.updated,
            token=latest.token if show_token else None,
            lastUpdatedBy=latest.updated_by,
            externalExecutionId=latest.external_id,
            externalExecutionUrl=latest.external_url,
            percentComplete=latest.percent_complete,
            errorDetails=_error(latest),
        )
    revision = None
    if view.revision:
        revision = compact(
            revisionId=view.revision.get("revisionId"),
            revisionChangeId=view.revision.get("revisionChangeIdentifier")
            or view.revision.get("revisionId"),
            created=view.revision.get("created") or (latest.updated if latest else None),
        )
    # Conveyor's extension (SDKs ignore members their model lacks): why change detection
    # cannot follow this source; see docs/triggers.md.
    detection = None
    if view.detection_problem:
        detection = {"status": "Failing", "message": view.detection_problem}
    return compact(
        actionName=view.name,
        currentRevision=revision,
        latestExecution=execution,
        changeDetection=detection,
        entityUrl=view.entity_url,
    )


def _stage_state(stage: StageView, parallel: bool) -> dict[str, Any]:
    inbound = [
        {"pipelineExecutionId": r.id, "status": "InProgress", "type": r.execution_type}
        for r in stage.inbound
    ]
    transition = None
    if stage.index > 0:
        record = stage.transition
        transition = (
            {"enabled": True}
            if record is None
            else compact(
                enabled=record.enabled,
                lastChangedBy=record.changed_by,
                lastChangedAt=record.changed_at,
                disabledReason=None if record.enabled else record.reason,
            )
        )
    latest = None
    retry = None
    if stage.latest is not None:
        latest = {
            "pipelineExecutionId": stage.latest.execution_id,
            "status": stage.latest.status,
            "type": "ROLLBACK" if stage.latest_rollback else "STANDARD",
        }
        automatic = stage.retry.auto_retries if stage.retry is not None else 0
        if stage.latest.manual_retries or automatic:
            retry = compact(
                autoStageRetryAttempt=automatic or None,
                manualStageRetryAttempt=stage.latest.manual_retries or None,
                latestRetryTrigger=stage.retry.latest_trigger
                if stage.retry is not None
                else "ManualStageRetry",
            )
    conditions = {kind: _conditions_state(views) for kind, views in stage.conditions.items()}
    return compact(
        stageName=stage.name,
        beforeEntryConditionState=conditions.get("BEFORE_ENTRY"),
        onSuccessConditionState=conditions.get("ON_SUCCESS"),
        onFailureConditionState=conditions.get("ON_FAILURE"),
        inboundExecution=inbound[-1] if inbound else None,
        inboundExecutions=inbound or None,
        inboundTransitionState=transition,
        actionStates=[_action_state(a, parallel) for a in stage.actions],
        latestExecution=latest,
        retryStageMetadata=retry,
    )


def get_pipeline_state(ctx: Context, params: Params) -> dict[str, Any]:
    state = ctx.services.views.state(params["name"])
    pipeline = state.pipeline
    parallel = pipeline.execution_mode == "PARALLEL"
    return {
        "pipelineName": pipeline.name,
        "pipelineVersion": pipeline.version,
        "stageStates": [_stage_state(s, parallel) for s in state.stages],
        "created": pipeline.created,
        "updated": pipeline.updated,
    }


def _detail(record: ActionRecord) -> dict[str, Any]:
    result = compact(
        externalExecutionId=record.external_id,
        externalExecutionSummary=record.summary,
        externalExecutionUrl=record.external_url,
        errorDetails=_error(record),
    )
    return compact(
        pipelineExecutionId=record.execution_id,
        actionExecutionId=record.id,
        pipelineVersion=record.pipeline_version,
        stageName=record.stage,
        actionName=record.action,
        startTime=record.started,
        lastUpdateTime=record.updated,
        updatedBy=record.updated_by,
        status=record.status,
        input=record.input,
        output=compact(
            outputArtifacts=record.output_artifacts if record.status == "Succeeded" else [],
            executionResult=result or None,
            outputVariables=record.output_variables,
        ),
    )


def list_action_executions(ctx: Context, params: Params) -> dict[str, Any]:
    name = params["pipelineName"]
    filter_ = params.get("filter") or {}
    latest = filter_.get("latestInPipelineExecution") or {}
    execution_id = filter_.get("pipelineExecutionId") or latest.get("pipelineExecutionId")
    latest_only = latest.get("startTimeRange") == "Latest"
    query = {"pipelineName": name, "execution": execution_id, "latest": latest_only}
    position = ctx.tokens.read("ListActionExecutions", query, params.get("nextToken"))
    before = (position[0], position[1]) if position else None
    _, rows, following = ctx.services.views.action_executions(
        name, execution_id, latest_only, before, params.get("maxResults") or DEFAULT_PAGE
    )
    return compact(
        actionExecutionDetails=[_detail(r) for r in rows],
        nextToken=ctx.tokens.issue("ListActionExecutions", query, list(following))
        if following
        else None,
    )


def _rule_detail(record: RuleRecord) -> dict[str, Any]:
    result = compact(
        externalExecutionId=record.external_id,
        externalExecutionSummary=record.summary,
        externalExecutionUrl=record.external_url,
        errorDetails=compact(code=record.error_code, message=record.error_message) or None,
    )
    return compact(
        pipelineExecutionId=record.execution_id,
        ruleExecutionId=record.id,
        pipelineVersion=record.pipeline_version,
        stageName=record.stage,
        ruleName=record.rule,
        startTime=record.started,
        lastUpdateTime=record.updated,
        status=record.status,
        input=record.input,
        output=compact(executionResult=result or None) or None,
    )


def list_rule_executions(ctx: Context, params: Params) -> dict[str, Any]:
    name = params["pipelineName"]
    filter_ = params.get("filter") or {}
    latest = filter_.get("latestInPipelineExecution") or {}
    execution_id = filter_.get("pipelineExecutionId") or latest.get("pipelineExecutionId")
    query = {"pipelineName": name, "execution": execution_id}
    position = ctx.tokens.read("ListRuleExecutions", query, params.get("nextToken"))
    before = (position[0], position[1]) if position else None
    rows, following = ctx.services.views.rule_executions(
        name, execution_id, before, params.get("maxResults") or DEFAULT_PAGE
    )
    return compact(
        ruleExecutionDetails=[_rule_detail(r) for r in rows],
        nextToken=ctx.tokens.issue("ListRuleExecutions", query, list(following))
        if following
        else None,
    )


def _rule_state(name: str, record: RuleRecord | None) -> dict[str, Any]:
    if record is None:
        return {"ruleName": name}
    return compact(
        ruleName=name,
        latestExecution=compact(
            ruleExecutionId=record.id,
            status=record.status,
            summary=record.summary or record.error_message,
            lastStatusChange=record.updated,
            externalExecutionId=record.external_id,
            externalExecutionUrl=record.external_url,
            errorDetails=compact(code=record.error_code, message=record.error_message) or None,
        ),
    )


def _conditions_state(views: list[ConditionView]) -> dict[str, Any]:
    """A StageConditionState: each condition's latest evaluation with its rules, and the
    conditions' overall status (in progress while one is, failed once one failed)."""
    states = []
    for view in views:
        latest = None
        if view.latest is not None:
            latest = compact(
                status=view.latest.status,
                summary=view.latest.summary,
                lastStatusChange=view.latest.updated,
            )
        states.append(
            compact(
                latestExecution=latest,
                ruleStates=[_rule_state(name, record) for name, record in view.rules],
            )
        )
    overall = conditions_status(
        view.latest.status if view.latest is not None else None for view in views
    )
    return compact(
        latestExecution={"status": overall} if overall else None,
        conditionStates=states,
    )
