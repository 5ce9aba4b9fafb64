"""``conveyor validate FILE``: the checks a server applies to a pipeline, offline; and the one
path by which ``run``, ``create`` and ``update`` read a pipeline file (`checked`), so that all
four accept and refuse the same files with the same messages.

First the service model's shapes (required members, lengths, patterns, enums, types), every
violation at its path in the document; when the shapes are fine, the structural rules with the
built-in action catalog. Custom and third-party action types cannot be known offline, so they
are warnings and the rules that need the type are skipped for them; ``--server`` asks the
server for its types instead. Members the model does not know are warnings (the server drops
them), with the member meant when one is close. Then what would only fail an execution later
(`conveyor.cli.crosscheck`: variable references, the buildspecs it can read). Each finding
carries its line and column in the file. By default ``roleArn`` and ``artifactStore`` may be
left out, as for local use; ``--server`` checks the file exactly as a server would get it.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

from conveyor.cli import crosscheck, render
from conveyor.cli.documents import (
    DocumentError,
    for_local_use,
    place_of,
    positions,
    read_document,
)
from conveyor.domain.actiontype import ActionOwner, ActionType, ActionTypeId
from conveyor.domain.catalog import BUILTIN_ACTION_TYPES, builtin_action_type
from conveyor.domain.customtypes import from_custom
from conveyor.domain.pipeline import ExecutionMode, Pipeline, parse_pipeline
from conveyor.domain.structure import check, effective_type

UNREADABLE = 2
Registered = dict[ActionTypeId, ActionType]
_CONSTRAINT = "' failed to satisfy constraint: "
_MEMBER = re.compile(r"\.(\d+)\.member")


@dataclass(frozen=True, slots=True)
class Finding:
    where: str
    message: str
    warning: bool = False
    line: int | None = None
    column: int | None = None

    def text(self, file: Path | str) -> str:
        """``file:line:column: where: message``, as compilers print a problem."""
        place = f"{self.line}:{self.column}:" if self.line is not None else ""
        label = "warning: " if self.warning else ""
        return f"{file}:{place} {self.where}: {label}{self.message}"


class InvalidPipeline(DocumentError):
    """A pipeline file with problems; the message lists them as ``conveyor validate`` does."""


@dataclass(frozen=True, slots=True)
class Examined:
    """A declaration as a server would keep it (unmodelled members dropped), and its findings."""

    declaration: dict[str, Any]
    findings: list[Finding]

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.warning]


def suggestion(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely meant: the same but for case, else the closest."""
    options = list(choices)
    for option in options:
        if option.lower() == word.lower():
            return option
    import difflib  # here: only a file with problems needs it

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return close[0] if close else None


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    meant = suggestion(word, choices)
    return f" Did you mean '{meant}'?" if meant else ""


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


def _unmodelled(shape: Any, value: Any, path: str) -> list[Finding]:
    """Members the model does not know: the server drops them, which may hide a typo."""
    found: list[Finding] = []
    kind = getattr(shape, "type_name", None)
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in members:
                found += _unmodelled(members[key], item, where)
            elif item is not None:
                hint = _did_you_mean(str(key), (m for m in members if m not in value))
                message = f"not in the model: the server ignores it.{hint}"
                found.append(Finding(where, message, warning=True))
    elif kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            found += _unmodelled(shape.member, item, f"{path}[{index}]")
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            found += _unmodelled(shape.value, item, f"{path}.{key}")
    return found


def _unknown_type(type_id: ActionTypeId | None) -> str:
    """A hint for an AWS type that is not in the catalog: the provider probably meant."""
    if type_id is None:
        return ""
    same = [t.id for t in BUILTIN_ACTION_TYPES if t.id.category == type_id.category]
    hint = _did_you_mean(type_id.provider, sorted({t.provider for t in same}))
    if not hint:
        providers = sorted({t.id.provider for t in BUILTIN_ACTION_TYPES})
        hint = _did_you_mean(type_id.provider, providers)
    return hint.replace("Did you mean", "Did you mean provider")


def examine(
    declaration: dict[str, Any], region: str, registered: Registered | None = None
) -> Examined:
    """``declaration`` checked as a server checks it, model shapes first; ``registered``: the
    custom and third-party types of the server (unknown types are then errors, as there)."""
    from conveyor.api.model import input_shape
    from conveyor.api.validate import validate_input

    shape = input_shape("CreatePipeline")
    params: dict[str, Any] = {"pipeline": copy.deepcopy(declaration)}
    errors = validate_input(shape, params)
    cleaned = params.get("pipeline") or {}
    found = _unmodelled(shape.members["pipeline"], declaration, "") if shape else []
    if errors:
        return Examined(cleaned, [model_finding(e) for e in errors] + found)
    found += _structural(cleaned, region, registered)
    return Examined(cleaned, found)


def _structural(
    cleaned: dict[str, Any], region: str, registered: Registered | None
) -> list[Finding]:
    found: list[Finding] = []
    unknown: set[ActionTypeId] = set()

    def resolve(type_id: ActionTypeId) -> ActionType | None:
        known = builtin_action_type(type_id)
        if known is None and registered is not None:
            return registered.get(type_id)
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
        elif path[-1:] == ("actionTypeId",):
            hint = _unknown_type(_type_at(pipeline, path))
            found.append(Finding(problem.where, problem.message + hint))
        else:
            found.append(Finding(problem.where, problem.message))
    for extra in crosscheck.problems(pipeline, _did_you_mean):
        found.append(Finding(extra.where, extra.message))
    return found


def _region() -> str:
    return os.environ.get("CONVEYOR_REGION", "us-east-1")


def server_types(endpoint: str) -> Registered:
    """The custom and third-party action types the server at ``endpoint`` has."""
    from botocore.exceptions import BotoCoreError, ClientError

    from conveyor.cli.remote import Api

    found: Registered = {}
    api = Api(endpoint, as_json=False)
    token: str | None = None
    try:
        while True:  # ListActionTypes pages without maxResults
            page = api.call("list_action_types", **({"nextToken": token} if token else {}))
            for raw in page.get("actionTypes") or ():
                type_id = ActionTypeId(**raw["id"])
                if type_id.owner != ActionOwner.AWS:
                    properties = raw.get("actionConfigurationProperties")
                    definition = {**raw, "configurationProperties": properties}
                    found[type_id] = from_custom(type_id, definition)
            token = page.get("nextToken")
            if not token:
                break
    except (BotoCoreError, ClientError) as exc:
        raise DocumentError(
            f"cannot ask the server at {endpoint} for its action types: {exc}"
        ) from exc
    return found


def examine_file(
    path: Path,
    *,
    local: bool = True,
    region: str | None = None,
    registered: Registered | None = None,
) -> Examined:
    """The pipeline in ``path`` checked, each finding with its line and column in the file."""
    declaration = read_document(path)
    if local:
        declaration = for_local_use(declaration, path.resolve().parent)
    examined = examine(declaration, region or _region(), registered)
    if not examined.findings:
        return examined  # nothing to place: the file need not be read again
    places = positions(path)
    located = []
    for finding in examined.findings:
        place = place_of(finding.where, places)
        located.append(
            finding if place is None else replace(finding, line=place[0], column=place[1])
        )
    return replace(examined, findings=located)


def checked(path: Path) -> dict[str, Any]:
    """The declaration in ``path`` with local defaults, as a server would keep it; warnings
    on stderr, and `InvalidPipeline` with the problems' lines when it has any."""
    examined = examine_file(path)
    for finding in examined.findings:
        if finding.warning:
            click.echo(finding.text(path), err=True)
    problems = examined.problems
    if problems:
        lines = [f.text(path) for f in problems]
        raise InvalidPipeline("\n".join([*lines, _plural(len(problems), "problem")]))
    return examined.declaration


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
    help="Validate exactly as the server at --endpoint would: no local defaults for roleArn "
    "and artifactStore, and the custom and third-party action types it has.",
)
@click.option(
    "--endpoint",
    default=lambda: os.environ.get("CONVEYOR_ENDPOINT", "http://127.0.0.1:8470"),
    show_default="$CONVEYOR_ENDPOINT or http://127.0.0.1:8470",
    help="The server --server asks for its action types.",
)
@click.option(
    "--region",
    default=lambda: os.environ.get("CONVEYOR_REGION", "us-east-1"),
    show_default="$CONVEYOR_REGION or us-east-1",
    help="The server's Region, for artifactStores.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def validate(file: Path, as_server: bool, endpoint: str, region: str, as_json: bool) -> None:
    """Check a pipeline file as a server would; every problem with its line, column and path."""
    try:
        registered = server_types(endpoint) if as_server else None
        examined = examine_file(file, local=not as_server, region=region, registered=registered)
    except DocumentError as exc:
        if as_json:
            click.echo(render.as_json({"file": str(file), "valid": False, "error": str(exc)}))
        else:
            click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(UNREADABLE) from None
    found, problems = examined.findings, examined.problems
    if as_json:
        click.echo(render.as_json(_report(file, examined)))
    else:
        for finding in found:
            place = f"{finding.line}:{finding.column}:" if finding.line is not None else ""
            where = click.style(finding.where, fg="yellow" if finding.warning else "red")
            label = click.style("warning: ", fg="yellow") if finding.warning else ""
            click.echo(f"{file}:{place} {where}: {label}{finding.message}")
        if problems:
            click.echo(click.style(_plural(len(problems), "problem"), fg="red", bold=True))
        else:
            click.echo(f"{file}: {summary(examined.declaration)}")
    if problems:
        raise click.exceptions.Exit(1)


def _report(file: Path, examined: Examined) -> dict[str, Any]:
    return {
        "file": str(file),
        "valid": not examined.problems,
        "problems": [
            {
                "path": f.where,
                "line": f.line,
                "column": f.column,
                "message": f.message,
                "warning": f.warning,
            }
            for f in examined.findings
        ],
    }


def register(group: click.Group) -> None:
    """Add ``validate`` to ``group``."""
    group.add_command(validate)
