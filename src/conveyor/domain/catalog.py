"""The built-in action types: the CodePipeline action structure reference, as data.

``catalog.json`` next to this module holds one entry per type: its configuration properties
(required, key, secret, queryable, the values a property takes, the modes that make it
required), its input and output artifact counts, the default timeout of one job, and how it
runs here: by Conveyor itself (``local``), by Conveyor once a setting names what it works on
(``needs``: the service's endpoint in ``aws_endpoints``, say), or by a job worker only. The
AWS-named types follow the reference; ``Source/Git`` is Conveyor's own. Reading the table is
the only thing done here: engines and the API look types up; custom types are kept elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from conveyor.domain.actiontype import (
    ActionType,
    ActionTypeId,
    ArtifactBounds,
    ConfigurationProperty,
    PropertyType,
)

__all__ = [
    "BUILTIN_ACTION_TYPES",
    "SELF_REPORTING",
    "WORKER_SETTING",
    "Execution",
    "builtin_action_type",
    "cannot_run",
    "how_it_runs",
    "how_it_runs_here",
]

# The setting that lists the built-in types left to job workers (a Conveyor extension).
WORKER_SETTING = "worker_action_types"
# Built-in types whose jobs are given their result, through the job API, by what runs them
# (a Lambda function calls PutJobSuccessResult), as on AWS.
SELF_REPORTING = frozenset({ActionTypeId("Invoke", "AWS", "Lambda", "1")})
_ENTRY_KEYS = frozenset(
    {
        "category",
        "owner",
        "provider",
        "version",
        "description",
        "inputArtifacts",
        "outputArtifacts",
        "jobTimeout",
        "runs",
        "properties",
    }
)
_PROPERTY_KEYS = frozenset(
    {"name", "required", "key", "secret", "queryable", "type", "description", "values"}
    | {"requiredWhen"}
)


def _property(raw: dict[str, Any]) -> ConfigurationProperty:
    unknown = set(raw) - _PROPERTY_KEYS
    if unknown:
        raise ValueError(f"catalog property {raw.get('name')}: unknown keys {sorted(unknown)}")
    return ConfigurationProperty(
        name=raw["name"],
        required=bool(raw["required"]),
        key=bool(raw.get("key", False)),
        secret=bool(raw.get("secret", False)),
        queryable=bool(raw.get("queryable", False)),
        description=raw.get("description"),
        type=PropertyType(raw["type"]) if raw.get("type") else None,
        values=tuple(raw.get("values") or ()),
        required_when=tuple(
            (name, tuple(values)) for name, values in (raw.get("requiredWhen") or {}).items()
        ),
    )


def how_it_runs(action_type: ActionType) -> str:
    """One sentence on what runs jobs of this type in Conveyor, for its description."""
    if action_type.local:
        return "Runs in Conveyor."
    if action_type.needs:
        return (
            f"Conveyor runs it once {action_type.needs} is set in the settings; otherwise a "
            f"job worker may poll for it once it is listed in {WORKER_SETTING}."
        )
    return (
        "Conveyor has no executor for it: a job worker may poll for it (a Conveyor "
        f"extension) once it is listed in {WORKER_SETTING}."
    )


@dataclass(frozen=True, slots=True)
class Execution:
    """What runs jobs of a type in this installation, as ListActionTypes reports it (a
    Conveyor extension): ``Conveyor``, ``JobWorker`` (custom and third-party types, and
    built-in ones the settings leave to job workers, which PollForJobs then serves), or
    ``None`` (nothing does: its actions fail at once)."""

    executor: str
    job_workers_may_poll: bool
    # The setting under which Conveyor would run it itself, when it can.
    setting: str | None
    note: str


def how_it_runs_here(
    action_type: ActionType, *, runs_here: bool, left_to_workers: bool
) -> Execution:
    """``runs_here``: this installation has the type's provider; ``left_to_workers``: the
    settings list the built-in type in ``worker_action_types``."""
    if builtin_action_type(action_type.id) is not action_type:
        return Execution("JobWorker", True, None, "Job workers poll for it (PollForJobs).")
    if runs_here or (action_type.local and action_type.id.category == "Approval"):
        return Execution("Conveyor", False, action_type.needs, "Runs in Conveyor.")
    if left_to_workers:
        return Execution(
            "JobWorker",
            True,
            action_type.needs,
            f"Left to job workers by {WORKER_SETTING}: they poll for it (PollForJobs), "
            "a Conveyor extension.",
        )
    return Execution("None", False, action_type.needs, cannot_run(action_type))


def cannot_run(action_type: ActionType) -> str:
    """Why an action of a built-in type fails at once here, and the ways to make it run."""
    type_id = action_type.id
    ways = f"run a job worker that polls for {type_id} and list the type in {WORKER_SETTING}"
    if action_type.needs:
        ways = f"set {action_type.needs} in the settings (Conveyor then runs it), or {ways}"
    elif action_type.local:
        ways = f"start this process with its own workers, or {ways}"
    else:
        ways = f"Conveyor has no executor for it: {ways}"
    return f"Nothing in this Conveyor installation runs action type {type_id}. To run it, {ways}."


def _action_type(raw: dict[str, Any]) -> ActionType:
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise ValueError(f"catalog entry {raw.get('provider')}: unknown keys {sorted(unknown)}")
    runs = raw.get("runs") or {}
    found = ActionType(
        id=ActionTypeId(raw["category"], raw["owner"], raw["provider"], raw["version"]),
        input_artifacts=ArtifactBounds(*raw["inputArtifacts"]),
        output_artifacts=ArtifactBounds(*raw["outputArtifacts"]),
        properties=tuple(_property(p) for p in raw["properties"]),
        description=raw["description"],
        job_timeout=int(raw["jobTimeout"]),
        local=bool(runs.get("local", False)),
        needs=runs.get("needs"),
    )
    return replace(found, description=f"{found.description} {how_it_runs(found)}")


def _load() -> tuple[ActionType, ...]:
    text = Path(__file__).with_name("catalog.json").read_text(encoding="utf-8")
    return tuple(_action_type(entry) for entry in json.loads(text)["actionTypes"])


BUILTIN_ACTION_TYPES: tuple[ActionType, ...] = _load()

_BY_ID: dict[ActionTypeId, ActionType] = {t.id: t for t in BUILTIN_ACTION_TYPES}


def builtin_action_type(type_id: ActionTypeId) -> ActionType | None:
    """The built-in type named by ``type_id``, or ``None`` when Conveyor has no such type."""
    return _BY_ID.get(type_id)
