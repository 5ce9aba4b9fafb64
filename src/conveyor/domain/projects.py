"""CodeBuild projects: the rules a definition must meet beyond its model, and what a build uses.

A project is kept as the wire ``Project`` members it was given (name, ARN and times apart),
with CodeBuild's defaults filled in. `check_project` refuses, with CodeBuild's
``InvalidInputException``, the combinations CodeBuild refuses; `updated` lays an
UpdateProject's members over the definition (each given member replaces the old one whole, as
CodeBuild does); `build_project` is what a build of the project needs: its buildspec, its
environment variables, its timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.domain.errors import InvalidInputException

# CodeBuild's defaults for the members a definition leaves out.
DEFAULT_TIMEOUT_MINUTES = 60
DEFAULT_QUEUED_TIMEOUT_MINUTES = 480
# Members that belong to the project itself, never to its stored definition.
_OWN = frozenset({"name", "arn", "created", "lastModified"})
# Source types whose location says where the source is.
_LOCATED = frozenset(
    {
        "CODECOMMIT",
        "GITHUB",
        "GITHUB_ENTERPRISE",
        "BITBUCKET",
        "GITLAB",
        "GITLAB_SELF_MANAGED",
        "S3",
    }
)
_PIPELINE = "CODEPIPELINE"


@dataclass(frozen=True, slots=True)
class BuildProject:
    """What a build of a project takes from it."""

    name: str
    # The source's buildspec: a path in the source, inline YAML, or "" (buildspec.yml).
    buildspec: str = ""
    # (name, value, type) in the project's order; type PLAINTEXT, PARAMETER_STORE or
    # SECRETS_MANAGER.
    variables: tuple[tuple[str, str, str], ...] = ()
    timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES
    # Who started the build (CODEBUILD_INITIATOR) when StartBuild did; None: a pipeline.
    initiator: str | None = None


def definition_of(params: Mapping[str, Any]) -> dict[str, Any]:
    """The stored definition of a CreateProject input: its members less the project's own,
    with CodeBuild's defaults."""
    definition = {k: v for k, v in params.items() if k not in _OWN}
    definition.setdefault("timeoutInMinutes", DEFAULT_TIMEOUT_MINUTES)
    definition.setdefault("queuedTimeoutInMinutes", DEFAULT_QUEUED_TIMEOUT_MINUTES)
    definition.setdefault("badge", {"badgeEnabled": False})
    return definition


def updated(definition: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The definition with UpdateProject's members in place of the old ones."""
    fresh = {k: v for k, v in changes.items() if k not in _OWN}
    return {**definition, **fresh}


def _type(value: Any) -> str:
    return str(value.get("type", "")) if isinstance(value, Mapping) else ""


def check_project(definition: Mapping[str, Any]) -> None:
    """Raise `InvalidInputException` naming the member of a combination CodeBuild refuses."""
    source, artifacts = definition.get("source") or {}, definition.get("artifacts") or {}
    source_type, artifacts_type = _type(source), _type(artifacts)
    if (source_type == _PIPELINE) != (artifacts_type == _PIPELINE):
        raise InvalidInputException(
            f"source.type {source_type} and artifacts.type {artifacts_type}: a project takes "
            "its source from CodePipeline (CODEPIPELINE) exactly when its artifacts go there"
        )
    if source_type in _LOCATED and not source.get("location"):
        raise InvalidInputException(f"source.location is required for source type {source_type}")
    if source_type == "NO_SOURCE" and not source.get("buildspec"):
        raise InvalidInputException("source.buildspec is required for source type NO_SOURCE")
    if artifacts_type == "S3" and not artifacts.get("location"):
        raise InvalidInputException("artifacts.location is required for artifacts type S3")
    names: set[str] = set()
    environment = definition.get("environment") or {}
    for variable in environment.get("environmentVariables") or []:
        name = variable.get("name", "")
        if name in names:
            raise InvalidInputException(
                f"environment.environmentVariables names {name} more than once"
            )
        names.add(name)


def build_project(name: str, definition: Mapping[str, Any]) -> BuildProject:
    source = definition.get("source") or {}
    environment = definition.get("environment") or {}
    variables = tuple(
        (str(v.get("name", "")), str(v.get("value", "")), str(v.get("type") or "PLAINTEXT"))
        for v in environment.get("environmentVariables") or []
    )
    return BuildProject(
        name=name,
        buildspec=str(source.get("buildspec") or ""),
        variables=variables,
        timeout_minutes=int(definition.get("timeoutInMinutes") or DEFAULT_TIMEOUT_MINUTES),
    )


# StartBuild's overrides that replace one member of the project's ``environment``.
_ENVIRONMENT_OVERRIDES = {
    "imageOverride": "image",
    "computeTypeOverride": "computeType",
    "environmentTypeOverride": "type",
    "privilegedModeOverride": "privilegedMode",
    "certificateOverride": "certificate",
}
# ... of its ``source``.
_SOURCE_OVERRIDES = {
    "sourceTypeOverride": "type",
    "sourceLocationOverride": "location",
    "sourceAuthOverride": "auth",
    "buildspecOverride": "buildspec",
    "gitCloneDepthOverride": "gitCloneDepth",
    "insecureSslOverride": "insecureSsl",
    "reportBuildStatusOverride": "reportBuildStatus",
}
# ... and the members replaced whole.
_WHOLE_OVERRIDES = {
    "artifactsOverride": "artifacts",
    "timeoutInMinutesOverride": "timeoutInMinutes",
    "queuedTimeoutInMinutesOverride": "queuedTimeoutInMinutes",
    "cacheOverride": "cache",
    "serviceRoleOverride": "serviceRole",
    "encryptionKeyOverride": "encryptionKey",
    "logsConfigOverride": "logsConfig",
}


def overridden(definition: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The definition a StartBuild builds: the project's, with the request's overrides.

    ``environmentVariablesOverride`` replaces variables of the same name and adds the others,
    as CodeBuild does; a project that takes its source from CodePipeline cannot be started
    on its own (raises `InvalidInputException`)."""
    source = dict(definition.get("source") or {})
    environment = dict(definition.get("environment") or {})
    result = {k: v for k, v in definition.items() if k not in ("source", "environment")}
    for key, member in _SOURCE_OVERRIDES.items():
        if params.get(key) is not None:
            source[member] = params[key]
    for key, member in _ENVIRONMENT_OVERRIDES.items():
        if params.get(key) is not None:
            environment[member] = params[key]
    for key, member in _WHOLE_OVERRIDES.items():
        if params.get(key) is not None:
            result[member] = params[key]
    given = params.get("environmentVariablesOverride")
    if given:
        names = {str(v.get("name", "")) for v in given}
        kept = [
            v for v in environment.get("environmentVariables") or [] if v.get("name") not in names
        ]
        environment["environmentVariables"] = [*kept, *given]
    result["source"], result["environment"] = source, environment
    if source.get("type") == _PIPELINE:
        raise InvalidInputException(
            "source.type CODEPIPELINE: this project's source comes from a pipeline, so only a "
            "pipeline's CodeBuild action can build it (set sourceTypeOverride to build it alone)"
        )
    if (result.get("artifacts") or {}).get("type") == _PIPELINE:
        result["artifacts"] = {"type": "NO_ARTIFACTS"}
    check_project(result)
    return result
