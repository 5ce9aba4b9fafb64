"""Pipeline declarations for tests: a valid one, and ways to change it."""

from __future__ import annotations

import copy
from typing import Any

ROLE = "arn:aws:iam::000000000000:role/conveyor"


def source_action(name: str = "Source", output: str = "SourceOutput") -> dict[str, Any]:
    return {
        "name": name,
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "Git", "version": "1"},
        "configuration": {"RepositoryUrl": "https://example.com/app.git", "BranchName": "main"},
        "outputArtifacts": [{"name": output}],
    }


CONNECTION_ARN = "arn:aws:codestar-connections:us-east-1:000000000000:connection/local"


def connection_source(
    output: str = "SourceOutput", namespace: str | None = None, **config: str
) -> dict[str, Any]:
    """A CodeStarSourceConnection source of ``team/app`` on branch main."""
    action: dict[str, Any] = {
        "name": "Source",
        "actionTypeId": {
            "category": "Source",
            "owner": "AWS",
            "provider": "CodeStarSourceConnection",
            "version": "1",
        },
        "configuration": {
            "ConnectionArn": CONNECTION_ARN,
            "FullRepositoryId": "team/app",
            "BranchName": "main",
            **config,
        },
        "outputArtifacts": [{"name": output}],
    }
    if namespace:
        action["namespace"] = namespace
    return action


def build_action(
    name: str = "Build", inputs: tuple[str, ...] = ("SourceOutput",)
) -> dict[str, Any]:
    return {
        "name": name,
        "actionTypeId": {
            "category": "Build",
            "owner": "AWS",
            "provider": "CodeBuild",
            "version": "1",
        },
        "configuration": {"ProjectName": "app"},
        "inputArtifacts": [{"name": n} for n in inputs],
    }


def pipeline(name: str = "app", **changes: Any) -> dict[str, Any]:
    """A valid two-stage pipeline: a Git source, then a CodeBuild build."""
    declaration: dict[str, Any] = {
        "name": name,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "conveyor-artifacts"},
        "stages": [
            {"name": "Source", "actions": [source_action()]},
            {"name": "Build", "actions": [build_action()]},
        ],
    }
    declaration.update(copy.deepcopy(changes))
    return declaration
