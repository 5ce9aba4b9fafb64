"""Pipelines written for AWS, in the shapes the user guide shows (``get-pipeline`` output), are
stored unchanged; ListActionTypes and GetActionType report the catalog."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.test_tags import code
from tests.unit.test_catalog import REFERENCE

DEFINITIONS = sorted((Path(__file__).parent / "definitions").glob("*.json"))
MASK = "****"


def _secrets_masked(declaration: dict[str, Any]) -> dict[str, Any]:
    """The declaration as GetPipeline shows it: secret properties masked."""
    shown = copy.deepcopy(declaration)
    for stage in shown["stages"]:
        for action in stage["actions"]:
            for name in ("OAuthToken", "ClientSecret", "RefreshToken"):
                if name in action.get("configuration", {}):
                    action["configuration"][name] = MASK
    return shown


def _without_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v not in ([], {})}
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.stem)
def test_a_real_world_definition_is_accepted_unchanged(client: Any, path: Path) -> None:
    declaration = json.loads(path.read_text())["pipeline"]
    declaration.pop("version", None)
    # get-pipeline shows secrets masked; a new pipeline needs the real values, and GetPipeline
    # masks them again, as AWS does.
    for stage in declaration["stages"]:
        for action in stage["actions"]:
            for name, value in action["configuration"].items():
                if value == MASK:
                    action["configuration"][name] = "not-a-real-secret"
    created = client.create_pipeline(pipeline=declaration)["pipeline"]
    assert created["name"] == declaration["name"]
    stored = client.get_pipeline(name=declaration["name"])["pipeline"]
    for member in ("name", "roleArn", "artifactStore"):
        assert stored[member] == declaration[member]
    expected = _without_empty(_secrets_masked(declaration)["stages"])
    assert _without_empty(stored["stages"]) == expected


def test_definitions_cover_every_common_provider() -> None:
    used = set()
    for path in DEFINITIONS:
        for stage in json.loads(path.read_text())["pipeline"]["stages"]:
            for action in stage["actions"]:
                type_id = action["actionTypeId"]
                used.add((type_id["owner"], type_id["category"], type_id["provider"]))
    # Conveyor's own Source/Git has tests of its own.
    assert used >= REFERENCE - {("AWS", "Source", "Git")}


def ids(types: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(t["id"]["owner"], t["id"]["category"], t["id"]["provider"]) for t in types}


def test_list_action_types_reports_the_reference(client: Any) -> None:
    listed = client.list_action_types()["actionTypes"]
    assert ids(listed) == REFERENCE
    assert ids(client.list_action_types(actionOwnerFilter="ThirdParty")["actionTypes"]) == {
        ("ThirdParty", "Deploy", "AlexaSkillsKit"),
        ("ThirdParty", "Source", "GitHub"),
    }
    (cfn,) = [t for t in listed if t["id"]["provider"] == "CloudFormation"]
    assert cfn["inputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 10}
    assert cfn["outputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 1}
    required = {p["name"] for p in cfn["actionConfigurationProperties"] if p["required"]}
    assert required == {"ActionMode", "StackName"}
    (github,) = [t for t in listed if t["id"]["provider"] == "GitHub"]
    (token,) = [p for p in github["actionConfigurationProperties"] if p["name"] == "OAuthToken"]
    assert token["secret"] and token["required"]


def test_get_action_type_says_how_the_type_runs_here(client: Any) -> None:
    def described(category: str, provider: str, owner: str = "AWS") -> dict[str, Any]:
        found: dict[str, Any] = client.get_action_type(
            category=category, owner=owner, provider=provider, version="1"
        )["actionType"]
        return found

    cfn = described("Deploy", "CloudFormation")
    assert "aws_endpoints.cloudformation" in cfn["description"]
    assert cfn["executor"]["jobTimeout"] == 3 * 24 * 60 * 60
    beanstalk = described("Deploy", "ElasticBeanstalk")
    assert "no executor" in beanstalk["description"]
    assert "worker_action_types" in beanstalk["description"]
    assert "Runs in Conveyor" in described("Source", "GitHub", "ThirdParty")["description"]


def test_update_action_type_cannot_change_a_built_in_third_party_type(client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.update_action_type(
            actionType={
                "executor": {
                    "configuration": {"jobWorkerExecutorConfiguration": {}},
                    "type": "JobWorker",
                },
                "id": {
                    "category": "Source",
                    "owner": "ThirdParty",
                    "provider": "GitHub",
                    "version": "1",
                },
                "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 0},
                "outputArtifactDetails": {"minimumCount": 1, "maximumCount": 1},
            }
        )
    assert code(excinfo) == "RequestFailedException"
