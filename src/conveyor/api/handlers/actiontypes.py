"""Action type operations: ListActionTypes, GetActionType, CreateCustomActionType,
UpdateActionType, DeleteCustomActionType; and ListRuleTypes, the rule types of stage
conditions."""

from __future__ import annotations

from typing import Any

from conveyor.api.context import Context, Params
from conveyor.api.shapes import (
    action_type_shape,
    compact,
    declaration_shape,
    tags_from,
    tags_shape,
    type_id_from,
    type_id_shape,
)
from conveyor.domain.actiontype import ActionOwner, ActionType
from conveyor.domain.catalog import how_it_runs_here
from conveyor.domain.rulecatalog import BUILTIN_RULE_TYPES, RuleType

PAGE = 100
_DEFINITION_MEMBERS = (
    "settings",
    "configurationProperties",
    "inputArtifactDetails",
    "outputArtifactDetails",
)


def list_action_types(ctx: Context, params: Params) -> dict[str, Any]:
    owner = params.get("actionOwnerFilter")
    region = params.get("regionFilter")
    query = {"owner": owner, "region": region}
    start = ctx.tokens.read("ListActionTypes", query, params.get("nextToken")) or 0
    types = (
        []
        if region not in (None, ctx.services.scope.region)
        else ctx.services.action_types.all(owner)
    )
    end = start + PAGE
    return compact(
        actionTypes=[_listed(ctx, t) for t in types[start:end]],
        nextToken=ctx.tokens.issue("ListActionTypes", query, end) if end < len(types) else None,
    )


def _listed(ctx: Context, action_type: ActionType) -> dict[str, Any]:
    """A type as ListActionTypes shows it, with Conveyor's extension member
    ``conveyorExecution`` (SDKs ignore members their model lacks): what runs its jobs here,
    and whether job workers may poll for it; see docs/action-types.md."""
    found = how_it_runs_here(
        action_type,
        runs_here=action_type.id in ctx.services.runnable,
        left_to_workers=action_type.id in ctx.services.worker_types,
    )
    return {
        **action_type_shape(action_type),
        "conveyorExecution": compact(
            executor=found.executor,
            jobWorkersMayPoll=found.job_workers_may_poll,
            setting=found.setting,
            note=found.note,
        ),
    }


def get_action_type(ctx: Context, params: Params) -> dict[str, Any]:
    action_type = ctx.services.action_types.get(type_id_from(params))
    return {"actionType": declaration_shape(action_type)}


def create_custom_action_type(ctx: Context, params: Params) -> dict[str, Any]:
    type_id = type_id_from(params, owner=ActionOwner.CUSTOM)
    definition = {k: params[k] for k in _DEFINITION_MEMBERS if k in params}
    created = ctx.services.action_types.create_custom(
        type_id, definition, tags_from(params.get("tags"))
    )
    return compact(
        actionType=action_type_shape(created.action_type),
        tags=tags_shape(created.tags) or None,
    )


def update_action_type(ctx: Context, params: Params) -> None:
    ctx.services.action_types.update_declared(params["actionType"])


def delete_custom_action_type(ctx: Context, params: Params) -> None:
    ctx.services.action_types.delete_custom(type_id_from(params, owner=ActionOwner.CUSTOM))


def list_rule_types(ctx: Context, params: Params) -> dict[str, Any]:
    owner = params.get("ruleOwnerFilter")
    region = params.get("regionFilter")
    here = owner in (None, "AWS") and region in (None, ctx.services.scope.region)
    return {"ruleTypes": [_rule_type_shape(t) for t in BUILTIN_RULE_TYPES] if here else []}


def _rule_type_shape(rule_type: RuleType) -> dict[str, Any]:
    return {
        "id": type_id_shape(rule_type.id),
        "ruleConfigurationProperties": [
            compact(
                name=p.name,
                required=p.required,
                key=p.key,
                secret=p.secret,
                queryable=p.queryable,
                description=p.description,
                type=p.type.value if p.type else None,
            )
            for p in rule_type.properties
        ],
        "inputArtifactDetails": {
            "minimumCount": rule_type.input_artifacts.minimum,
            "maximumCount": rule_type.input_artifacts.maximum,
        },
    }
