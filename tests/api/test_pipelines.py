"""CreatePipeline, GetPipeline, UpdatePipeline, DeletePipeline, ListPipelines through boto3."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conveyor.server import Running
from tests.support.declarations import build_action, pipeline, source_action


def error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    code: str = excinfo.value.response["Error"]["Code"]
    return code


def test_create_pipeline_fills_defaults_and_returns_tags(client: Any) -> None:
    response = client.create_pipeline(pipeline=pipeline(), tags=[{"key": "team", "value": "web"}])
    created = response["pipeline"]
    assert created["version"] == 1
    assert created["pipelineType"] == "V1"
    assert created["executionMode"] == "SUPERSEDED"
    build = created["stages"][1]["actions"][0]
    assert build["runOrder"] == 1
    assert build["outputArtifacts"] == []
    assert created["stages"][0]["actions"][0]["inputArtifacts"] == []
    assert response["tags"] == [{"key": "team", "value": "web"}]
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def test_get_pipeline_returns_metadata(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline())
    response = client.get_pipeline(name="app")
    metadata = response["metadata"]
    assert metadata["pipelineArn"] == "arn:aws:codepipeline:us-east-1:000000000000:app"
    assert isinstance(metadata["created"], datetime.datetime)
    assert metadata["created"] == metadata["updated"]
    assert response["pipeline"]["name"] == "app"


def test_get_pipeline_not_found(client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.get_pipeline(name="missing")
    assert error_code(excinfo) == "PipelineNotFoundException"
    assert "missing" in excinfo.value.response["Error"]["Message"]


def test_update_pipeline_adds_a_version_and_keeps_every_version(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline())
    changed = pipeline()
    changed["stages"][1]["actions"].append(build_action("Test"))
    changed["stages"][1]["actions"][1]["runOrder"] = 2
    updated = client.update_pipeline(pipeline=changed)["pipeline"]
    assert updated["version"] == 2
    assert [a["name"] for a in updated["stages"][1]["actions"]] == ["Build", "Test"]
    old = client.get_pipeline(name="app", version=1)["pipeline"]
    assert old["version"] == 1
    assert len(old["stages"][1]["actions"]) == 1
    latest = client.get_pipeline(name="app")
    assert latest["pipeline"]["version"] == 2
    assert latest["metadata"]["updated"] >= latest["metadata"]["created"]


def test_update_pipeline_ignores_the_version_it_is_sent(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline())
    assert client.update_pipeline(pipeline=pipeline(version=7))["pipeline"]["version"] == 2


def test_update_pipeline_not_found(client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.update_pipeline(pipeline=pipeline("missing"))
    assert error_code(excinfo) == "PipelineNotFoundException"


def test_get_pipeline_version_not_found(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline())
    with pytest.raises(ClientError) as excinfo:
        client.get_pipeline(name="app", version=2)
    assert error_code(excinfo) == "PipelineVersionNotFoundException"


def test_create_pipeline_name_in_use(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline())
    with pytest.raises(ClientError) as excinfo:
        client.create_pipeline(pipeline=pipeline())
    assert error_code(excinfo) == "PipelineNameInUseException"


def test_delete_pipeline_is_idempotent_and_forgets_everything(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline(), tags=[{"key": "k", "value": "v"}])
    client.update_pipeline(pipeline=pipeline())
    client.delete_pipeline(name="app")
    client.delete_pipeline(name="app")
    with pytest.raises(ClientError):
        client.get_pipeline(name="app")
    recreated = client.create_pipeline(pipeline=pipeline())
    assert recreated["pipeline"]["version"] == 1
    assert "tags" not in recreated


def test_list_pipelines_pages_through_everything(client: Any) -> None:
    names = [f"p{i:02d}" for i in range(7)]
    for name in reversed(names):
        client.create_pipeline(pipeline=pipeline(name))
    first = client.list_pipelines(maxResults=3)
    assert [p["name"] for p in first["pipelines"]] == names[:3]
    summary = first["pipelines"][0]
    assert set(summary) == {
        "name",
        "version",
        "pipelineType",
        "executionMode",
        "created",
        "updated",
    }
    seen = []
    for page in client.get_paginator("list_pipelines").paginate(PaginationConfig={"PageSize": 2}):
        seen += [p["name"] for p in page["pipelines"]]
    assert seen == names
    last = client.list_pipelines(maxResults=3, nextToken=first["nextToken"])
    assert "nextToken" in last
    end = client.list_pipelines(maxResults=3, nextToken=last["nextToken"])
    assert [p["name"] for p in end["pipelines"]] == names[6:]
    assert "nextToken" not in end


@pytest.mark.parametrize("token", ["garbage", "e30.AAAAAAAAAAAAAAAAAAAAAA", "x" * 2048])
def test_list_pipelines_invalid_next_token(client: Any, token: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.list_pipelines(nextToken=token)
    assert error_code(excinfo) == "InvalidNextTokenException"


def test_next_token_is_bound_to_its_operation(client: Any) -> None:
    for name in ("a", "b"):
        client.create_pipeline(pipeline=pipeline(name))
    token = client.list_pipelines(maxResults=1)["nextToken"]
    with pytest.raises(ClientError) as excinfo:
        client.list_tags_for_resource(
            resourceArn="arn:aws:codepipeline:us-east-1:000000000000:a", nextToken=token
        )
    assert error_code(excinfo) == "InvalidNextTokenException"


def test_list_pipelines_max_results_range(client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.list_pipelines(maxResults=1001)
    assert error_code(excinfo) == "ValidationException"
    assert "Member must have value less than or equal to 1000" in str(excinfo.value)
    assert client.list_pipelines(maxResults=1000)["pipelines"] == []


def test_validation_reports_every_violation_with_its_path(unchecked_client: Any) -> None:
    bad = pipeline("bad name")
    bad["stages"][0]["name"] = ""
    bad["stages"][1]["actions"][0]["runOrder"] = 1000
    del bad["roleArn"]
    with pytest.raises(ClientError) as excinfo:
        unchecked_client.create_pipeline(pipeline=bad)
    message = excinfo.value.response["Error"]["Message"]
    assert error_code(excinfo) == "ValidationException"
    assert message.startswith("5 validation errors detected: ")
    assert (
        "Value 'bad name' at 'pipeline.name' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: [A-Za-z0-9.@\\-_]+" in message
    )
    assert (
        "Value null at 'pipeline.roleArn' failed to satisfy constraint: Member must not be null"
        in message
    )
    assert (
        "at 'pipeline.stages.1.member.name' failed to satisfy constraint: Member must have length greater than or equal to 1"
        in message
    )
    assert "Value '1000' at 'pipeline.stages.2.member.actions.1.member.runOrder'" in message


def test_long_configuration_values_are_accepted(client: Any) -> None:
    declaration = pipeline()
    declaration["stages"][1]["actions"][0]["configuration"]["BuildSpec"] = "x" * 20_000
    created = client.create_pipeline(pipeline=declaration)["pipeline"]
    assert len(created["stages"][1]["actions"][0]["configuration"]["BuildSpec"]) == 20_000


def _with_stages(*stages: dict[str, Any]) -> dict[str, Any]:
    return pipeline(stages=list(stages))


def _stage(name: str, *actions: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "actions": list(actions)}


STRUCTURE_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "one stage": (_with_stages(_stage("Source", source_action())), "InvalidStructureException"),
    "build in the first stage": (
        _with_stages(
            _stage("Source", source_action(), build_action()), _stage("Build", build_action("B2"))
        ),
        "InvalidStructureException",
    ),
    "source in a later stage": (
        _with_stages(
            _stage("Source", source_action()),
            _stage("Build", build_action(), source_action("Other", "Other")),
        ),
        "InvalidStructureException",
    ),
    "input nobody produces": (
        _with_stages(
            _stage("Source", source_action()), _stage("Build", build_action(inputs=("Nope",)))
        ),
        "InvalidStructureException",
    ),
    "input from a parallel action": (
        _with_stages(
            _stage("Source", source_action()),
            _stage(
                "Build",
                {**build_action("A"), "outputArtifacts": [{"name": "Out"}]},
                build_action("B", inputs=("Out",)),
            ),
        ),
        "InvalidStructureException",
    ),
    "duplicate output artifact": (
        _with_stages(
            _stage("Source", source_action(), source_action("Other")),
            _stage("Build", build_action()),
        ),
        "InvalidStructureException",
    ),
    "duplicate stage name": (
        _with_stages(
            _stage("Source", source_action()),
            _stage("B", build_action()),
            _stage("B", build_action("X")),
        ),
        "InvalidStructureException",
    ),
    "duplicate action name": (
        _with_stages(
            _stage("Source", source_action()), _stage("B", build_action(), build_action())
        ),
        "InvalidStageDeclarationException",
    ),
    "unknown action type": (
        _with_stages(
            _stage("Source", source_action()),
            _stage(
                "B",
                {
                    **build_action(),
                    "actionTypeId": {
                        "category": "Build",
                        "owner": "AWS",
                        "provider": "Nope",
                        "version": "1",
                    },
                },
            ),
        ),
        "InvalidActionDeclarationException",
    ),
    "missing required configuration": (
        _with_stages(
            _stage("Source", source_action()), _stage("B", {**build_action(), "configuration": {}})
        ),
        "InvalidActionDeclarationException",
    ),
    "unknown configuration key": (
        _with_stages(
            _stage("Source", source_action()),
            _stage("B", {**build_action(), "configuration": {"ProjectName": "x", "Colour": "red"}}),
        ),
        "InvalidActionDeclarationException",
    ),
    "too few input artifacts": (
        _with_stages(_stage("Source", source_action()), _stage("B", build_action(inputs=()))),
        "InvalidActionDeclarationException",
    ),
    "duplicate namespace": (
        _with_stages(
            _stage("Source", {**source_action(), "namespace": "ns"}),
            _stage("B", {**build_action(), "namespace": "ns"}),
        ),
        "InvalidActionDeclarationException",
    ),
    "timeout on a build": (
        _with_stages(
            _stage("Source", source_action()),
            _stage("B", {**build_action(), "timeoutInMinutes": 10}),
        ),
        "InvalidActionDeclarationException",
    ),
    "V2 feature on a V1 pipeline": (
        pipeline(pipelineType="V1", executionMode="QUEUED"),
        "InvalidStructureException",
    ),
}


@pytest.mark.parametrize("case", list(STRUCTURE_CASES))
def test_create_pipeline_structure_errors_leave_nothing(client: Any, case: str) -> None:
    declaration, code = STRUCTURE_CASES[case]
    with pytest.raises(ClientError) as excinfo:
        client.create_pipeline(pipeline=declaration, tags=[{"key": "k", "value": "v"}])
    assert error_code(excinfo) == code
    assert client.list_pipelines()["pipelines"] == []


def test_update_pipeline_structure_error_keeps_the_current_version(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline())
    broken = pipeline()
    broken["stages"][1]["actions"][0]["inputArtifacts"] = [{"name": "Nope"}]
    with pytest.raises(ClientError):
        client.update_pipeline(pipeline=broken)
    assert client.get_pipeline(name="app")["pipeline"]["version"] == 1


def test_v2_features_make_an_untyped_pipeline_v2(client: Any) -> None:
    declaration = pipeline(
        executionMode="QUEUED", variables=[{"name": "env", "defaultValue": "dev"}]
    )
    created = client.create_pipeline(pipeline=declaration)["pipeline"]
    assert (created["pipelineType"], created["executionMode"]) == ("V2", "QUEUED")
    summary = client.list_pipelines()["pipelines"][0]
    assert (summary["pipelineType"], summary["executionMode"]) == ("V2", "QUEUED")


def test_custom_action_type_in_a_pipeline_and_its_secret_is_masked(
    client: Any, server: Running
) -> None:
    client.create_custom_action_type(
        category="Deploy",
        provider="Rollout",
        version="1",
        configurationProperties=[
            {"name": "Target", "required": True, "key": True, "secret": False},
            {"name": "Password", "required": True, "key": False, "secret": True},
        ],
        inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
    )
    deploy = {
        "name": "Deploy",
        "actionTypeId": {
            "category": "Deploy",
            "owner": "Custom",
            "provider": "Rollout",
            "version": "1",
        },
        "configuration": {"Target": "prod", "Password": "hunter2"},
        "inputArtifacts": [{"name": "SourceOutput"}],
    }
    declaration = pipeline()
    declaration["stages"].append(_stage("Deploy", deploy))
    created = client.create_pipeline(pipeline=declaration)["pipeline"]
    assert created["stages"][2]["actions"][0]["configuration"] == {
        "Target": "prod",
        "Password": "****",
    }
    read = client.get_pipeline(name="app")["pipeline"]
    assert read["stages"][2]["actions"][0]["configuration"]["Password"] == "****"
    # Sending the mask back keeps the stored secret.
    updated = client.update_pipeline(pipeline=read)["pipeline"]
    assert updated["version"] == 2
    services = server.application.services
    with services.store.read() as tx:
        record = tx.pipelines.get("app")
        assert record is not None
        stored = tx.pipelines.declaration(record.id, 2)
    assert stored is not None
    assert stored["stages"][2]["actions"][0]["configuration"]["Password"] == "hunter2"


def test_mask_on_a_new_action_is_rejected(client: Any) -> None:
    client.create_custom_action_type(
        category="Deploy",
        provider="Rollout",
        version="1",
        configurationProperties=[
            {"name": "Password", "required": True, "key": False, "secret": True}
        ],
        inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
    )
    declaration = pipeline()
    declaration["stages"].append(
        _stage(
            "Deploy",
            {
                "name": "Deploy",
                "actionTypeId": {
                    "category": "Deploy",
                    "owner": "Custom",
                    "provider": "Rollout",
                    "version": "1",
                },
                "configuration": {"Password": "****"},
                "inputArtifacts": [{"name": "SourceOutput"}],
            },
        )
    )
    with pytest.raises(ClientError) as excinfo:
        client.create_pipeline(pipeline=declaration)
    assert error_code(excinfo) == "InvalidActionDeclarationException"
