"""The rule types of stage conditions: CodePipeline's rule reference, as data.

``rulecatalog.json`` next to this module holds one entry per rule type (owner ``AWS``,
category ``Rule``, version ``1``): its configuration properties, its input artifact counts,
and whether an entry condition whose result is SKIP may use it (AWS allows only LambdaInvoke
and VariableCheck there). ListRuleTypes reports it; pipelines' rules are checked against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.domain.actiontype import (
    ActionTypeId,
    ArtifactBounds,
    ConfigurationProperty,
    PropertyType,
)

__all__ = ["BUILTIN_RULE_TYPES", "RuleType", "builtin_rule_type"]

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
