"""State changes as Amazon EventBridge events in CodePipeline's format.

Each function builds the ``detail`` of one kind of event; `envelope` wraps it with the
fields every EventBridge event has. Time and ids are given, never taken.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from conveyor.domain.actiontype import ActionTypeId

PIPELINE = "CodePipeline Pipeline Execution State Change"
STAGE = "CodePipeline Stage Execution State Change"
ACTION = "CodePipeline Action Execution State Change"

# Status → the event's ``state``. Only the moves CodePipeline reports have a state.
PIPELINE_STATES = {
    "InProgress": "STARTED",
    "Stopping": "STOPPING",
    "Stopped": "STOPPED",
    "Succeeded": "SUCCEEDED",
    "Failed": "FAILED",
    "Superseded": "SUPERSEDED",
    "Cancelled": "CANCELED",
}
STAGE_STATES = {
    "InProgress": "STARTED",
    "Stopping": "STOPPING",
    "Stopped": "STOPPED",
    "Succeeded": "SUCCEEDED",
    "Failed": "FAILED",
    "Cancelled": "CANCELED",
}
ACTION_STATES = {
    "InProgress": "STARTED",
    "Succeeded": "SUCCEEDED",
    "Failed": "FAILED",
    "Abandoned": "ABANDONED",
}


def envelope(
    event_id: str,
    detail_type: str,
    time: float,
    account: str,
    region: str,
    resources: list[str],
    detail: Mapping[str, Any],
) -> dict[str, Any]:
    stamp = datetime.datetime.fromtimestamp(time, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": "aws.codepipeline",
        "account": account,
        "time": stamp,
        "region": region,
        "resources": resources,
        "detail": dict(detail),
    }


def pipeline_detail(
    pipeline: str, execution_id: str, state: str, version: int, **extra: Any
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "pipeline": pipeline,
        "execution-id": execution_id,
        "state": state,
        "version": version,
    }
    detail.update({k: v for k, v in extra.items() if v is not None})
    return detail


def stage_detail(
    pipeline: str, execution_id: str, stage: str, state: str, version: int
) -> dict[str, Any]:
    return {
        "pipeline": pipeline,
        "execution-id": execution_id,
        "stage": stage,
        "state": state,
        "version": version,
    }


def action_detail(
    pipeline: str,
    execution_id: str,
    stage: str,
    action: str,
    state: str,
    version: int,
    region: str,
    type_id: ActionTypeId,
    **extra: Any,
) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "pipeline": pipeline,
        "execution-id": execution_id,
        "stage": stage,
        "action": action,
        "state": state,
        "region": region,
        "type": {
            "owner": type_id.owner,
            "category": type_id.category,
            "provider": type_id.provider,
            "version": type_id.version,
        },
        "version": version,
    }
    detail.update({k: v for k, v in extra.items() if v is not None})
    return detail
