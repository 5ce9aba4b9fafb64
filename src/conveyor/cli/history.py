"""What has run: ``conveyor executions``, ``history`` (action executions) and ``logs``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from conveyor.cli import render
from conveyor.cli.remote import Api, CommandError, action_of, remote, signed_get, state_of

CHUNK = 64 * 1024
READ_TIMEOUT = 60


def _end(item: dict[str, Any], end_key: str) -> Any:
    """When it ended, or now while it is still in progress."""
    if item.get("status") in ("InProgress", "Stopping"):
        return datetime.now(UTC)
    return item.get(end_key)


def _sources(summary: dict[str, Any]) -> str:
    return ", ".join(
        f"{s.get('actionName')}@{str(s.get('revisionId') or '?')[:10]}"
        for s in summary.get("sourceRevisions") or ()
    )


@click.command()
@click.argument("name")
@click.option("--max", "limit", type=click.IntRange(1), default=20, show_default=True)
@remote
def executions(api: Api, name: str, limit: int) -> None:
    """List a pipeline's executions, newest first."""
    found = api.pages(
        "list_pipeline_executions", "pipelineExecutionSummaries", limit, pipelineName=name
    )
    rows = [
        [
            s.get("pipelineExecutionId", "?"),
            s.get("status") or render.NONE,
            render.trigger_type(s),
            render.when(s.get("startTime")),
            render.duration(s.get("startTime"), _end(s, "lastUpdateTime")),
            _sources(s),
            render.one_line(s.get("statusSummary") or (s.get("stopTrigger") or {}).get("reason")),
            render.one_line((s.get("trigger") or {}).get("triggerDetail"), 70),
        ]
        for s in found
    ]
    headers = [
        "EXECUTION",
        "STATUS",
        "TRIGGER",
        "STARTED",
        "DURATION",
        "SOURCES",
        "SUMMARY",
        "STARTED BY",
    ]
    api.emit(
        {"pipelineExecutionSummaries": found},
        lambda: render.table(headers, rows, {1: render.status}) or f"'{name}' has not run yet",
    )


def _latest_execution(api: Api, name: str) -> str:
    found = api.pages(
        "list_pipeline_executions", "pipelineExecutionSummaries", 1, pipelineName=name
    )
    if not found:
        raise CommandError(f"pipeline '{name}' has no executions")
    return str(found[0]["pipelineExecutionId"])


def _summary(detail: dict[str, Any]) -> str:
    result = (detail.get("output") or {}).get("executionResult") or {}
    error = result.get("errorDetails") or {}
    return render.one_line(result.get("externalExecutionSummary") or error.get("message"))


@click.command()
@click.argument("name")
@click.argument("execution_id", required=False)
@remote
def history(api: Api, name: str, execution_id: str | None) -> None:
    """List the action executions of an execution (default: the latest)."""
    execution_id = execution_id or _latest_execution(api, name)
    details = api.pages(
        "list_action_executions",
        "actionExecutionDetails",
        pipelineName=name,
        filter={"pipelineExecutionId": execution_id},
    )
    ordered = sorted(details, key=lambda d: (d.get("startTime") is None, d.get("startTime")))
    rows = [
        [
            d.get("stageName", "?"),
            d.get("actionName", "?"),
            d.get("status") or render.NONE,
            render.when(d.get("startTime")),
            render.duration(d.get("startTime"), _end(d, "lastUpdateTime")),
            _summary(d),
        ]
        for d in ordered
    ]
    headers = ["STAGE", "ACTION", "STATUS", "START", "DURATION", "SUMMARY"]
    api.emit(
        {"actionExecutionDetails": details},
        lambda: (
            f"execution {execution_id}\n"
            + (render.table(headers, rows, {2: render.status}) or "no actions have run")
        ),
    )


def _log_url(api: Api, name: str, stage: str, action: str) -> dict[str, Any]:
    latest = action_of(state_of(api, name), stage, action).get("latestExecution") or {}
    if not latest.get("externalExecutionUrl"):
        raise CommandError(f"action {stage}/{action} of pipeline '{name}' has no log yet")
    return dict(latest)


@click.command()
@click.argument("name")
@click.argument("stage")
@click.argument("action")
@click.option("--follow", "-f", is_flag=True, help="Keep printing while the action runs.")
@remote
def logs(api: Api, name: str, stage: str, action: str, follow: bool) -> None:
    """Print the log of an action's latest execution."""
    import urllib.request  # here: it imports http.client and email, which take a while

    latest = _log_url(api, name, stage, action)
    url = str(latest["externalExecutionUrl"])
    if follow:
        url += ("&" if "?" in url else "?") + "follow=1"
    request = signed_get(url)
    with urllib.request.urlopen(request, timeout=None if follow else READ_TIMEOUT) as response:
        if api.as_json:
            text = response.read().decode("utf-8", errors="replace")
            fields = ("actionExecutionId", "status", "externalExecutionUrl")
            api.emit({**{k: latest.get(k) for k in fields}, "log": text}, "")
            return
        while chunk := response.read1(CHUNK):
            click.echo(chunk, nl=False)


COMMANDS = (executions, history, logs)
