"""CodeBuild's rules for a project beyond its model, and what a build takes from it."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.domain.errors import InvalidInputException
from conveyor.domain.projects import build_project, check_project, definition_of, updated

ENVIRONMENT = {"type": "LINUX_CONTAINER", "image": "i", "computeType": "BUILD_GENERAL1_SMALL"}


def definition(**members: Any) -> dict[str, Any]:
    base = {
        "source": {"type": "CODEPIPELINE"},
        "artifacts": {"type": "CODEPIPELINE"},
        "environment": ENVIRONMENT,
        "serviceRole": "r",
    }
    return definition_of({"name": "app", **base, **members})


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ({"artifacts": {"type": "NO_ARTIFACTS"}}, "artifacts.type"),
        ({"source": {"type": "GITHUB"}, "artifacts": {"type": "NO_ARTIFACTS"}}, "source.location"),
        ({"source": {"type": "NO_SOURCE"}, "artifacts": {"type": "NO_ARTIFACTS"}}, "buildspec"),
        (
            {"source": {"type": "NO_SOURCE", "buildspec": "b"}, "artifacts": {"type": "S3"}},
            "artifacts.location",
        ),
        (
            {
                "environment": {
                    **ENVIRONMENT,
                    "environmentVariables": [
                        {"name": "A", "value": "1"},
                        {"name": "A", "value": "2"},
                    ],
                }
            },
            "names A more than once",
        ),
    ],
)
def test_check_project_refuses_what_codebuild_refuses(members: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInputException, match=named):
        check_project(definition(**members))


def test_a_valid_project_passes_and_gets_codebuild_defaults() -> None:
    made = definition()
    check_project(made)
    assert (made["timeoutInMinutes"], made["queuedTimeoutInMinutes"]) == (60, 480)
    assert "name" not in made


def test_updated_replaces_members_whole() -> None:
    made = definition(source={"type": "CODEPIPELINE", "buildspec": "a.yml"})
    changed = updated(made, {"name": "app", "source": {"type": "CODEPIPELINE"}})
    assert changed["source"] == {"type": "CODEPIPELINE"}
    assert changed["environment"] == ENVIRONMENT


def test_build_project_reads_buildspec_variables_and_timeout() -> None:
    variables = [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "p", "type": "PARAMETER_STORE"},
    ]
    made = definition(
        source={"type": "CODEPIPELINE", "buildspec": "spec.yml"},
        environment={**ENVIRONMENT, "environmentVariables": variables},
        timeoutInMinutes=9,
    )
    project = build_project("app", made)
    assert project.buildspec == "spec.yml"
    assert project.variables == (("A", "1", "PLAINTEXT"), ("B", "p", "PARAMETER_STORE"))
    assert project.timeout_minutes == 9
