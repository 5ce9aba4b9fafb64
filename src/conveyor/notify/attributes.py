"""What a FULL notification adds to the event (``additionalAttributes``), as CodePipeline's
processed events carry it:

- a pipeline execution that FAILED: ``failedActionCount``, ``failedActions`` (each
  ``{action, additionalInformation}``) and ``failedStage``;
- an action execution that FAILED: ``additionalInformation``, the failure's message;
- a stage execution that STARTED: ``sourceActions``, each ``{sourceActionName,
  sourceActionProvider, sourceActionVariables {BranchName, CommitId, RepositoryName}}`` of
  the execution's source actions that found their revision;
- anything else: ``{}``.

Pure: the event and the execution's action attempts in, the attributes out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from conveyor.store.actions import ActionRecord

PIPELINE = "CodePipeline Pipeline Execution State Change"
STAGE = "CodePipeline Stage Execution State Change"
ACTION = "CodePipeline Action Execution State Change"
_SOURCE_VARIABLES = ("BranchName", "CommitId", "RepositoryName")


def needs_actions(event: dict[str, Any]) -> bool:
    """Whether the attributes of ``event`` are read from the execution's actions."""
    detail = event.get("detail") or {}
    kind, state = event.get("detail-type"), detail.get("state")
    return (state == "FAILED" and kind in (PIPELINE, ACTION)) or (
        kind == STAGE and state == "STARTED"
    )


def _latest(actions: Iterable[ActionRecord]) -> list[ActionRecord]:
    """The latest attempt of each action, in the order the actions started."""
    found: dict[tuple[str, str], ActionRecord] = {}
    for record in sorted(actions, key=lambda a: (a.started, a.attempt)):
        found[(record.stage, record.action)] = record
    return list(found.values())


def _information(record: ActionRecord) -> str:
    return record.error_message or record.summary or ""


def additional_attributes(
    event: dict[str, Any], actions: Iterable[ActionRecord] = ()
) -> dict[str, Any]:
    detail = event.get("detail") or {}
    kind, state = event.get("detail-type"), detail.get("state")
    if kind == ACTION and state == "FAILED":
        mine = [
            a
            for a in _latest(actions)
            if (a.stage, a.action) == (detail.get("stage"), detail.get("action"))
        ]
        result = detail.get("execution-result") or {}
        information = _information(mine[-1]) if mine else ""
        return {
            "additionalInformation": information or result.get("external-execution-summary") or ""
        }
    if kind == PIPELINE and state == "FAILED":
        failed = [a for a in _latest(actions) if a.status == "Failed"]
        if not failed:
            return {}
        return {
            "failedActionCount": len(failed),
            "failedActions": [
                {"action": a.action, "additionalInformation": _information(a)} for a in failed
            ],
            "failedStage": failed[-1].stage,
        }
    if kind == STAGE and state == "STARTED":
        sources = [
            {
                "sourceActionName": a.action,
                "sourceActionProvider": (a.input.get("actionTypeId") or {}).get("provider"),
                "sourceActionVariables": {
                    k: a.output_variables[k] for k in _SOURCE_VARIABLES if k in a.output_variables
                },
            }
            for a in _latest(actions)
            if (a.input.get("actionTypeId") or {}).get("category") == "Source"
            and a.status == "Succeeded"
            and a.output_variables
        ]
        return {"sourceActions": sources} if sources else {}
    return {}
