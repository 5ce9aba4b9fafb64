"""Action declarations the benchmarks share: a Git source and a Commands action."""

from __future__ import annotations

from typing import Any


def action_type(category: str, provider: str) -> dict[str, str]:
    return {"category": category, "owner": "AWS", "provider": provider, "version": "1"}


def git_source(url: str, output: str = "Src", name: str = "Source") -> dict[str, Any]:
    """A Git source of branch ``main`` of ``url``, into the artifact ``output``."""
    return {
        "name": name,
        "actionTypeId": action_type("Source", "Git"),
        "configuration": {"RepositoryUrl": url, "BranchName": "main"},
        "outputArtifacts": [{"name": output}],
    }


def commands(
    name: str, *lines: str, source: str = "Src", run_order: int = 1, **extra: Any
) -> dict[str, Any]:
    """A Commands action running ``lines`` over the artifact ``source``."""
    return {
        "name": name,
        "actionTypeId": action_type("Compute", "Commands"),
        "commands": list(lines),
        "inputArtifacts": [{"name": source}],
        "runOrder": run_order,
        **extra,
    }
