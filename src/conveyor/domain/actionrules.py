"""The rules for one action: its type exists, its configuration fits the type, its artifact
counts are within the type's bounds, and fields only some types take are only on those."""

from __future__ import annotations

import re
from collections.abc import Mapping

from conveyor.domain.actiontype import ActionOwner, ActionType, ActionTypeId
from conveyor.domain.errors import InvalidActionDeclarationException
from conveyor.domain.labels import LABELS_KEY, LabelError, parse_labels
from conveyor.domain.pipeline import Action, Stage
from conveyor.domain.plan import APPROVAL
from conveyor.domain.problems import Path, Problem, Resolver

COMMANDS = ActionTypeId("Compute", "AWS", "Commands", "1")
_QUERYABLE_VALUE = re.compile(r"[A-Za-z0-9_-]{1,20}")


def _label_rules(label: str, value: str) -> list[str]:
    """``ConveyorLabels``: labels a worker must have to run the action (an extension)."""
    if "#{" in value:
        return []  # checked once the variables are resolved, as the action starts
    try:
        parse_labels(value)
    except LabelError as exc:
        return [f"{label}: {LABELS_KEY} lists the worker labels the action needs: {exc}."]
    return []


def check_action(
    path: Path, stage: Stage, action: Action, resolve: Resolver, region: str | None = None
) -> list[Problem]:
    def problem(where: Path, message: str) -> Problem:
        return Problem((*path, *where), InvalidActionDeclarationException, message)

    label = f"Action '{action.name}' in stage '{stage.name}'"
    action_type = resolve(action.type_id)
    if action_type is None:
        return [
            problem(
                ("actionTypeId",),
                f"ActionType (Category: '{action.type_id.category}', Provider: "
                f"'{action.type_id.provider}', Owner: '{action.type_id.owner}', Version: "
                f"'{action.type_id.version}') in action '{action.name}' is not available.",
            )
        ]
    problems = []
    config = action.config
    for prop in action_type.properties:
        if prop.required and prop.name not in config:
            problems.append(
                problem(
                    ("configuration",),
                    f"{label} is missing the required configuration property '{prop.name}'.",
                )
            )
        if (
            prop.queryable
            and prop.name in config
            and not _QUERYABLE_VALUE.fullmatch(config[prop.name])
        ):
            problems.append(
                problem(
                    ("configuration", prop.name),
                    f"{label}: the queryable property '{prop.name}' takes at most 20 letters, "
                    "digits, '_' or '-'.",
                )
            )
    problems += [
        problem(where, message) for where, message in _catalog_rules(label, action_type, config)
    ]
    for key in config:
        if key == LABELS_KEY and action.type_id.owner != ActionOwner.CUSTOM:
            problems += [
                problem(("configuration", key), m) for m in _label_rules(label, config[key])
            ]
            continue
        if action_type.find_property(key) is None:
            known = ", ".join(p.name for p in action_type.properties) or "none"
            problems.append(
                problem(
                    ("configuration", key),
                    f"{label} has unknown configuration property '{key}' for action type "
                    f"{action.type_id} (known: {known}).",
                )
            )
    for where, count, bounds, word in (
        ("inputArtifacts", len(action.input_artifacts), action_type.input_artifacts, "input"),
        ("outputArtifacts", len(action.output_artifacts), action_type.output_artifacts, "output"),
    ):
        if count < bounds.minimum:
            problems.append(
                problem(
                    (where,),
                    f"Action {action.name} declares {count} {word} artifacts which is less "
                    f"than the minimum count ({bounds.minimum}).",
                )
            )
        elif count > bounds.maximum:
            problems.append(
                problem(
                    (where,),
                    f"Action {action.name} declares {count} {word} artifacts which is more "
                    f"than the maximum count ({bounds.maximum}).",
                )
            )
    if action.timeout_in_minutes is not None and action.type_id != APPROVAL:
        problems.append(
            problem(
                ("timeoutInMinutes",),
                f"{label}: timeoutInMinutes is only allowed on manual approval actions.",
            )
        )
    if action.type_id == COMMANDS:
        if not action.commands:
            problems.append(
                problem(
                    ("commands",), f"Action {action.name} must have a non-empty commands field."
                )
            )
    else:
        for field, value in (
            ("commands", action.commands),
            ("outputVariables", action.output_variables),
            ("environmentVariables", action.environment_variables),
        ):
            if value:
                problems.append(
                    problem(
                        (field,),
                        f"The following action cannot contain a {field} field: {action.name}. "
                        f"To use the {field} field, use a compute action.",
                    )
                )
        for o, artifact in enumerate(action.output_artifacts):
            if artifact.files:
                problems.append(
                    problem(
                        ("outputArtifacts", o, "files"),
                        f"{label}: output artifact files are only allowed on Commands actions.",
                    )
                )
    if (
        action.region
        and action.region != region
        and (
            action.is_source
            or action.type_id.owner in (ActionOwner.THIRD_PARTY, ActionOwner.CUSTOM)
        )
    ):
        problems.append(
            problem(
                ("region",),
                f"{label}: source, third-party and custom actions cannot run in another Region.",
            )
        )
    return problems


def _catalog_rules(
    label: str, action_type: ActionType, config: Mapping[str, str]
) -> list[tuple[Path, str]]:
    """The catalog's finer rules: properties that a mode makes required, and properties that
    take only some values (a value still holding a ``#{variable}`` is judged at run time)."""
    found: list[tuple[Path, str]] = []
    for prop in action_type.properties:
        value = config.get(prop.name)
        if value is None:
            for other, values in prop.required_when:
                if config.get(other) in values:
                    found.append(
                        (
                            ("configuration",),
                            f"{label} is missing the configuration property '{prop.name}', "
                            f"required when {other} is {config[other]}.",
                        )
                    )
        elif prop.values and "#{" not in value and value not in prop.values:
            found.append(
                (
                    ("configuration", prop.name),
                    f"{label}: configuration property '{prop.name}' is '{value}'; it takes "
                    f"one of {', '.join(prop.values)}.",
                )
            )
    return found
