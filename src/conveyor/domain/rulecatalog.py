"""The rule types of stage conditions: CodePipeline's rule reference, as data.

``rulecatalog.json`` next to this module holds one entry per rule type (owner ``AWS``,
category ``Rule``, version ``1``): its configuration properties, its input artifact counts,
and whether an entry condition whose result is SKIP may use it (AWS allows only LambdaInvoke
and VariableCheck there). ListRuleTypes reports it; pipelines' rules are checked against it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.domain.actiontype import (
    ActionTypeId,
    ArtifactBounds,
    ConfigurationProperty,
    PropertyType,
)

__all__ = ["BUILTIN_RULE_TYPES", "RuleType", "builtin_rule_type", "rule_problems"]

_ENTRY_KEYS = frozenset({"provider", "description", "inputArtifacts", "skip", "properties"})
_PROPERTY_KEYS = frozenset(
    {"name", "required", "key", "secret", "queryable", "type", "description", "values"}
)


@dataclass(frozen=True, slots=True)
class RuleType:
    id: ActionTypeId
    description: str
    input_artifacts: ArtifactBounds
    properties: tuple[ConfigurationProperty, ...]
    # Whether an entry condition with the SKIP result may use it.
    skip: bool


def _property(raw: dict[str, Any]) -> ConfigurationProperty:
    unknown = set(raw) - _PROPERTY_KEYS
    if unknown:
        raise ValueError(f"rule property {raw.get('name')}: unknown keys {sorted(unknown)}")
    return ConfigurationProperty(
        name=raw["name"],
        required=bool(raw["required"]),
        key=bool(raw.get("key", False)),
        secret=bool(raw.get("secret", False)),
        queryable=bool(raw.get("queryable", False)),
        description=raw.get("description"),
        type=PropertyType(raw["type"]) if raw.get("type") else None,
        values=tuple(raw.get("values") or ()),
    )


def _rule_type(raw: dict[str, Any]) -> RuleType:
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        raise ValueError(f"rule type {raw.get('provider')}: unknown keys {sorted(unknown)}")
    return RuleType(
        id=ActionTypeId("Rule", "AWS", raw["provider"], "1"),
        description=raw["description"],
        input_artifacts=ArtifactBounds(*raw["inputArtifacts"]),
        properties=tuple(_property(p) for p in raw["properties"]),
        skip=bool(raw["skip"]),
    )


def _load() -> tuple[RuleType, ...]:
    text = Path(__file__).with_name("rulecatalog.json").read_text(encoding="utf-8")
    return tuple(_rule_type(entry) for entry in json.loads(text)["ruleTypes"])


BUILTIN_RULE_TYPES: tuple[RuleType, ...] = _load()

_BY_ID = {t.id: t for t in BUILTIN_RULE_TYPES}


def builtin_rule_type(type_id: ActionTypeId) -> RuleType | None:
    """The rule type ``type_id`` names, or None when there is no such rule type."""
    return _BY_ID.get(type_id)


def rule_problems(
    name: str,
    type_id: ActionTypeId,
    configuration: Mapping[str, str],
    *,
    inputs: int = 0,
    commands: int = 0,
    skip: bool = False,
) -> list[str]:
    """What is wrong with the rule ``name`` of type ``type_id``, each problem a sentence
    naming the rule and the field: an unknown type, a missing, unknown or ill-valued
    configuration property, an input artifact count out of bounds, commands on a rule other
    than Commands (or none on it), a rule SKIP conditions may not use (``skip``)."""
    rule_type = builtin_rule_type(type_id)
    if rule_type is None:
        return [
            f"RuleType (Category: '{type_id.category}', Provider: '{type_id.provider}', "
            f"Owner: '{type_id.owner}', Version: '{type_id.version}') in rule '{name}' is not "
            "available"
        ]
    problems = []
    known = {p.name: p for p in rule_type.properties}
    for prop in rule_type.properties:
        value = configuration.get(prop.name)
        if prop.required and not (value or "").strip():
            problems.append(f"Rule '{name}': configuration property {prop.name} is required")
        elif value is not None and prop.values and value not in prop.values:
            problems.append(
                f"Rule '{name}': configuration property {prop.name} must be one of "
                f"{', '.join(prop.values)}, not {value!r}"
            )
    for key in configuration:
        if key not in known:
            problems.append(
                f"Rule '{name}': configuration property {key} is not one of "
                f"{rule_type.id.provider}'s ({', '.join(known) or 'it takes none'})"
            )
    if not rule_type.input_artifacts.admits(inputs):
        bounds = rule_type.input_artifacts
        problems.append(
            f"Rule '{name}': a {rule_type.id.provider} rule takes {bounds.minimum} to "
            f"{bounds.maximum} input artifacts, not {inputs}"
        )
    if rule_type.id.provider == "Commands" and not commands:
        problems.append(f"Rule '{name}': a Commands rule needs commands")
    elif rule_type.id.provider != "Commands" and commands:
        problems.append(f"Rule '{name}': only a Commands rule takes commands")
    if skip and not rule_type.skip:
        allowed = ", ".join(t.id.provider for t in BUILTIN_RULE_TYPES if t.skip)
        problems.append(
            f"Rule '{name}': an entry condition with the SKIP result takes only {allowed} rules"
        )
    return problems
