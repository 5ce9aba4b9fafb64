"""``conveyor validate FILE``: the checks a server applies to a pipeline, offline.

First the service model's shapes (required members, lengths, patterns, enums, types), every
violation at its path in the document; when the shapes are fine, the structural rules with the
built-in action catalog. Custom and third-party action types cannot be known without a
server, so they are warnings and the rules that need the type are skipped for them. By default
``roleArn`` and ``artifactStore`` may be left out, as for local use; ``--server`` checks the
file exactly as a server would get it.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from conveyor.cli import render
from conveyor.cli.documents import DocumentError, for_local_use, read_document
from conveyor.domain.actiontype import ActionOwner, ActionType, ActionTypeId
from conveyor.domain.catalog import builtin_action_type
from conveyor.domain.pipeline import ExecutionMode, Pipeline, parse_pipeline
from conveyor.domain.structure import check, effective_type

UNREADABLE = 2
_CONSTRAINT = "' failed to satisfy constraint: "
_MEMBER = re.compile(r"\.(\d+)\.member")


@dataclass(frozen=True, slots=True)
class Finding:
    where: str
    message: str
    warning: bool = False


def document_path(model_path: str) -> str:
    """``pipeline.stages.1.member.actions.2.member.name`` as ``stages[0].actions[1].name``."""
    path = _MEMBER.sub(lambda m: f"[{int(m.group(1)) - 1}]", model_path)
    return path.removeprefix("pipeline").removeprefix(".") or "pipeline"


def model_finding(message: str) -> Finding:
    """A model validation message as the constraint at its document path."""
    head, found, constraint = message.rpartition(_CONSTRAINT)
    value, at, path = head.rpartition(" at '")
    if not found or not at:
        return Finding("pipeline", message)
    value = value.removeprefix("Value ")
    detail = "" if value == "null" else f" (got {value})"
    return Finding(document_path(path), constraint + detail)


def _ignored(original: Any, kept: Any, path: str) -> list[Finding]:
    """Members the model does not know: the server drops them, which may hide a typo."""
    found: list[Finding] = []
    if isinstance(original, dict) and isinstance(kept, dict):
        for key, value in original.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in kept:
                if value is not None:
                    found.append(Finding(where, "not in the model: the server ignores it", True))
            else:
                found += _ignored(value, kept[key], where)
    elif isinstance(original, list) and isinstance(kept, list):
        for index, (value, item) in enumerate(zip(original, kept, strict=False)):
            found += _ignored(value, item, f"{path}[{index}]")
    return found


def findings(declaration: dict[str, Any], region: str) -> list[Finding]:
    """Every problem and warning of ``declaration``, model shapes first."""
    from conveyor.api.model import operation  # here: loading the model takes a while
    from conveyor.api.validate import validate_input

    params: dict[str, Any] = {"pipeline": copy.deepcopy(declaration)}
    errors = validate_input(operation("CreatePipeline").input_shape, params)
    found = _ignored(declaration, params.get("pipeline"), "")
    if errors:
        return [model_finding(e) for e in errors] + found
    cleaned = params["pipeline"]
    unknown: set[ActionTypeId] = set()

    def resolve(type_id: ActionTypeId) -> ActionType | None:
        known = builtin_action_type(type_id)
        if known is None and type_id.owner != ActionOwner.AWS:
            unknown.add(type_id)
        return known

    pipeline = parse_pipeline(cleaned)
    for problem in check(pipeline, resolve, region):
        path = problem.path
        if path[-1:] == ("actionTypeId",) and _type_at(pipeline, path) in unknown:
            found.append(
                Finding(
                    problem.where,
                    f"action type {_type_at(pipeline, path)} is not built in, so it cannot "
                    "be checked offline: its configuration and artifacts are not checked",
                    warning=True,
                )
            )
        else:
            found.append(Finding(problem.where, problem.message))
    return found


def _type_at(pipeline: Pipeline, path: tuple[str | int, ...]) -> ActionTypeId | None:
    if len(path) < 4 or not isinstance(path[1], int) or not isinstance(path[3], int):
        return None
    return pipeline.stages[path[1]].actions[path[3]].type_id


def summary(declaration: dict[str, Any]) -> str:
    pipeline = parse_pipeline(declaration)
    actions = sum(len(stage.actions) for stage in pipeline.stages)
    mode = pipeline.execution_mode or ExecutionMode.SUPERSEDED
    return (
        f"pipeline '{pipeline.name}' is valid: {len(pipeline.stages)} stages, {actions} actions "
        f"({effective_type(pipeline)}, {mode})"
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--server",
    "as_server",
    is_flag=True,
    help="Validate exactly what a server would get: no local defaults for roleArn and "
    "artifactStore.",
)
@click.option(
    "--region",
    default=lambda: os.environ.get("CONVEYOR_REGION", "us-east-1"),
    show_default="$CONVEYOR_REGION or us-east-1",
    help="The server's Region, for artifactStores.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def validate(file: Path, as_server: bool, region: str, as_json: bool) -> None:
    """Check a pipeline file as a server would; every problem with its path in the file."""
    try:
        declaration = read_document(file)
    except DocumentError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(UNREADABLE) from None
    if not as_server:
        declaration = for_local_use(declaration, file.resolve().parent)
    found = findings(declaration, region)
    problems = [f for f in found if not f.warning]
    if as_json:
        click.echo(
            render.as_json(
                {
                    "file": str(file),
                    "valid": not problems,
                    "problems": [
                        {"path": f.where, "message": f.message, "warning": f.warning} for f in found
                    ],
                }
            )
        )
    else:
        for finding in found:
            where = click.style(finding.where, fg="yellow" if finding.warning else "red")
            label = click.style("warning: ", fg="yellow") if finding.warning else ""
            click.echo(f"{where}: {label}{finding.message}")
        if problems:
            click.echo(click.style(_plural(len(problems), "problem"), fg="red", bold=True))
        else:
            click.echo(f"{file}: {summary(declaration)}")
    if problems:
        raise click.exceptions.Exit(1)


def register(group: click.Group) -> None:
    """Add ``validate`` to ``group``."""
    group.add_command(validate)
