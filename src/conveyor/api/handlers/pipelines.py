"""Pipeline operations: Create, Get, Update, Delete and ListPipelines (which shows only
the pipelines the caller may GetPipeline)."""

from __future__ import annotations

from typing import Any

from conveyor.api.context import Context, Params
from conveyor.api.shapes import compact, tags_from, tags_shape

DEFAULT_PAGE = 100


def create_pipeline(ctx: Context, params: Params) -> dict[str, Any]:
    created = ctx.services.pipelines.create(
        params["pipeline"], tags_from(params.get("tags")), caller=ctx.caller
    )
    return compact(pipeline=created.declaration, tags=tags_shape(created.tags) or None)


def get_pipeline(ctx: Context, params: Params) -> dict[str, Any]:
    view = ctx.services.pipelines.get(params["name"], params.get("version"))
    return {
        "pipeline": view.declaration,
        "metadata": {"pipelineArn": view.arn, "created": view.created, "updated": view.updated},
    }


def update_pipeline(ctx: Context, params: Params) -> dict[str, Any]:
    return {"pipeline": ctx.services.pipelines.update(params["pipeline"])}


def delete_pipeline(ctx: Context, params: Params) -> None:
    ctx.services.pipelines.delete(params["name"])


def list_pipelines(ctx: Context, params: Params) -> dict[str, Any]:
    after = ctx.tokens.read("ListPipelines", {}, params.get("nextToken"))
    rows, following = ctx.services.pipelines.page(after, params.get("maxResults") or DEFAULT_PAGE)
    return compact(
        pipelines=[
            {
                "name": row.name,
                "version": row.version,
                "pipelineType": row.pipeline_type,
                "executionMode": row.execution_mode,
                "created": row.created,
                "updated": row.updated,
            }
            for row in rows
            if ctx.permits("GetPipeline", ctx.services.scope.pipeline(row.name))
        ],
        nextToken=ctx.tokens.issue("ListPipelines", {}, following) if following else None,
    )
