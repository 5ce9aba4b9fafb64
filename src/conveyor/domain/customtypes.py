"""Action types declared through the API, read into `ActionType` values.

Custom types arrive as ``CreateCustomActionType`` input; third-party types as an
``ActionTypeDeclaration`` (``UpdateActionType``). Both are stored as they came and read here.
Their own rules (one queryable property, which must be required and not secret; artifact
minimums not above maximums; unique property names) are checked by `check_definition`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from conveyor.domain.actiontype import (
    ActionType,
    ActionTypeId,
    ActionTypeUrls,
    ArtifactBounds,
    ConfigurationProperty,
    PropertyType,
)


def _bounds(raw: Mapping[str, Any]) -> ArtifactBounds:
    return ArtifactBounds(int(raw["minimumCount"]), int(raw["maximumCount"]))


def from_custom(type_id: ActionTypeId, definition: Mapping[str, Any]) -> ActionType:
    """A custom type from its ``CreateCustomActionType`` input."""
    settings = definition.get("settings") or {}
    return ActionType(
        id=type_id,
        input_artifacts=_bounds(definition["inputArtifactDetails"]),
        output_artifacts=_bounds(definition["outputArtifactDetails"]),
        properties=tuple(
            ConfigurationProperty(
                name=p["name"],
                required=bool(p["required"]),
                key=bool(p["key"]),
                secret=bool(p["secret"]),
                queryable=bool(p.get("queryable", False)),
                description=p.get("description"),
                type=PropertyType(p["type"]) if p.get("type") else None,
            )
            for p in definition.get("configurationProperties") or ()
        ),
        urls=ActionTypeUrls(
            configuration_url=settings.get("thirdPartyConfigurationUrl"),
            entity_url_template=settings.get("entityUrlTemplate"),
            execution_url_template=settings.get("executionUrlTemplate"),
            revision_url_template=settings.get("revisionUrlTemplate"),
        ),
    )


def from_declaration(declaration: Mapping[str, Any]) -> ActionType:
    """A type from an ``ActionTypeDeclaration`` (the integration model)."""
    raw_id = declaration["id"]
    urls = declaration.get("urls") or {}
    executor = declaration.get("executor") or {}
    return ActionType(
        id=ActionTypeId(raw_id["category"], raw_id["owner"], raw_id["provider"], raw_id["version"]),
        input_artifacts=_bounds(declaration["inputArtifactDetails"]),
        output_artifacts=_bounds(declaration["outputArtifactDetails"]),
        properties=tuple(
            ConfigurationProperty(
                name=p["name"],
                required=not p["optional"],
                key=bool(p["key"]),
                secret=bool(p["noEcho"]),
                queryable=bool(p.get("queryable", False)),
                description=p.get("description"),
            )
            for p in declaration.get("properties") or ()
        ),
        urls=ActionTypeUrls(
            configuration_url=urls.get("configurationUrl"),
            entity_url_template=urls.get("entityUrlTemplate"),
            execution_url_template=urls.get("executionUrlTemplate"),
            revision_url_template=urls.get("revisionUrlTemplate"),
        ),
        description=declaration.get("description"),
        job_timeout=executor.get("jobTimeout"),
    )


def check_definition(action_type: ActionType) -> list[str]:
    """What is wrong with a declared type; an empty list when nothing is."""
    problems = []
    names = Counter(p.name for p in action_type.properties)
    problems += [
        f"Configuration property '{n}' is declared more than once."
        for n, c in names.items()
        if c > 1
    ]
    queryable = [p for p in action_type.properties if p.queryable]
    if len(queryable) > 1:
        problems.append("An action type may have at most one queryable configuration property.")
    problems += [
        f"Queryable configuration property '{p.name}' must be required and not secret."
        for p in queryable
        if not p.required or p.secret
    ]
    for word, bounds in (
        ("input", action_type.input_artifacts),
        ("output", action_type.output_artifacts),
    ):
        if bounds.minimum > bounds.maximum:
            problems.append(
                f"The minimum {word} artifact count ({bounds.minimum}) is above the maximum "
                f"({bounds.maximum})."
            )
    return problems
