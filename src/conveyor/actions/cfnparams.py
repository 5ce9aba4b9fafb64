"""The CloudFormation action's inputs read as CodePipeline reads them: artifact paths
(``ArtifactName::path``), template configuration files and ``ParameterOverrides`` with their
two functions, ``Fn::GetParam`` (a key of a JSON file in an input artifact) and
``Fn::GetArtifactAtt`` (``BucketName``, ``ObjectKey`` or ``URL`` of an input artifact).

Every mistake is a `Misconfigured` naming the property and what is wrong, so the action
fails with a configuration error before any stack is touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.actions.base import ArtifactLocation

__all__ = [
    "Misconfigured",
    "TemplateConfiguration",
    "artifact_path",
    "parameter_overrides",
    "template_configuration",
]

# The files of an input artifact, by its name; unpacked on first use.
Files = Callable[[str], Path]
_ATTRIBUTES = ("BucketName", "ObjectKey", "URL")


class Misconfigured(Exception):
    pass


@dataclass(frozen=True, slots=True)
class TemplateConfiguration:
    parameters: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    stack_policy: str | None = None


def artifact_path(setting: str, value: str) -> tuple[str, str]:
    """``ArtifactName::path/in/artifact`` split in two."""
    name, sep, path = value.partition("::")
    if not sep or not name or not path:
        raise Misconfigured(f"{setting} must be ArtifactName::path/in/artifact, not {value!r}")
    return name, path


def read_json(files: Files, setting: str, value: str) -> Any:
    name, path = artifact_path(setting, value)
    root = files(name)
    target = (root / path).resolve()
    if not target.is_relative_to(root.resolve()) or not target.is_file():
        raise Misconfigured(f"{setting}: {path} is not a file of input artifact {name}")
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Misconfigured(f"{setting}: {value} is not valid JSON: {error}") from error


def _string_map(setting: str, raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Misconfigured(f"{setting} must be a JSON object of names to values")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def template_configuration(files: Files, value: str) -> TemplateConfiguration:
    """The ``TemplateConfiguration`` file: ``Parameters``, ``Tags`` and ``StackPolicy``."""
    raw = read_json(files, "TemplateConfiguration", value)
    if not isinstance(raw, dict):
        raise Misconfigured("TemplateConfiguration must hold a JSON object")
    unknown = set(raw) - {"Parameters", "Tags", "StackPolicy"}
    if unknown:
        raise Misconfigured(
            f"TemplateConfiguration has unknown members {', '.join(sorted(unknown))}; "
            "it takes Parameters, Tags and StackPolicy"
        )
    policy = raw.get("StackPolicy")
    return TemplateConfiguration(
        parameters=_string_map("TemplateConfiguration Parameters", raw.get("Parameters")),
        tags=_string_map("TemplateConfiguration Tags", raw.get("Tags")),
        stack_policy=None if policy is None else json.dumps(policy),
    )


def _function(
    name: str, raw: Mapping[str, Any], files: Files, inputs: Mapping[str, ArtifactLocation]
) -> str:
    if len(raw) != 1:
        raise Misconfigured(f"ParameterOverrides {name}: one function per value")
    ((function, arguments),) = raw.items()
    if function == "Fn::GetParam":
        if not (isinstance(arguments, list) and len(arguments) == 3):
            raise Misconfigured(
                f"ParameterOverrides {name}: Fn::GetParam takes [ArtifactName, file, key]"
            )
        artifact, path, key = (str(a) for a in arguments)
        found = read_json(files, f"ParameterOverrides {name}", f"{artifact}::{path}")
        if not isinstance(found, dict) or key not in found:
            raise Misconfigured(f"ParameterOverrides {name}: {path} in {artifact} has no {key}")
        value = found[key]
        return value if isinstance(value, str) else json.dumps(value)
    if function == "Fn::GetArtifactAtt":
        if not (isinstance(arguments, list) and len(arguments) == 2):
            raise Misconfigured(
                f"ParameterOverrides {name}: Fn::GetArtifactAtt takes [ArtifactName, attribute]"
            )
        artifact, attribute = (str(a) for a in arguments)
        location = inputs.get(artifact)
        if location is None:
            raise Misconfigured(
                f"ParameterOverrides {name}: {artifact} is not an input artifact of the action"
            )
        if attribute == "BucketName":
            return location.bucket
        if attribute == "ObjectKey":
            return location.key
        if attribute == "URL":
            return f"https://{location.bucket}.s3.amazonaws.com/{location.key}"
        raise Misconfigured(
            f"ParameterOverrides {name}: Fn::GetArtifactAtt attribute {attribute!r} is not "
            f"one of {', '.join(_ATTRIBUTES)}"
        )
    raise Misconfigured(
        f"ParameterOverrides {name}: unknown function {function!r}; "
        "use Fn::GetParam or Fn::GetArtifactAtt"
    )


def parameter_overrides(
    value: str, files: Files, inputs: Mapping[str, ArtifactLocation]
) -> dict[str, str]:
    """``ParameterOverrides`` with every function replaced by its value."""
    try:
        raw = json.loads(value)
    except json.JSONDecodeError as error:
        raise Misconfigured(f"ParameterOverrides is not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise Misconfigured("ParameterOverrides must be a JSON object of parameter names")
    resolved: dict[str, str] = {}
    for name, item in raw.items():
        if isinstance(item, dict):
            resolved[name] = _function(name, item, files, inputs)
        elif isinstance(item, str):
            resolved[name] = item
        else:
            resolved[name] = json.dumps(item)
    return resolved
