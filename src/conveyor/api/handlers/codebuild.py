"""CodeBuild's operations: projects (CreateProject, UpdateProject, DeleteProject,
BatchGetProjects, ListProjects), builds (StartBuild, StopBuild, RetryBuild, BatchGetBuilds,
ListBuilds, ListBuildsForProject, BatchDeleteBuilds), report groups and reports
(CreateReportGroup, BatchGetReportGroups, DeleteReportGroup, ListReportGroups, ListReports,
ListReportsForReportGroup, BatchGetReports, DeleteReport, DescribeTestCases).

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


# -- builds --


def _initiator(ctx: Context) -> str:
    """Who started a build, as CodeBuild writes it: the user's or role's name."""
    resource = ctx.caller.rpartition(":")[2]
    return resource.partition("/")[2] or resource or "conveyor"


def _position(ctx: Context, operation: str, query: dict[str, Any], token: str | None) -> Any:
    try:
        return ctx.tokens.read(operation, query, token)
    except InvalidNextTokenException as error:
        raise InvalidInputException(error.message) from None


def start_build(ctx: Context, params: Params) -> dict[str, Any]:
    return {"build": ctx.services.builds.start(params, _initiator(ctx))}


def stop_build(ctx: Context, params: Params) -> dict[str, Any]:
    return {"build": ctx.services.builds.stop(params["id"])}


def retry_build(ctx: Context, params: Params) -> dict[str, Any]:
    return {"build": ctx.services.builds.retry(params.get("id"), _initiator(ctx))}


def batch_get_builds(ctx: Context, params: Params) -> dict[str, Any]:
    builds, missing = ctx.services.builds.batch_get(params["ids"])
    return {"builds": builds, "buildsNotFound": missing}


def _list_builds(ctx: Context, params: Params, operation: str, project: str | None) -> Any:
    descending = params.get("sortOrder") != "ASCENDING"
    query = {"desc": descending, "project": project}
    position = _position(ctx, operation, query, params.get("nextToken"))
    after = (position[0], position[1]) if position else None
    page = ctx.services.builds.page(project, descending, after)
    result: dict[str, Any] = {"ids": page.items}
    if page.following is not None:
        result["nextToken"] = ctx.tokens.issue(operation, query, list(page.following))
    return result


def list_builds(ctx: Context, params: Params) -> dict[str, Any]:
    result: dict[str, Any] = _list_builds(ctx, params, "ListBuilds", None)
    return result


def list_builds_for_project(ctx: Context, params: Params) -> dict[str, Any]:
    result: dict[str, Any] = _list_builds(
        ctx, params, "ListBuildsForProject", params["projectName"]
    )
    return result


def batch_delete_builds(ctx: Context, params: Params) -> dict[str, Any]:
    deleted, refused = ctx.services.builds.delete(params["ids"])
    return {"buildsDeleted": deleted, "buildsNotDeleted": refused}


# -- report groups and reports --


def create_report_group(ctx: Context, params: Params) -> dict[str, Any]:
    return {"reportGroup": ctx.services.reports.create_group(params)}


def batch_get_report_groups(ctx: Context, params: Params) -> dict[str, Any]:
    groups, missing = ctx.services.reports.batch_get_groups(params["reportGroupArns"])
    return {"reportGroups": groups, "reportGroupsNotFound": missing}


def delete_report_group(ctx: Context, params: Params) -> None:
    ctx.services.reports.delete_group(params["arn"], bool(params.get("deleteReports")))


def list_report_groups(ctx: Context, params: Params) -> dict[str, Any]:
    sort_by = params.get("sortBy") or "NAME"
    descending = params.get("sortOrder") == "DESCENDING"
    limit = int(params.get("maxResults") or 100)
    query = {"by": sort_by, "desc": descending, "limit": limit}
    position = _position(ctx, "ListReportGroups", query, params.get("nextToken"))
    after = (position[0], position[1]) if position else None
    page = ctx.services.reports.groups_page(sort_by, descending, after, limit)
    result: dict[str, Any] = {"reportGroups": page.items}
    if page.following is not None:
        result["nextToken"] = ctx.tokens.issue("ListReportGroups", query, list(page.following))
    return result


def _list_reports(ctx: Context, params: Params, operation: str, group: str | None) -> Any:
    descending = params.get("sortOrder") != "ASCENDING"
    status = (params.get("filter") or {}).get("status")
    limit = int(params.get("maxResults") or 100)
    query = {"desc": descending, "group": group, "status": status, "limit": limit}
    position = _position(ctx, operation, query, params.get("nextToken"))
    after = (position[0], position[1]) if position else None
    page = ctx.services.reports.reports_page(group, status, descending, after, limit)
    result: dict[str, Any] = {"reports": page.items}
    if page.following is not None:
        result["nextToken"] = ctx.tokens.issue(operation, query, list(page.following))
    return result


def list_reports(ctx: Context, params: Params) -> dict[str, Any]:
    result: dict[str, Any] = _list_reports(ctx, params, "ListReports", None)
    return result


def list_reports_for_report_group(ctx: Context, params: Params) -> dict[str, Any]:
    group = params["reportGroupArn"]
    result: dict[str, Any] = _list_reports(ctx, params, "ListReportsForReportGroup", group)
    return result


def batch_get_reports(ctx: Context, params: Params) -> dict[str, Any]:
    reports, missing = ctx.services.reports.batch_get_reports(params["reportArns"])
    return {"reports": reports, "reportsNotFound": missing}


def delete_report(ctx: Context, params: Params) -> None:
    ctx.services.reports.delete_report(params["arn"])


def describe_test_cases(ctx: Context, params: Params) -> dict[str, Any]:
    report = params["reportArn"]
    wanted = params.get("filter") or {}
    status, keyword = wanted.get("status"), wanted.get("keyword")
    limit = int(params.get("maxResults") or 50)
    query = {"report": report, "status": status, "keyword": keyword, "limit": limit}
    position = _position(ctx, "DescribeTestCases", query, params.get("nextToken"))
    cases, following = ctx.services.reports.cases(
        report, status, keyword, int(position or 0), limit
    )
    result: dict[str, Any] = {"testCases": cases}
    if following is not None:
        result["nextToken"] = ctx.tokens.issue("DescribeTestCases", query, following)
    return result


HANDLERS = {
    "CreateProject": create_project,
    "UpdateProject": update_project,
    "DeleteProject": delete_project,
    "BatchGetProjects": batch_get_projects,
    "ListProjects": list_projects,
    "StartBuild": start_build,
    "StopBuild": stop_build,
    "RetryBuild": retry_build,
    "BatchGetBuilds": batch_get_builds,
    "ListBuilds": list_builds,
    "ListBuildsForProject": list_builds_for_project,
    "BatchDeleteBuilds": batch_delete_builds,
    "CreateReportGroup": create_report_group,
    "BatchGetReportGroups": batch_get_report_groups,
    "DeleteReportGroup": delete_report_group,
    "ListReportGroups": list_report_groups,
    "ListReports": list_reports,
    "ListReportsForReportGroup": list_reports_for_report_group,
    "BatchGetReports": batch_get_reports,
    "DeleteReport": delete_report,
    "DescribeTestCases": describe_test_cases,
}
