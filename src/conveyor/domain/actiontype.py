"""Action types: what an action's ``actionTypeId`` names and what the type allows.

An action type fixes the configuration properties an action may carry (which are required,
which are secret and masked on every read, which one a job worker may query on), how many
input and output artifacts it takes, and the URL templates shown for its executions.
Built-in types are data (`catalog`); custom and third-party types arrive through the API and
are turned into the same value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import quote


class ActionCategory(StrEnum):
    SOURCE = "Source"
    BUILD = "Build"
    DEPLOY = "Deploy"
    TEST = "Test"
    INVOKE = "Invoke"
    APPROVAL = "Approval"
    COMPUTE = "Compute"


class ActionOwner(StrEnum):
    AWS = "AWS"
    THIRD_PARTY = "ThirdParty"
    CUSTOM = "Custom"


class PropertyType(StrEnum):
    STRING = "String"
    NUMBER = "Number"
    BOOLEAN = "Boolean"


@dataclass(frozen=True, slots=True, order=True)
class ActionTypeId:
    category: str
    owner: str
    provider: str
    version: str

    def __str__(self) -> str:
        return f"{self.owner}/{self.category}/{self.provider}/{self.version}"


@dataclass(frozen=True, slots=True)
class ConfigurationProperty:
    name: str
    required: bool
    key: bool = False
    secret: bool = False
    queryable: bool = False
    description: str | None = None
    type: PropertyType | None = None
    # Catalog rules: the only values the property takes (when not empty), and the values of
    # other properties under which it becomes required (name → values).
    values: tuple[str, ...] = ()
    required_when: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class ArtifactBounds:
    minimum: int
    maximum: int

    def admits(self, count: int) -> bool:
        return self.minimum <= count <= self.maximum


_PLACEHOLDER = re.compile(r"\{(Config:[A-Za-z0-9_-]+|ExternalExecutionId|RevisionId)\}")


def render_url(
    template: str | None,
    configuration: Mapping[str, str],
    *,
    external_id: str | None = None,
    revision_id: str | None = None,
) -> str | None:
    """A URL template with ``{Config:Name}``, ``{ExternalExecutionId}`` and ``{RevisionId}``
    replaced by the action's values, URL-encoded; None when a value it needs is missing."""
    if not template:
        return None
    values = {f"Config:{k}": v for k, v in configuration.items()}
    if external_id is not None:
        values["ExternalExecutionId"] = external_id
    if revision_id is not None:
        values["RevisionId"] = revision_id
    missing = [m for m in _PLACEHOLDER.findall(template) if m not in values]
    if missing:
        return None
    return _PLACEHOLDER.sub(lambda m: quote(values[m.group(1)], safe=""), template)


@dataclass(frozen=True, slots=True)
class ActionTypeUrls:
    """URL templates: ``settings`` on custom types, ``urls`` on declared types."""

    configuration_url: str | None = None
    entity_url_template: str | None = None
    execution_url_template: str | None = None
    revision_url_template: str | None = None


@dataclass(frozen=True, slots=True)
class ActionType:
    id: ActionTypeId
    input_artifacts: ArtifactBounds
    output_artifacts: ArtifactBounds
    properties: tuple[ConfigurationProperty, ...] = ()
    urls: ActionTypeUrls = field(default_factory=ActionTypeUrls)
    description: str | None = None
    # Seconds a single job of this type may run before it fails for taking too long.
    job_timeout: int | None = None
    # Built-in types only: Conveyor runs it with nothing to set (``local``), or once the
    # setting ``needs`` names is set (``aws_endpoints.ecs``, say); neither: job workers only.
    local: bool = False
    needs: str | None = None

    def find_property(self, name: str) -> ConfigurationProperty | None:
        for prop in self.properties:
            if prop.name == name:
                return prop
        return None

    @property
    def secret_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.properties if p.secret)

    def public_configuration(self, configuration: Mapping[str, str]) -> dict[str, str]:
        """The configuration without its secret properties: what URLs may show."""
        secret = self.secret_names
        return {k: v for k, v in configuration.items() if k not in secret}
