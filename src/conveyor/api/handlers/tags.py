"""Tag operations: TagResource, UntagResource, ListTagsForResource."""

from __future__ import annotations

from typing import Any

from conveyor.api.context import Context, Params
from conveyor.api.shapes import compact, tags_from, tags_shape


def tag_resource(ctx: Context, params: Params) -> dict[str, Any]:
    ctx.services.tags.tag(params["resourceArn"], tags_from(params["tags"]))
    return {}


def untag_resource(ctx: Context, params: Params) -> dict[str, Any]:
    ctx.services.tags.untag(params["resourceArn"], list(params["tagKeys"]))
    return {}


def list_tags_for_resource(ctx: Context, params: Params) -> dict[str, Any]:
    """Every tag in one page unless ``maxResults`` asks for smaller pages."""
    arn = params["resourceArn"]
    query = {"resourceArn": arn}
    start = ctx.tokens.read("ListTagsForResource", query, params.get("nextToken")) or 0
    tags = tags_shape(ctx.services.tags.of(arn))
    size = params.get("maxResults") or len(tags)
    end = start + size
    return compact(
        tags=tags[start:end],
        nextToken=ctx.tokens.issue("ListTagsForResource", query, end) if end < len(tags) else None,
    )
