"""CodeBuild's project operations: CreateProject, UpdateProject, DeleteProject,
BatchGetProjects, ListProjects.

CodeBuild answers a page token it did not issue with ``InvalidInputException``.
"""

from __future__ import annotations

from typing import Any

from conveyor.api.context import Context, Params
from conveyor.domain.errors import InvalidInputException, InvalidNextTokenException


def create_project(ctx: Context, params: Params) -> dict[str, Any]:
    return {"project": ctx.services.projects.create(params).wire()}


def update_project(ctx: Context, params: Params) -> dict[str, Any]:
    return {"project": ctx.services.projects.update(params).wire()}


def delete_project(ctx: Context, params: Params) -> None:
    ctx.services.projects.delete(params["name"])


def batch_get_projects(ctx: Context, params: Params) -> dict[str, Any]:
    views, missing = ctx.services.projects.batch_get(params["names"])
    return {"projects": [view.wire() for view in views], "projectsNotFound": missing}


def list_projects(ctx: Context, params: Params) -> dict[str, Any]:
    sort_by = params.get("sortBy") or "NAME"
    descending = params.get("sortOrder") == "DESCENDING"
    query = {"by": sort_by, "desc": descending}
    try:
        position = ctx.tokens.read("ListProjects", query, params.get("nextToken"))
    except InvalidNextTokenException as error:
        raise InvalidInputException(error.message) from None
    after = (position[0], position[1]) if position else None
    names, following = ctx.services.projects.page(sort_by, descending, after)
    result: dict[str, Any] = {"projects": names}
    if following is not None:
        result["nextToken"] = ctx.tokens.issue("ListProjects", query, list(following))
    return result


HANDLERS = {
    "CreateProject": create_project,
    "UpdateProject": update_project,
    "DeleteProject": delete_project,
    "BatchGetProjects": batch_get_projects,
    "ListProjects": list_projects,
}
