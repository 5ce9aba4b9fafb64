"""Transformations of a declaration in its wire shape: defaults, versions, secret masking.

What is stored is the declaration as accepted with defaults filled in, its secret
configuration values sealed (encrypted) when the installation has a key; what is read back has
every secret configuration value replaced by the mask. A mask sent back in an update keeps
the value stored for the same action of the previous version.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.pipeline import DEFAULT_RUN_ORDER, MASK, ExecutionMode, PipelineType

# The names of an action type's secret configuration properties.
SecretNames = Callable[[ActionTypeId], frozenset[str]]

Declaration = dict[str, Any]
# How a sealed value starts, in a stored declaration.
SEALED = "conveyor:sealed:"


def _actions(declaration: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for stage in declaration.get("stages") or ():
        for action in stage.get("actions") or ():
            yield stage["name"], action


def _type_id(action: Mapping[str, Any]) -> ActionTypeId:
    t = action["actionTypeId"]
    return ActionTypeId(t["category"], t["owner"], t["provider"], t["version"])


def normalized(
    declaration: Mapping[str, Any],
    *,
    version: int,
    pipeline_type: PipelineType,
    execution_mode: ExecutionMode,
) -> Declaration:
    """A copy with the version set and the defaults CodePipeline fills in on output."""
    result = copy.deepcopy(dict(declaration))
    result["version"] = version
    result["pipelineType"] = pipeline_type.value
    result["executionMode"] = execution_mode.value
    for _, action in _actions(result):
        action.setdefault("runOrder", DEFAULT_RUN_ORDER)
        action.setdefault("configuration", {})
        action.setdefault("inputArtifacts", [])
        action.setdefault("outputArtifacts", [])
    return result


def masked(declaration: Mapping[str, Any], secrets: SecretNames) -> Declaration:
    """The declaration with every secret configuration value replaced by the mask.

    Without secrets to hide this is the declaration itself, not a copy: reading it back is the
    hot path, and neither this function nor its callers change what they read.
    """
    if not any(
        secrets(_type_id(action)) & (action.get("configuration") or {}).keys()
        for _, action in _actions(declaration)
    ):
        return dict(declaration)
    result = copy.deepcopy(dict(declaration))
    for _, action in _actions(result):
        config = action.get("configuration")
        if config:
            for name in secrets(_type_id(action)) & config.keys():
                config[name] = MASK
    return result


def restore_secrets(
    declaration: Mapping[str, Any], previous: Mapping[str, Any], secrets: SecretNames
) -> Declaration:
    """A copy where masked secret values take the previous version's value for that action."""
    before = {
        (stage, action["name"]): action.get("configuration") or {}
        for stage, action in _actions(previous)
    }
    result = copy.deepcopy(dict(declaration))
    for stage, action in _actions(result):
        config = action.get("configuration")
        if not config:
            continue
        old = before.get((stage, action["name"]), {})
        for name in secrets(_type_id(action)) & config.keys():
            if config[name] == MASK and name in old:
                config[name] = old[name]
    return result


def leftover_masks(
    declaration: Mapping[str, Any], secrets: SecretNames
) -> list[tuple[str, str, str]]:
    """(stage, action, property) of secret values still masked after `restore_secrets`."""
    return [
        (stage, action["name"], name)
        for stage, action in _actions(declaration)
        for name in sorted(secrets(_type_id(action)) & (action.get("configuration") or {}).keys())
        if action["configuration"][name] == MASK
    ]


def sealed(
    declaration: Mapping[str, Any], secrets: SecretNames, seal: Callable[[str], str]
) -> Declaration:
    """A copy with every secret configuration value sealed by ``seal``, as it is stored."""
    result = copy.deepcopy(dict(declaration))
    for _, action in _actions(result):
        config = action.get("configuration")
        if config:
            for name in secrets(_type_id(action)) & config.keys():
                value = config[name]
                if isinstance(value, str) and not value.startswith(SEALED):
                    config[name] = SEALED + seal(value)
    return result


def opened(declaration: Mapping[str, Any], open_: Callable[[str], str]) -> Declaration:
    """A copy with every sealed configuration value opened by ``open_``."""
    result = copy.deepcopy(dict(declaration))
    for _, action in _actions(result):
        config = action.get("configuration") or {}
        for name, value in config.items():
            if isinstance(value, str) and value.startswith(SEALED):
                config[name] = open_(value.removeprefix(SEALED))
    return result
