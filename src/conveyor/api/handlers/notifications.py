"""CodeStar Notifications' operations: notification rules, their targets, their tags, and
the event types a rule may name.

Lists are filtered as AWS filters them (every filter must match) and paged by a signed token,
written in the characters the model's ``NextToken`` pattern allows.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from conveyor.api.context import Context, Params
from conveyor.domain.errors import InvalidNextTokenException
from conveyor.notify.catalog import EVENT_TYPES, RESOURCE_TYPE, SERVICE_NAME, EventType
from conveyor.notify.rules import NotificationRuleService, target_summary
from conveyor.store.notifications import RuleRecord, TargetRecord

T = TypeVar("T")
PAGE = 100


def _service(ctx: Context) -> NotificationRuleService:
    s = ctx.services
    return NotificationRuleService(s.store, s.scope, s.clock)


def _filters(params: Params) -> list[tuple[str, str]]:
    return [(f["Name"], f["Value"]) for f in params.get("Filters") or ()]


def _page(
    ctx: Context,
    operation: str,
    params: Params,
    items: Sequence[T],
    key: Callable[[T], str],
) -> tuple[list[T], str | None]:
    """One page of ``items`` (sorted by ``key``) after the token's position."""
    query = {"Filters": sorted(_filters(params))}
    raw = params.get("NextToken")
    inner = None
    if raw is not None:
        try:
            inner = base64.b64decode(raw, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            inner = "?"
    try:
        after = ctx.tokens.read(operation, query, inner)
    except InvalidNextTokenException:
        raise InvalidNextTokenException(
            f"The NextToken '{raw}' was not issued by a previous {operation} call with the "
            "same filters."
        ) from None
    size = params.get("MaxResults") or PAGE
    rest = [i for i in items if after is None or key(i) > after]
    page = rest[:size]
    token = None
    if len(rest) > size:
        issued = ctx.tokens.issue(operation, query, key(page[-1]))
        token = base64.b64encode(issued.encode()).decode()
    return page, token


def create_notification_rule(ctx: Context, params: Params) -> dict[str, Any]:
    return {"Arn": _service(ctx).create(params, ctx.caller)}


def describe_notification_rule(ctx: Context, params: Params) -> dict[str, Any]:
    return _service(ctx).describe(params["Arn"])


def _rule_matches(rule: RuleRecord, name: str, value: str) -> bool:
    if name == "EVENT_TYPE_ID":
        return value in rule.definition["EventTypeIds"]
    if name == "CREATED_BY":
        return bool(rule.definition["CreatedBy"] == value)
    if name == "RESOURCE":
        return rule.resource == value
    return value in rule.targets


def list_notification_rules(ctx: Context, params: Params) -> dict[str, Any]:
    filters = _filters(params)
    rules = [
        r
        for r in _service(ctx).rules()
        if all(_rule_matches(r, name, value) for name, value in filters)
    ]
    page, token = _page(ctx, "ListNotificationRules", params, rules, lambda r: r.arn)
    result: dict[str, Any] = {
        "NotificationRules": [{"Id": r.arn.rpartition("/")[2], "Arn": r.arn} for r in page]
    }
    if token:
        result["NextToken"] = token
    return result


def update_notification_rule(ctx: Context, params: Params) -> dict[str, Any]:
    _service(ctx).update(params)
    return {}


def delete_notification_rule(ctx: Context, params: Params) -> dict[str, Any]:
    _service(ctx).delete(params["Arn"])
    return {"Arn": params["Arn"]}


def subscribe(ctx: Context, params: Params) -> dict[str, Any]:
    _service(ctx).subscribe(params["Arn"], params["Target"])
    return {"Arn": params["Arn"]}


def unsubscribe(ctx: Context, params: Params) -> dict[str, Any]:
    _service(ctx).unsubscribe(params["Arn"], params["TargetAddress"])
    return {"Arn": params["Arn"]}


_TARGET_FIELDS = {"TARGET_TYPE": "type", "TARGET_ADDRESS": "address", "TARGET_STATUS": "status"}


def list_targets(ctx: Context, params: Params) -> dict[str, Any]:
    filters = _filters(params)
    targets: list[TargetRecord] = [
        t
        for t in _service(ctx).targets()
        if all(getattr(t, _TARGET_FIELDS[name]) == value for name, value in filters)
    ]
    page, token = _page(ctx, "ListTargets", params, targets, lambda t: t.address)
    result: dict[str, Any] = {"Targets": [target_summary(t) for t in page]}
    if token:
        result["NextToken"] = token
    return result


def delete_target(ctx: Context, params: Params) -> dict[str, Any]:
    _service(ctx).delete_target(params["TargetAddress"], bool(params.get("ForceUnsubscribeAll")))
    return {}


def _type_matches(event_type: EventType, name: str, value: str) -> bool:
    wanted = SERVICE_NAME if name == "SERVICE_NAME" else RESOURCE_TYPE
    return value.lower() == wanted.lower()


def list_event_types(ctx: Context, params: Params) -> dict[str, Any]:
    filters = _filters(params)
    types = [
        t for t in EVENT_TYPES if all(_type_matches(t, name, value) for name, value in filters)
    ]
    page, token = _page(ctx, "ListEventTypes", params, types, lambda t: t.id)
    result: dict[str, Any] = {"EventTypes": [t.summary() for t in page]}
    if token:
        result["NextToken"] = token
    return result


def tag_resource(ctx: Context, params: Params) -> dict[str, Any]:
    return {"Tags": _service(ctx).tag(params["Arn"], params["Tags"])}


def untag_resource(ctx: Context, params: Params) -> dict[str, Any]:
    _service(ctx).untag(params["Arn"], list(params["TagKeys"]))
    return {}


def list_tags_for_resource(ctx: Context, params: Params) -> dict[str, Any]:
    return {"Tags": _service(ctx).tags(params["Arn"])}


HANDLERS = {
    "CreateNotificationRule": create_notification_rule,
    "DescribeNotificationRule": describe_notification_rule,
    "ListNotificationRules": list_notification_rules,
    "UpdateNotificationRule": update_notification_rule,
    "DeleteNotificationRule": delete_notification_rule,
    "Subscribe": subscribe,
    "Unsubscribe": unsubscribe,
    "ListTargets": list_targets,
    "DeleteTarget": delete_target,
    "ListEventTypes": list_event_types,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
