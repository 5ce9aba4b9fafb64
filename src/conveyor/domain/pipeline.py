"""The pipeline declaration as typed, immutable values.

`parse_pipeline` reads the wire shape (``PipelineDeclaration``) after the protocol layer has
checked it against the model, so types are trusted here; meaning is checked in `structure`.
The declaration itself is kept as it came for reading back; these values are what the rules
and the engine reason about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from conveyor.domain.actiontype import ActionCategory, ActionTypeId
from conveyor.domain.gitfilters import GitConfiguration, parse_git_configuration

MASK = "****"
DEFAULT_RUN_ORDER = 1


class ExecutionMode(StrEnum):
    QUEUED = "QUEUED"
    SUPERSEDED = "SUPERSEDED"
    PARALLEL = "PARALLEL"


class PipelineType(StrEnum):
    V1 = "V1"
    V2 = "V2"


@dataclass(frozen=True, slots=True)
class OutputArtifact:
    name: str
    files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EnvironmentVariable:
    name: str
    value: str
    type: str = "PLAINTEXT"


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    type_id: ActionTypeId
    run_order: int = DEFAULT_RUN_ORDER
    configuration: Mapping[str, str] | None = None
    input_artifacts: tuple[str, ...] = ()
    output_artifacts: tuple[OutputArtifact, ...] = ()
    namespace: str | None = None
    region: str | None = None
    role_arn: str | None = None
    timeout_in_minutes: int | None = None
    commands: tuple[str, ...] = ()
    output_variables: tuple[str, ...] = ()
    environment_variables: tuple[EnvironmentVariable, ...] = ()

    @property
    def config(self) -> Mapping[str, str]:
        return self.configuration or {}

    @property
    def is_source(self) -> bool:
        return self.type_id.category == ActionCategory.SOURCE


@dataclass(frozen=True, slots=True)
class Condition:
    result: str | None
    rules: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    actions: tuple[Action, ...]
    blockers: tuple[str, ...] = ()
    before_entry: tuple[Condition, ...] = ()
    on_success: tuple[Condition, ...] = ()
    on_failure: tuple[Condition, ...] = ()
    on_failure_result: str | None = None
    on_failure_retry_mode: str | None = None

    @property
    def has_conditions(self) -> bool:
        return bool(self.before_entry or self.on_success or self.on_failure)

    @property
    def failure_result(self) -> str | None:
        """What a failed stage whose onFailure conditions are met does: onFailure's own result,
        else its condition's (a condition's result is "the action to be done when the condition
        is met", such as rolling back for a failure condition)."""
        if self.on_failure_result:
            return self.on_failure_result
        return next((c.result for c in self.on_failure if c.result), None)


@dataclass(frozen=True, slots=True)
class VariableDeclaration:
    name: str
    default_value: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Trigger:
    provider_type: str
    source_action_name: str
    git: GitConfiguration | None = None


@dataclass(frozen=True, slots=True)
class ArtifactStore:
    type: str
    location: str


@dataclass(frozen=True, slots=True)
class Pipeline:
    name: str
    role_arn: str
    stages: tuple[Stage, ...]
    artifact_store: ArtifactStore | None = None
    artifact_stores: Mapping[str, ArtifactStore] | None = None
    # As declared; None when the declaration leaves them out.
    execution_mode: ExecutionMode | None = None
    pipeline_type: PipelineType | None = None
    variables: tuple[VariableDeclaration, ...] = ()
    triggers: tuple[Trigger, ...] = ()

    def actions(self) -> Sequence[tuple[int, int, Stage, Action]]:
        """Every action with its stage index and action index, in declaration order."""
        return [
            (s, a, stage, action)
            for s, stage in enumerate(self.stages)
            for a, action in enumerate(stage.actions)
        ]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _conditions(block: Any) -> tuple[Condition, ...]:
    if not isinstance(block, dict):
        return ()
    return tuple(
        Condition(c.get("result"), tuple(_items(c.get("rules"))))
        for c in _items(block.get("conditions"))
    )


def parse_action(raw: Mapping[str, Any]) -> Action:
    t = raw.get("actionTypeId") or {}
    return Action(
        name=raw["name"],
        type_id=ActionTypeId(t["category"], t["owner"], t["provider"], t["version"]),
        run_order=raw.get("runOrder") or DEFAULT_RUN_ORDER,
        configuration=dict(raw.get("configuration") or {}),
        input_artifacts=tuple(a["name"] for a in _items(raw.get("inputArtifacts"))),
        output_artifacts=tuple(
            OutputArtifact(a["name"], tuple(a.get("files") or ()))
            for a in _items(raw.get("outputArtifacts"))
        ),
        namespace=raw.get("namespace"),
        region=raw.get("region"),
        role_arn=raw.get("roleArn"),
        timeout_in_minutes=raw.get("timeoutInMinutes"),
        commands=tuple(raw.get("commands") or ()),
        output_variables=tuple(raw.get("outputVariables") or ()),
        environment_variables=tuple(
            EnvironmentVariable(v["name"], v["value"], v.get("type") or "PLAINTEXT")
            for v in _items(raw.get("environmentVariables"))
        ),
    )


def parse_stage(raw: Mapping[str, Any]) -> Stage:
    on_failure = raw.get("onFailure") or {}
    retry = on_failure.get("retryConfiguration") or {}
    return Stage(
        name=raw["name"],
        actions=tuple(parse_action(a) for a in _items(raw.get("actions"))),
        blockers=tuple(b["name"] for b in _items(raw.get("blockers"))),
        before_entry=_conditions(raw.get("beforeEntry")),
        on_success=_conditions(raw.get("onSuccess")),
        on_failure=_conditions(on_failure),
        on_failure_result=on_failure.get("result"),
        on_failure_retry_mode=retry.get("retryMode"),
    )


def _store(raw: Mapping[str, Any]) -> ArtifactStore:
    return ArtifactStore(raw["type"], raw["location"])


def parse_pipeline(raw: Mapping[str, Any]) -> Pipeline:
    """Typed values for a declaration already checked against the model's shapes."""
    stores = raw.get("artifactStores")
    mode = raw.get("executionMode")
    kind = raw.get("pipelineType")
    return Pipeline(
        name=raw["name"],
        role_arn=raw.get("roleArn", ""),
        stages=tuple(parse_stage(s) for s in _items(raw.get("stages"))),
        artifact_store=_store(raw["artifactStore"]) if raw.get("artifactStore") else None,
        artifact_stores={k: _store(v) for k, v in stores.items()} if stores else None,
        execution_mode=ExecutionMode(mode) if mode else None,
        pipeline_type=PipelineType(kind) if kind else None,
        variables=tuple(
            VariableDeclaration(v["name"], v.get("defaultValue"), v.get("description"))
            for v in _items(raw.get("variables"))
        ),
        triggers=tuple(
            Trigger(
                t["providerType"],
                t["gitConfiguration"]["sourceActionName"],
                parse_git_configuration(t["gitConfiguration"]),
            )
            for t in _items(raw.get("triggers"))
        ),
    )
