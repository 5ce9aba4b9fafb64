"""Starting one rule of a stage condition: resolve its configuration, write the rule
execution, queue its job.

A rule runs as a job like an action's, of type ``Rule/AWS/<provider>/1``: the worker pool
runs it with the rule's provider. Its configuration and commands arrive with every
``#{namespace.variable}`` resolved from what the execution knows now; its time is its
``timeoutInMinutes`` (an hour by default). A rule that cannot start (a variable that does not
resolve, a missing input artifact) is written in progress with the message that says why,
and fails through the decider.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.domain.conditiondecider import declared_conditions
from conveyor.domain.execution import ConditionKind, RuleStarted
from conveyor.domain.plan import Plan
from conveyor.domain.status import JobStatus, RuleStatus
from conveyor.domain.variables import CODEPIPELINE, PIPELINE_VARIABLES, UnresolvedVariable, resolve
from conveyor.domain.work import ArtifactRef, Work
from conveyor.engine.starting import ARTIFACT_CREDENTIALS, DEFAULT_TIMEOUT
from conveyor.store import ExecutionRecord, JobRecord, PipelineRecord, RuleRecord, Tx


@dataclass(slots=True)
class RuleStart:
    record: RuleRecord
    failure: str | None = None
    job: JobRecord | None = None


def rule_declaration(
    plan: Plan, stage_name: str, kind: ConditionKind, index: int, name: str
) -> Mapping[str, Any]:
    stage = plan.stage(stage_name)
    assert stage is not None
    condition = declared_conditions(stage, kind)[index]
    return next(r for r in condition.rules if r.get("name") == name)


def rule_timeout(rule: Mapping[str, Any]) -> float:
    """Seconds a rule may run: its timeoutInMinutes, an hour by default."""
    minutes = rule.get("timeoutInMinutes")
    return float(minutes) * 60.0 if minutes else DEFAULT_TIMEOUT


def rule_type_id(rule: Mapping[str, Any]) -> ActionTypeId:
    shape = rule.get("ruleTypeId") or {}
    return ActionTypeId(
        str(shape.get("category", "Rule")),
        str(shape.get("owner", "AWS")),
        str(shape.get("provider", "")),
        str(shape.get("version", "1")),
    )


def _values(record: ExecutionRecord) -> dict[str, dict[str, str]]:
    values: dict[str, dict[str, str]] = {
        CODEPIPELINE: {"PipelineExecutionId": record.id},
        PIPELINE_VARIABLES: {v["name"]: v["resolvedValue"] for v in record.variables},
    }
    for namespace, outputs in record.outputs.items():
        values[namespace] = outputs
    return values


def prepare_rule(
    tx: Tx,
    scope: Scope,
    pipeline: PipelineRecord,
    plan: Plan,
    record: ExecutionRecord,
    effect: RuleStarted,
    now: float,
    log_base: str | None = None,
) -> RuleStart:
    rule = rule_declaration(plan, effect.stage, effect.kind, effect.index, effect.rule)
    type_id = rule_type_id(rule)
    rule_id = str(uuid.uuid4())
    region = str(rule.get("region") or scope.region)
    config = {str(k): str(v) for k, v in (rule.get("configuration") or {}).items()}
    failure: str | None = None
    values = _values(record)
    try:
        configuration = {k: resolve(v, values) for k, v in config.items()}
        commands = [resolve(str(c), values) for c in rule.get("commands") or ()]
    except UnresolvedVariable as exc:
        failure = f"Could not resolve the rule's configuration: {exc}"
        configuration, commands = dict(config), []
    inputs: list[ArtifactRef] = []
    for artifact in rule.get("inputArtifacts") or ():
        name = str(artifact.get("name"))
        found = record.artifacts.get(name)
        if found is None:
            failure = failure or f"Input artifact '{name}' is not available in this execution."
            continue
        inputs.append(ArtifactRef(name, found["bucket"], found["key"], found.get("revisionId")))
    timeout = rule_timeout(rule)
    input_shape: dict[str, Any] = {
        "ruleTypeId": {
            "category": type_id.category,
            "owner": type_id.owner,
            "provider": type_id.provider,
            "version": type_id.version,
        },
        "configuration": config,
        "resolvedConfiguration": configuration,
        "region": region,
        "inputArtifacts": [
            {"name": i.name, "s3location": {"bucket": i.bucket, "key": i.key}} for i in inputs
        ],
    }
    if rule.get("roleArn"):
        input_shape["roleArn"] = rule["roleArn"]
    start = RuleStart(
        RuleRecord(
            id=rule_id,
            execution_id=record.id,
            pipeline_id=pipeline.id,
            pipeline_version=plan.version,
            stage=effect.stage,
            kind=effect.kind,
            condition_index=effect.index,
            attempt=effect.attempt,
            rule=effect.rule,
            status=RuleStatus.IN_PROGRESS,
            started=now,
            updated=now,
            deadline=None if failure else now + timeout,
            summary=None,
            external_id=None,
            external_url=f"{log_base}/logs/{rule_id}" if log_base and not failure else None,
            error_code=None,
            error_message=None,
            input=input_shape,
        ),
        failure,
    )
    tx.rule_runs.insert_rule(start.record)
    if failure is not None:
        return start
    work = Work(
        type_id=type_id,
        configuration=configuration,
        pipeline_name=pipeline.name,
        pipeline_arn=scope.pipeline(pipeline.name),
        pipeline_execution_id=record.id,
        stage=effect.stage,
        action=effect.rule,
        action_execution_id=rule_id,
        input_artifacts=tuple(inputs),
        artifact_credentials=ARTIFACT_CREDENTIALS,
        commands=tuple(commands),
        deadline=now + timeout,
        region=region,
    )
    start.job = JobRecord(
        id=str(uuid.uuid4()),
        action_execution_id=rule_id,
        pipeline_id=pipeline.id,
        type_id=type_id,
        status=JobStatus.QUEUED,
        nonce=secrets.token_hex(8),
        owner=None,
        lease_until=None,
        query_value=None,
        data=work.data(),
        created=now,
        updated=now,
    )
    tx.jobs.insert(start.job)
    return start
