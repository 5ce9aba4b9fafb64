"""The build's environment variables: CodeBuild's own, the buildspec's, the action's overrides.

Precedence is CodeBuild's: the action's ``EnvironmentVariables`` configuration (a JSON list of
``{"name", "value", "type"}``) over the project's environment variables, over the buildspec's
``env``. ``PARAMETER_STORE`` and
``SECRETS_MANAGER`` values are read from the installation's secrets file (``parameters`` and
``secrets`` mappings); a reference that is not there is a configuration error. Secret values
are returned apart so the log can mask them.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conveyor.actions.base import JobContext, ProviderConfig
from conveyor.actions.codebuild.buildspec import Env
from conveyor.actions.shell import INHERITED
from conveyor.domain.declaration import SEALED

__all__ = [
    "BuildEnvironment",
    "Misconfigured",
    "build_environment",
    "codebuild_variables",
    "next_build_number",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TYPES = ("PLAINTEXT", "PARAMETER_STORE", "SECRETS_MANAGER")
_ARN_PARTS = 7  # arn:aws:secretsmanager:<region>:<account>:secret:<name>


class Misconfigured(Exception):
    """A configuration problem the action's owner must fix; the message says which."""


@dataclass(frozen=True, slots=True)
class BuildEnvironment:
    variables: dict[str, str]
    # Values read from Parameter Store or Secrets Manager: masked in the log.
    secrets: tuple[str, ...] = ()
    # Names whose values came from those stores (they may not be exported).
    secret_names: frozenset[str] = field(default_factory=frozenset)


class _Secrets:
    """The secrets file, read on first use; values sealed with the installation's key
    (``conveyor:sealed:…``, from ``conveyor secret seal``) are opened as they are used."""

    def __init__(self, path: Path | None, open_sealed: Callable[[str], str] | None = None) -> None:
        self.path = path
        self.open_sealed = open_sealed
        self.loaded: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None

    def _value(self, what: str, raw: object) -> str:
        text = _text(raw)
        if not text.startswith(SEALED):
            return text
        if self.open_sealed is None:
            raise Misconfigured(f"{what} is sealed, and this installation has no key to open it")
        try:
            return self.open_sealed(text.removeprefix(SEALED))
        except Exception as error:
            raise Misconfigured(f"{what} cannot be opened: {error}") from None

    def _load(self) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        if self.loaded is None:
            if self.path is None:
                raise Misconfigured("no secrets file is configured on this installation")
            try:
                data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as error:
                raise Misconfigured(f"cannot read the secrets file: {error}") from error
            if not isinstance(data, dict):
                raise Misconfigured("the secrets file must be a mapping")
            parameters, secrets = data.get("parameters") or {}, data.get("secrets") or {}
            if not isinstance(parameters, dict) or not isinstance(secrets, dict):
                raise Misconfigured("parameters and secrets in the secrets file must be mappings")
            self.loaded = (parameters, secrets)
        return self.loaded

    def parameter(self, name: str) -> str:
        parameters = self._load()[0]
        if name not in parameters:
            raise Misconfigured(f"parameter {name} is not in the secrets file")
        return self._value(f"parameter {name}", parameters[name])

    def secret(self, reference: str) -> str:
        """``secret-id[:json-key[:version-stage[:version-id]]]``; the id may be an ARN."""
        parts = reference.split(":")
        split = _ARN_PARTS if reference.startswith("arn:") else 1
        secret_id, rest = ":".join(parts[:split]), parts[split:]
        json_key, stage, version_id = [*rest, "", "", ""][:3]
        if len(rest) > 3:
            raise Misconfigured(f"invalid secrets-manager reference {reference!r}")
        secrets = self._load()[1]
        candidates = [secret_id]
        if secret_id.startswith("arn:"):
            candidates.append(parts[_ARN_PARTS - 1] if len(parts) >= _ARN_PARTS else secret_id)
        found = next((c for c in candidates if c in secrets), None)
        if found is None:
            raise Misconfigured(f"secret {secret_id} is not in the secrets file")
        if stage not in ("", "AWSCURRENT") or version_id:
            raise Misconfigured(
                f"secret {secret_id}: only the current version (AWSCURRENT) is kept locally"
            )
        value = self._value(f"secret {secret_id}", secrets[found])
        if not json_key:
            return value
        try:
            document = json.loads(value)
        except ValueError:
            raise Misconfigured(
                f"secret {secret_id} is not JSON, so it has no key {json_key}"
            ) from None
        if not isinstance(document, dict) or json_key not in document:
            raise Misconfigured(f"secret {secret_id} has no JSON key {json_key}")
        return _text(document[json_key])


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return "" if value is None else str(value)


def _check_name(name: str, where: str) -> None:
    if not _NAME.match(name):
        raise Misconfigured(f"{where}: {name!r} is not a valid variable name")
    if name.startswith("CODEBUILD_"):
        raise Misconfigured(f"{where}: {name} starts with CODEBUILD_, which is reserved")


def _overrides(configuration: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """The action's ``EnvironmentVariables``: (name, value, type) in order."""
    text = configuration.get("EnvironmentVariables")
    if not text or not text.strip():
        return []
    try:
        entries = json.loads(text)
    except ValueError as error:
        raise Misconfigured(f"EnvironmentVariables is not valid JSON: {error}") from error
    if not isinstance(entries, list):
        raise Misconfigured("EnvironmentVariables must be a JSON list of {name, value, type}")
    out = []
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or not isinstance(entry.get("value"), str)
        ):
            raise Misconfigured("EnvironmentVariables entries need a string name and value")
        kind = entry.get("type", "PLAINTEXT")
        if kind not in _TYPES:
            raise Misconfigured(
                f"EnvironmentVariables {entry['name']}: type must be one of {', '.join(_TYPES)}"
            )
        _check_name(entry["name"], "EnvironmentVariables")
        out.append((entry["name"], entry["value"], kind))
    return out


def _project_variables(
    project: Sequence[tuple[str, str, str]],
) -> list[tuple[str, str, str]]:
    for name, _, _ in project:
        _check_name(name, "the project's environment variables")
    return list(project)


def next_build_number(config: ProviderConfig, project: str) -> int:
    """A per-project counter kept on disk (CODEBUILD_BUILD_NUMBER).

    The new number is written over the old one in place (padded with spaces to its length):
    the file is never truncated, since ext4 flushes a file truncated to zero and written again
    as it is closed, which costs every build milliseconds on a busy disk."""
    path = config.home / "codebuild" / project / "build-number"
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            old = os.pread(fd, 32, 0)
            text = old.decode("ascii", "replace").strip()
            number = (int(text) if text.isdigit() else 0) + 1
            os.pwrite(fd, str(number).encode("ascii").ljust(len(old)), 0)
            return number
        finally:
            os.close(fd)
    except OSError:
        return 1


def codebuild_variables(
    context: JobContext,
    config: ProviderConfig,
    project: str,
    build_number: int,
    sources: Mapping[str, Path],
    primary: str | None,
) -> dict[str, str]:
    """The variables CodeBuild sets in every build (documented ones only)."""
    build_id = f"{project}:{context.action_execution_id}"
    env = {
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "CODEBUILD_CI": "true",
        "CODEBUILD_BUILD_ID": build_id,
        "CODEBUILD_BUILD_ARN": f"arn:aws:codebuild:{config.region}:{config.account}:"
        f"build/{build_id}",
        "CODEBUILD_BUILD_NUMBER": str(build_number),
        "CODEBUILD_BUILD_SUCCEEDING": "1",
        "CODEBUILD_INITIATOR": f"codepipeline/{context.pipeline_name}",
        "CODEBUILD_LOG_PATH": context.action_execution_id,
        "CODEBUILD_START_TIME": str(int(time.time() * 1000)),
    }
    for artifact in context.input_artifacts:
        folder = str(sources[artifact.name])
        location = f"arn:aws:s3:::{artifact.bucket}/{artifact.key}"
        if artifact.name == primary:
            env["CODEBUILD_SRC_DIR"] = folder
            env["CODEBUILD_SOURCE_VERSION"] = location
            if artifact.revision:
                env["CODEBUILD_RESOLVED_SOURCE_VERSION"] = artifact.revision
        else:
            env[f"CODEBUILD_SRC_DIR_{artifact.name}"] = folder
            env[f"CODEBUILD_SOURCE_VERSION_{artifact.name}"] = location
    return env


def build_environment(
    context: JobContext,
    config: ProviderConfig,
    spec: Env,
    base: Mapping[str, str],
    project: Sequence[tuple[str, str, str]] = (),
) -> BuildEnvironment:
    """Inherited basics, then ``base`` (CodeBuild's own), the buildspec's, the project's
    (name, value, type), the action's."""
    variables = {name: os.environ[name] for name in INHERITED if name in os.environ}
    variables.setdefault("PATH", os.defpath)
    variables.update(base)
    store = _Secrets(config.secrets, config.open_sealed)
    secrets: list[str] = []
    secret_names: set[str] = set()
    layers: Sequence[tuple[str, str, str]] = [
        *((name, value, "PLAINTEXT") for name, value in spec.variables),
        *((name, value, "PARAMETER_STORE") for name, value in spec.parameter_store),
        *((name, value, "SECRETS_MANAGER") for name, value in spec.secrets_manager),
        *_project_variables(project),
        *_overrides(context.configuration),
    ]
    for name, given, kind in layers:
        secret_names.discard(name)
        value = given
        if kind == "PARAMETER_STORE":
            value = store.parameter(given)
        elif kind == "SECRETS_MANAGER":
            value = store.secret(given)
        if kind != "PLAINTEXT":
            secret_names.add(name)
            if value:
                secrets.append(value)
        variables[name] = value
    for name in spec.exported_variables:
        if name in secret_names:
            raise Misconfigured(
                f"env.exported-variables: {name} holds a secret and cannot be exported"
            )
        if name.startswith("AWS_"):
            raise Misconfigured(
                f"env.exported-variables: {name} starts with AWS_ and cannot be exported"
            )
    return BuildEnvironment(variables, tuple(secrets), frozenset(secret_names))
