"""Action types: what an action's ``actionTypeId`` names and what the type allows.

An action type fixes the configuration properties an action may carry (which are required,
which are secret and masked on every read, which one a job worker may query on), how many
input and output artifacts it takes, and the URL templates shown for its executions.
Built-in types are data (`catalog`); custom and third-party types arrive through the API and
are turned into the same value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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
