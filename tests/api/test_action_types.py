"""ListActionTypes, GetActionType, CreateCustomActionType, UpdateActionType, DeleteCustomActionType."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.api.test_tags import code, create_custom_type
from tests.support.declarations import pipeline

JENKINS = {"category": "Build", "owner": "Custom", "provider": "Jenkins", "version": "1"}


def declaration(
    owner: str = "ThirdParty", provider: str = "Scanner", **extra: Any
) -> dict[str, Any]:
    result = {
        "executor": {"configuration": {"jobWorkerExecutorConfiguration": {}}, "type": "JobWorker"},
        "id": {"category": "Test", "owner": owner, "provider": provider, "version": "1"},
        "inputArtifactDetails": {"minimumCount": 1, "maximumCount": 1},
        "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 0},
        "properties": [{"name": "Level", "optional": False, "key": True, "noEcho": False}],
    }
    result.update(extra)
    return result


def ids(types: list[dict[str, Any]]) -> list[str]:
    return [
        "/".join(t["id"][k] for k in ("owner", "category", "provider", "version")) for t in types
    ]


def test_list_action_types_has_the_builtin_catalog(client: Any) -> None:
    listed = ids(client.list_action_types()["actionTypes"])
    for expected in (
        "AWS/Source/Git/1",
        "AWS/Source/CodeCommit/1",
        "AWS/Source/CodeStarSourceConnection/1",
        "AWS/Source/S3/1",
        "AWS/Build/CodeBuild/1",
        "AWS/Test/CodeBuild/1",
        "AWS/Compute/Commands/1",
        "AWS/Approval/Manual/1",
        "AWS/Deploy/S3/1",
    ):
        assert expected in listed


def test_list_action_types_filters_by_owner_and_region(client: Any) -> None:
    create_custom_type(client)
    custom = client.list_action_types(actionOwnerFilter="Custom")["actionTypes"]
    assert ids(custom) == ["Custom/Build/Jenkins/1"]
    assert all(
        t["id"]["owner"] == "AWS"
        for t in client.list_action_types(actionOwnerFilter="AWS")["actionTypes"]
    )
    assert client.list_action_types(regionFilter="eu-west-1")["actionTypes"] == []
    assert client.list_action_types(regionFilter="us-east-1")["actionTypes"]


def test_create_custom_action_type_returns_the_type(client: Any) -> None:
    created = create_custom_type(
        client,
        settings={"entityUrlTemplate": "https://ci.example.com/job/{Config:Job}"},
        configurationProperties=[
            {
                "name": "Job",
                "required": True,
                "key": True,
                "secret": False,
                "queryable": True,
                "type": "String",
            },
            {"name": "Token", "required": False, "key": False, "secret": True},
        ],
    )["actionType"]
    assert created["id"] == JENKINS
    assert created["settings"] == {"entityUrlTemplate": "https://ci.example.com/job/{Config:Job}"}
    assert [p["name"] for p in created["actionConfigurationProperties"]] == ["Job", "Token"]
    assert created["inputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 5}


def test_create_custom_action_type_again_identical_is_fine_different_is_not(client: Any) -> None:
    create_custom_type(client)
    create_custom_type(client)
    with pytest.raises(ClientError) as excinfo:
        client.create_custom_action_type(
            category="Build",
            provider="Jenkins",
            version="1",
            inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
            outputArtifactDetails={"minimumCount": 0, "maximumCount": 5},
        )
    assert code(excinfo) == "ValidationException"


@pytest.mark.parametrize(
    "properties",
    [
        [
            {"name": "A", "required": True, "key": True, "secret": False, "queryable": True},
            {"name": "B", "required": True, "key": False, "secret": False, "queryable": True},
        ],
        [{"name": "A", "required": False, "key": True, "secret": False, "queryable": True}],
        [{"name": "A", "required": True, "key": True, "secret": True, "queryable": True}],
        [
            {"name": "A", "required": True, "key": True, "secret": False},
            {"name": "A", "required": False, "key": False, "secret": False},
        ],
    ],
)
def test_create_custom_action_type_property_rules(
    client: Any, properties: list[dict[str, Any]]
) -> None:
    with pytest.raises(ClientError) as excinfo:
        create_custom_type(client, configurationProperties=properties)
    assert code(excinfo) == "ValidationException"
    assert client.list_action_types(actionOwnerFilter="Custom")["actionTypes"] == []


def test_delete_custom_action_type_then_pipelines_cannot_use_it(client: Any) -> None:
    create_custom_type(client)
    client.delete_custom_action_type(category="Build", provider="Jenkins", version="1")
    client.delete_custom_action_type(category="Build", provider="Jenkins", version="1")
    assert client.list_action_types(actionOwnerFilter="Custom")["actionTypes"] == []
    declaration_ = pipeline()
    declaration_["stages"][1]["actions"][0]["actionTypeId"] = JENKINS
    declaration_["stages"][1]["actions"][0]["configuration"] = {}
    with pytest.raises(ClientError) as excinfo:
        client.create_pipeline(pipeline=declaration_)
    assert code(excinfo) == "InvalidActionDeclarationException"
    # The identical definition restores it.
    create_custom_type(client)
    assert client.create_pipeline(pipeline=declaration_)["pipeline"]["version"] == 1


def test_get_action_type_builtin(client: Any) -> None:
    found = client.get_action_type(category="Build", owner="AWS", provider="CodeBuild", version="1")
    action_type = found["actionType"]
    assert action_type["id"] == {
        "category": "Build",
        "owner": "AWS",
        "provider": "CodeBuild",
        "version": "1",
    }
    assert action_type["executor"]["type"] == "JobWorker"
    names = {p["name"]: p for p in action_type["properties"]}
    assert names["ProjectName"]["optional"] is False
    assert action_type["inputArtifactDetails"] == {"minimumCount": 1, "maximumCount": 5}


def test_get_action_type_not_found_and_custom_owner_rejected(unchecked_client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        unchecked_client.get_action_type(
            category="Build", owner="AWS", provider="Nope", version="1"
        )
    assert code(excinfo) == "ActionTypeNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        unchecked_client.get_action_type(
            category="Build", owner="Custom", provider="Jenkins", version="1"
        )
    assert code(excinfo) == "ValidationException"


def test_update_action_type_registers_and_updates_a_third_party_type(client: Any) -> None:
    client.update_action_type(actionType=declaration(description="first"))
    found = client.get_action_type(
        category="Test", owner="ThirdParty", provider="Scanner", version="1"
    )
    assert found["actionType"]["description"] == "first"
    client.update_action_type(actionType=declaration(description="second"))
    found = client.get_action_type(
        category="Test", owner="ThirdParty", provider="Scanner", version="1"
    )
    assert found["actionType"]["description"] == "second"
    assert "ThirdParty/Test/Scanner/1" in ids(
        client.list_action_types(actionOwnerFilter="ThirdParty")["actionTypes"]
    )


def test_update_action_type_errors(client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.update_action_type(actionType=declaration(owner="AWS", provider="CodeBuild"))
    assert code(excinfo) == "RequestFailedException"
    with pytest.raises(ClientError) as excinfo:
        client.update_action_type(actionType=declaration(owner="AWS", provider="Nope"))
    assert code(excinfo) == "ActionTypeNotFoundException"
    bad_counts = declaration(inputArtifactDetails={"minimumCount": 3, "maximumCount": 1})
    with pytest.raises(ClientError) as excinfo:
        client.update_action_type(actionType=bad_counts)
    assert code(excinfo) == "ValidationException"
