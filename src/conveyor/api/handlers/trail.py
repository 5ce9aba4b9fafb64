"""CloudTrail's LookupEvents over the audit trail: newest first, one page at a time."""

from __future__ import annotations

from typing import Any

from conveyor.api.context import Context, Params
from conveyor.domain.errors import (
    InvalidLookupAttributesException,
    InvalidTimeRangeException,
    UnsupportedOperationException,
)

DEFAULT_PAGE = 50


def _filters(attributes: list[dict[str, str]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for attribute in attributes:
        key, value = attribute["AttributeKey"], attribute["AttributeValue"]
        if key in found:
            raise InvalidLookupAttributesException(f"LookupAttributes names {key} twice.")
        if key == "ReadOnly":
            if value not in ("true", "false"):
                raise InvalidLookupAttributesException(
                    f"ReadOnly must be 'true' or 'false', not '{value}'."
                )
            found[key] = value == "true"
        else:
            found[key] = value
    return found


def lookup_events(ctx: Context, params: Params) -> dict[str, Any]:
    if ctx.access is None:
        raise UnsupportedOperationException("This server keeps no audit trail.")
    equal = _filters(params.get("LookupAttributes") or [])
    start, end = params.get("StartTime"), params.get("EndTime")
    if start is not None and end is not None and start > end:
        raise InvalidTimeRangeException("StartTime must not be later than EndTime.")
    query = {"a": sorted(equal.items()), "s": start, "e": end}
    position = ctx.tokens.read("LookupEvents", query, params.get("NextToken"))
    limit = params.get("MaxResults") or DEFAULT_PAGE
    rows = ctx.access.audit.lookup(
        equal, start, end, limit + 1, tuple(position) if position else None
    )
    page, more = rows[:limit], len(rows) > limit
    events = [
        {
            "EventId": row.event_id,
            "EventName": row.event_name,
            "ReadOnly": "true" if row.read_only else "false",
            "AccessKeyId": row.access_key,
            "EventTime": row.event_time,
            "EventSource": row.event_source,
            "Username": row.username,
            "Resources": [{"ResourceType": row.resource_type, "ResourceName": row.resource_name}]
            if row.resource_name
            else [],
            "CloudTrailEvent": row.record,
        }
        for row in page
    ]
    result: dict[str, Any] = {"Events": events}
    if more:
        last = page[-1]
        result["NextToken"] = ctx.tokens.issue(
            "LookupEvents", query, [last.event_time, last.event_id]
        )
    return result
