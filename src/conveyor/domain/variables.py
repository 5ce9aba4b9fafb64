"""Variables: ``#{namespace.name}`` references and their resolution just before an action runs.

Three kinds of namespace: ``codepipeline`` (``PipelineExecutionId``), ``variables`` (the
pipeline-level variables of the execution) and an action's own ``namespace``, whose output
variables are visible only to actions that always run after it: a later stage, or the same
stage with a higher runOrder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CODEPIPELINE = "codepipeline"
PIPELINE_VARIABLES = "variables"
REFERENCE = re.compile(r"#\{([A-Za-z0-9@\-_]+)\.([A-Za-z0-9@\-_.]+)\}")
# All output variables of one action, in bytes (CodePipeline's limit).
MAX_OUTPUT_BYTES = 122_880


class UnresolvedVariable(ValueError):
    """A reference that names no visible namespace or no variable in it."""


@dataclass(frozen=True, slots=True)
class Reference:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"#{{{self.namespace}.{self.name}}}"


def references(text: str) -> list[Reference]:
    return [Reference(m[1], m[2]) for m in REFERENCE.finditer(text)]


def all_references(values: Iterable[str]) -> list[Reference]:
    return [ref for value in values for ref in references(value)]


def resolve(text: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """``text`` with every reference replaced from ``values`` (namespace → name → value)."""

    def substitute(match: re.Match[str]) -> str:
        namespace = values.get(match[1])
        if namespace is None:
            raise UnresolvedVariable(
                f"#{{{match[1]}.{match[2]}}}: namespace '{match[1]}' is not available to this "
                "action (it must belong to an action that runs before it)."
            )
        if match[2] not in namespace:
            raise UnresolvedVariable(
                f"#{{{match[1]}.{match[2]}}}: namespace '{match[1]}' has no variable '{match[2]}'."
            )
        return namespace[match[2]]

    return REFERENCE.sub(substitute, text)


def output_size(variables: Mapping[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in variables.items())
