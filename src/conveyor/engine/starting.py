"""Starting one action: resolve its variables, place its artifacts, write the attempt, and
queue its job (or, for a manual approval, issue the token people answer with).

Resolution happens here, just before the action runs, from what the execution knows now:
``codepipeline``, the pipeline ``variables``, and the namespaces of actions that always run
before this one. An action that cannot be resolved, or whose input artifact is missing, is
written in progress with the message that says why, and fails through the decider.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.domain.actiontype import ActionOwner, ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.domain.catalog import builtin_action_type, cannot_run
from conveyor.domain.execution import ActionStarted
from conveyor.domain.labels import LABELS_KEY, LabelError, canonical, parse_labels
from conveyor.domain.pipeline import MASK, Action, Pipeline
from conveyor.domain.plan import APPROVAL, Plan
from conveyor.domain.status import ActionStatus, JobStatus
from conveyor.domain.variables import (
    CODEPIPELINE,
    PIPELINE_VARIABLES,
    UnresolvedVariable,
    resolve,
)
from conveyor.domain.work import ArtifactRef, EnvironmentVariable, OutputRef, Work
from conveyor.engine.actiontypes import resolver
from conveyor.store import ActionRecord, ExecutionRecord, JobRecord, PipelineRecord, Tx

DEFAULT_BUCKET = "conveyor-artifacts"
DEFAULT_TIMEOUT = 3600.0
APPROVAL_TIMEOUT = 7 * 24 * 3600.0
# Stand-ins for the temporary credentials CodePipeline hands job workers.
ARTIFACT_CREDENTIALS = {
    "accessKeyId": "conveyor",
    "secretAccessKey": "conveyor",
    "sessionToken": "conveyor",
}


@dataclass(slots=True)
class ActionStart:
    run_id: str
    stage: str
    action: str
    action_execution_id: str
    job: JobRecord | None = None
    token: str | None = None
    failure: str | None = None
    input_artifacts: list[dict[str, Any]] = field(default_factory=list)
    record: ActionRecord | None = None


def bucket_for(pipeline: Pipeline, region: str) -> str:
    if pipeline.artifact_store is not None:
        return pipeline.artifact_store.location
    if pipeline.artifact_stores and region in pipeline.artifact_stores:
        return pipeline.artifact_stores[region].location
    return DEFAULT_BUCKET


def artifact_key(pipeline_name: str, artifact: str) -> str:
    """Where an artifact's zip goes in the bucket, shaped like CodePipeline's keys."""
    return f"{pipeline_name[:20]}/{artifact[:10]}/{uuid.uuid4().hex[:16]}"


def _location(bucket: str, key: str) -> dict[str, Any]:
    return {"type": "S3", "s3Location": {"bucketName": bucket, "objectKey": key}}


def _values(record: ExecutionRecord, visible: frozenset[str]) -> dict[str, dict[str, str]]:
    values: dict[str, dict[str, str]] = {
        CODEPIPELINE: {"PipelineExecutionId": record.id},
        PIPELINE_VARIABLES: {v["name"]: v["resolvedValue"] for v in record.variables},
    }
    for namespace, outputs in record.outputs.items():
        if namespace in visible:
            values[namespace] = outputs
    return values


def _masked(config: dict[str, str], secret: frozenset[str]) -> dict[str, str]:
    return {k: (MASK if k in secret else v) for k, v in config.items()}


def _source_revision(record: ExecutionRecord, action: Action) -> str | None:
    for override in record.source_revisions:
        if override["actionName"] == action.name:
            return override["revisionValue"]
    return None


def _source_variables(record: ExecutionRecord, action: Action) -> dict[str, str]:
    """Output variables the change that started the execution gives the source action (a
    pull request's), kept as JSON beside the revision it pinned."""
    for override in record.source_revisions:
        if override["actionName"] == action.name and override.get("outputVariables"):
            values = json.loads(override["outputVariables"])
            return {str(k): str(v) for k, v in values.items()}
    return {}


def prepare_action(
    tx: Tx,
    scope: Scope,
    pipeline: PipelineRecord,
    plan: Plan,
    record: ExecutionRecord,
    effect: ActionStarted,
    now: float,
    runnable: frozenset[ActionTypeId],
    log_base: str | None = None,
) -> ActionStart:
    stage = plan.stage(effect.stage)
    assert stage is not None
    action = stage.actions[effect.action]
    action_type = resolver(tx)(action.type_id)
    secret = action_type.secret_names if action_type else frozenset()
    region = action.region or scope.region
    bucket = bucket_for(plan.pipeline, region)
    start = ActionStart(effect.run_id, effect.stage, effect.action, str(uuid.uuid4()))

    failure: str | None = None
    builtin = builtin_action_type(action.type_id)
    if builtin is not None and action.type_id != APPROVAL and action.type_id not in runnable:
        failure = cannot_run(builtin)
    values = _values(record, plan.scopes[(stage.name, action.name)])
    try:
        configuration = {k: resolve(v, values) for k, v in action.config.items()}
        commands = [resolve(c, values) for c in action.commands]
        environment = [
            {"name": v.name, "value": resolve(v.value, values), "type": v.type}
            for v in action.environment_variables
        ]
    except UnresolvedVariable as exc:
        failure = failure or f"Could not resolve the action's configuration: {exc}"
        configuration, commands, environment = dict(action.config), [], []
    labels: str | None = None
    try:
        labels = required_labels(action.type_id, configuration)
    except LabelError as exc:  # refused on save; a variable may still resolve to it
        failure = failure or f"The action's {LABELS_KEY} cannot be used: {exc}."

    inputs: list[dict[str, Any]] = []
    for name in action.input_artifacts:
        found = record.artifacts.get(name)
        if found is None:
            failure = failure or f"Input artifact '{name}' is not available in this execution."
            continue
        inputs.append(
            {
                "name": name,
                "bucket": found["bucket"],
                "key": found["key"],
                "revision": found.get("revisionId"),
            }
        )
    start.input_artifacts = [
        {"name": i["name"], "s3location": {"bucket": i["bucket"], "key": i["key"]}} for i in inputs
    ]
    outputs: list[dict[str, Any]] = [
        {
            "name": o.name,
            "bucket": bucket,
            "key": artifact_key(pipeline.name, o.name),
            "files": list(o.files),
        }
        for o in action.output_artifacts
    ]
    timeout = action_timeout(action, action_type.job_timeout if action_type else None)
    input_shape = {
        "actionTypeId": _type_shape(action.type_id),
        "configuration": _masked(dict(action.config), secret),
        "resolvedConfiguration": _masked(configuration, secret),
        "region": region,
        "inputArtifacts": start.input_artifacts,
    }
    if action.role_arn:
        input_shape["roleArn"] = action.role_arn
    if action.namespace:
        input_shape["namespace"] = action.namespace
    is_approval = action.type_id == APPROVAL
    if failure is None and is_approval:
        start.token = str(uuid.uuid4())
    start.record = ActionRecord(
        id=start.action_execution_id,
        execution_id=record.id,
        pipeline_id=pipeline.id,
        pipeline_version=plan.version,
        stage=stage.name,
        action=action.name,
        attempt=effect.attempt,
        status=ActionStatus.IN_PROGRESS,
        started=now,
        updated=now,
        deadline=now + timeout if failure is None else None,
        summary=None,
        external_id=start.token,
        external_url=f"{log_base}/logs/{start.action_execution_id}"
        if log_base and not is_approval and failure is None
        else None,
        error_code=None,
        error_message=None,
        percent_complete=None,
        token=start.token,
        updated_by=None,
        input=input_shape,
        output_artifacts=[
            {"name": o["name"], "s3location": {"bucket": o["bucket"], "key": o["key"]}}
            for o in outputs
        ],
        output_variables=None,
        revision=None,
    )
    tx.actions.insert(start.record)
    start.failure = failure
    if failure is not None or is_approval:
        return start
    work = Work(
        type_id=action.type_id,
        configuration=configuration,
        pipeline_name=pipeline.name,
        pipeline_arn=scope.pipeline(pipeline.name),
        pipeline_execution_id=record.id,
        stage=stage.name,
        action=action.name,
        action_execution_id=start.action_execution_id,
        input_artifacts=tuple(
            ArtifactRef(i["name"], i["bucket"], i["key"], i["revision"]) for i in inputs
        ),
        output_artifacts=tuple(
            OutputRef(o["name"], o["bucket"], o["key"], tuple(o["files"])) for o in outputs
        ),
        artifact_credentials=ARTIFACT_CREDENTIALS,
        commands=tuple(commands),
        output_variables=tuple(action.output_variables),
        environment_variables=tuple(
            EnvironmentVariable(v["name"], v["value"], v["type"]) for v in environment
        ),
        source_revision=_source_revision(record, action),
        source_variables=_source_variables(record, action),
        deadline=now + timeout,
        region=region,
    )
    queryable = (
        next((p.name for p in action_type.properties if p.queryable), None)
        if (action_type)
        else None
    )
    start.job = JobRecord(
        id=str(uuid.uuid4()),
        action_execution_id=start.action_execution_id,
        pipeline_id=pipeline.id,
        type_id=action.type_id,
        status=JobStatus.QUEUED,
        nonce=secrets.token_hex(8),
        owner=None,
        lease_until=None,
        query_value=configuration.get(queryable) if queryable else None,
        data=work.data(),
        created=now,
        updated=now,
        labels=labels,
    )
    tx.jobs.insert(start.job, secret)
    return start


def required_labels(type_id: ActionTypeId, configuration: Mapping[str, str]) -> str | None:
    """The worker labels a job of this action requires (``ConveyorLabels``), canonical; a
    custom action's jobs go to PollForJobs workers, which declare none."""
    if type_id.owner == ActionOwner.CUSTOM:
        return None
    return canonical(parse_labels(configuration.get(LABELS_KEY)))


def action_timeout(action: Action, job_timeout: int | None) -> float:
    """Seconds an attempt may run: the approval's timeoutInMinutes (7 days by default), or
    the action type's job timeout (1 hour by default)."""
    if action.type_id == APPROVAL:
        minutes = action.timeout_in_minutes
        return minutes * 60.0 if minutes else APPROVAL_TIMEOUT
    return float(job_timeout) if job_timeout else DEFAULT_TIMEOUT


def _type_shape(type_id: ActionTypeId) -> dict[str, str]:
    return {
        "category": type_id.category,
        "owner": type_id.owner,
        "provider": type_id.provider,
        "version": type_id.version,
    }
