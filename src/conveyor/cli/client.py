"""Client commands: each a thin CodePipeline call through boto3 to a running server.

``conveyor list``, ``show``, ``create``, ``update``, ``delete``, ``start``, ``stop``,
``retry``, ``approve``, ``reject``, ``enable`` and ``disable`` live here; ``executions``,
``history`` and ``logs`` in `conveyor.cli.history`. `register` adds them all to a group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from conveyor.cli import follow, history, render
from conveyor.cli.documents import DocumentError, load_pipeline
from conveyor.cli.remote import PAGE, Api, CommandError, action_of, remote, stage_of, state_of

PIPELINE_FILE = click.Path(dir_okay=False, path_type=Path)


def pairs(values: tuple[str, ...], what: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` options as pairs; a usage error for one without ``=``."""
    result = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected {what}=VALUE, got {value!r}")
        result.append((name, rest))
    return result


def pipeline_file(path: Path) -> dict[str, Any]:
    try:
        return load_pipeline(path)
    except DocumentError as exc:
        raise CommandError(str(exc)) from None


@click.command("list")
@remote
def list_pipelines(api: Api) -> None:
    """List the pipelines."""
    pipelines = api.pages("list_pipelines", "pipelines")
    api.emit(
        {"pipelines": pipelines},
        lambda: (
            render.table(
                ["NAME", "VERSION", "TYPE", "MODE", "UPDATED"],
                [
                    [
                        p.get("name", "?"),
                        str(p.get("version", "")),
                        p.get("pipelineType", ""),
                        p.get("executionMode", ""),
                        render.when(p.get("updated")),
                    ]
                    for p in pipelines
                ],
            )
            or "no pipelines"
        ),
    )


@click.command()
@click.argument("name")
@remote
def show(api: Api, name: str) -> None:
    """Show a pipeline's state: stages, actions, transitions, approvals, errors."""
    state = state_of(api, name)
    recent = api.call("list_pipeline_executions", pipelineName=name, maxResults=PAGE)
    triggers = {
        s["pipelineExecutionId"]: render.trigger(s, 100)
        for s in recent.get("pipelineExecutionSummaries") or ()
    }
    api.emit(state, lambda: render.pipeline_state(state, triggers))


@click.command()
@click.argument("file", type=PIPELINE_FILE)
@click.option("--tags", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@remote
def create(api: Api, file: Path, tags: tuple[str, ...]) -> None:
    """Create a pipeline from FILE (JSON or YAML, as get-pipeline prints it)."""
    params: dict[str, Any] = {"pipeline": pipeline_file(file)}
    if tags:
        params["tags"] = [{"key": k, "value": v} for k, v in pairs(tags, "KEY")]
    response = api.call("create_pipeline", **params)
    made = response.get("pipeline") or {}
    api.emit(response, f"created pipeline '{made.get('name')}' (version {made.get('version')})")


@click.command()
@click.argument("file", type=PIPELINE_FILE)
@remote
def update(api: Api, file: Path) -> None:
    """Update a pipeline from FILE; executions under way finish on the old version."""
    response = api.call("update_pipeline", pipeline=pipeline_file(file))
    made = response.get("pipeline") or {}
    api.emit(response, f"updated pipeline '{made.get('name')}' (version {made.get('version')})")


@click.command()
@click.argument("name")
@remote
def delete(api: Api, name: str) -> None:
    """Delete a pipeline with its executions (no error when there is none)."""
    response = api.call("delete_pipeline", name=name)
    api.emit(response, f"deleted pipeline '{name}'")


@click.command()
@click.argument("name")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="A variable.")
@click.option(
    "--revision", "revisions", multiple=True, metavar="ACTION=COMMIT", help="A source commit."
)
@click.option(
    "--wait", is_flag=True, help="Follow the execution until it ends; exit 0 if it succeeded."
)
@remote
def start(
    api: Api, name: str, variables: tuple[str, ...], revisions: tuple[str, ...], wait: bool
) -> None:
    """Start an execution of a pipeline; prints its id."""
    params: dict[str, Any] = {"name": name}
    if variables:
        params["variables"] = [{"name": k, "value": v} for k, v in pairs(variables, "NAME")]
    if revisions:
        params["sourceRevisions"] = [
            {"actionName": k, "revisionType": "COMMIT_ID", "revisionValue": v}
            for k, v in pairs(revisions, "ACTION")
        ]
    if not wait:
        response = api.call("start_pipeline_execution", **params)
        api.emit(response, str(response.get("pipelineExecutionId")))
        return
    stream = follow.Stream(api.endpoint, name)
    stream.open()  # before the start, so that none of its changes is missed
    try:
        response = api.call("start_pipeline_execution", **params)
        status = follow.follow(api, name, str(response.get("pipelineExecutionId")), stream)
    finally:
        stream.close()
    follow.exit_with(status)


@click.command()
@click.argument("name")
@click.argument("execution_id", required=False)
@click.option("--abandon", is_flag=True, help="Do not wait for running actions to finish.")
@click.option("--reason", help="Why it is stopped.")
@remote
def stop(api: Api, name: str, execution_id: str | None, abandon: bool, reason: str | None) -> None:
    """Stop an execution (default: the latest one in progress)."""
    if execution_id is None:
        summaries = api.items(
            "list_pipeline_executions", "pipelineExecutionSummaries", pipelineName=name
        )
        running = next((s for s in summaries if s.get("status") == "InProgress"), None)
        if running is None:
            raise CommandError(f"no execution of pipeline '{name}' is in progress")
        execution_id = str(running["pipelineExecutionId"])
    params: dict[str, Any] = {
        "pipelineName": name,
        "pipelineExecutionId": execution_id,
        "abandon": abandon,
    }
    if reason:
        params["reason"] = reason
    response = api.call("stop_pipeline_execution", **params)
    verb = "abandoning" if abandon else "stopping"
    api.emit(response, f"{verb} {response.get('pipelineExecutionId')}")


@click.command()
@click.argument("name")
@click.argument("stage")
@click.argument("execution_id", required=False)
@click.option(
    "--all", "all_actions", is_flag=True, help="Retry every action, not just failed ones."
)
@remote
def retry(api: Api, name: str, stage: str, execution_id: str | None, all_actions: bool) -> None:
    """Retry a stage of an execution (default: the stage's latest execution)."""
    if execution_id is None:
        latest = stage_of(state_of(api, name), stage).get("latestExecution") or {}
        if not latest.get("pipelineExecutionId"):
            raise CommandError(f"stage '{stage}' of pipeline '{name}' has not run yet")
        execution_id = str(latest["pipelineExecutionId"])
    response = api.call(
        "retry_stage_execution",
        pipelineName=name,
        stageName=stage,
        pipelineExecutionId=execution_id,
        retryMode="ALL_ACTIONS" if all_actions else "FAILED_ACTIONS",
    )
    api.emit(response, f"retrying stage '{stage}' of {response.get('pipelineExecutionId')}")


def _decide(api: Api, name: str, stage: str, action: str, verdict: str, summary: str) -> None:
    latest = action_of(state_of(api, name), stage, action).get("latestExecution") or {}
    token = latest.get("token")
    if latest.get("status") != "InProgress" or not token:
        raise CommandError(f"nothing waits for approval at {name}/{stage}/{action}")
    response = api.call(
        "put_approval_result",
        pipelineName=name,
        stageName=stage,
        actionName=action,
        result={"summary": summary, "status": verdict},
        token=token,
    )
    api.emit(response, f"{verdict.lower()} {stage}/{action}")


def _approval(verdict: str, doc: str) -> click.Command:
    @click.argument("name")
    @click.argument("stage")
    @click.argument("action")
    @click.option("--summary", default="", help="A note kept with the decision.")
    @remote
    def decide(api: Api, name: str, stage: str, action: str, summary: str) -> None:
        _decide(api, name, stage, action, verdict, summary or f"{verdict} with conveyor")

    decide.__doc__ = doc
    return click.command("approve" if verdict == "Approved" else "reject")(decide)


approve = _approval("Approved", "Approve a manual approval action that is waiting.")
reject = _approval("Rejected", "Reject a manual approval action that is waiting.")


@click.command()
@click.argument("name")
@click.argument("stage")
@click.option("--outbound", is_flag=True, help="The transition out of STAGE, not into it.")
@remote
def enable(api: Api, name: str, stage: str, outbound: bool) -> None:
    """Enable the transition into (or out of) a stage."""
    kind = "Outbound" if outbound else "Inbound"
    response = api.call(
        "enable_stage_transition", pipelineName=name, stageName=stage, transitionType=kind
    )
    api.emit(response, f"enabled the {kind.lower()} transition of stage '{stage}'")


@click.command()
@click.argument("name")
@click.argument("stage")
@click.option("--reason", required=True, help="Why (shown with the stage).")
@click.option("--outbound", is_flag=True, help="The transition out of STAGE, not into it.")
@remote
def disable(api: Api, name: str, stage: str, reason: str, outbound: bool) -> None:
    """Disable the transition into (or out of) a stage; executions wait in front of it."""
    kind = "Outbound" if outbound else "Inbound"
    response = api.call(
        "disable_stage_transition",
        pipelineName=name,
        stageName=stage,
        transitionType=kind,
        reason=reason,
    )
    api.emit(response, f"disabled the {kind.lower()} transition of stage '{stage}'")


COMMANDS = (
    list_pipelines,
    show,
    create,
    update,
    delete,
    start,
    stop,
    retry,
    approve,
    reject,
    enable,
    disable,
    *history.COMMANDS,
    follow.watch,
)


def register(group: click.Group) -> None:
    """Add every client command to ``group``."""
    for command in COMMANDS:
        group.add_command(command)
