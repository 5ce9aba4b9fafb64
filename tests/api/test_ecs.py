"""Deploy/ECS in real pipelines, with moto's server as the ECS endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.actions.ecsdeploy import new_task_definition
from tests.conftest import make_client
from tests.support.engine import (
    action_state,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_status,
)
from tests.support.moto import aws_client, moto_server, server_calling


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def client(tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with server_calling(tmp_path, monkeypatch, aws_endpoints={"ecs": endpoint}) as live:
        yield make_client(live.endpoint)


@pytest.fixture
def ecs(endpoint: str) -> Any:
    return aws_client("ecs", endpoint)


def _service(ecs: Any, cluster: str) -> str:
    """A service running revision 1 of task definition ``web``; its task definition ARN."""
    ecs.create_cluster(clusterName=cluster)
    registered = ecs.register_task_definition(
        family=f"{cluster}-web",
        executionRoleArn="arn:aws:iam::000000000000:role/exec",
        containerDefinitions=[
            {"name": "web", "image": "nginx:1.25", "memory": 128, "essential": True},
            {"name": "sidecar", "image": "busybox:1", "memory": 64},
        ],
    )["taskDefinition"]
    ecs.create_service(
        cluster=cluster,
        serviceName="web",
        taskDefinition=registered["taskDefinitionArn"],
        desiredCount=0,
    )
    return str(registered["taskDefinitionArn"])


def _deploy(cluster: str, **configuration: str) -> dict[str, Any]:
    return {
        "name": "Deploy",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
        "configuration": {"ClusterName": cluster, "ServiceName": "web", **configuration},
        "inputArtifacts": [{"name": "Src"}],
    }


def _run(client: Any, tmp_path: Path, name: str, files: dict[str, str], action: Any) -> str:
    repo = tmp_path / name
    make_repo(repo, files)
    client.create_pipeline(pipeline=declaration(name, repo, stage("Deploy", action)))
    return wait_status(
        client, name, latest_execution_id(client, name), "Succeeded", "Failed", timeout=60
    )


def test_an_ecs_deploy_registers_a_revision_and_updates_the_service(
    client: Any, ecs: Any, tmp_path: Path
) -> None:
    first = _service(ecs, "shop")
    images = json.dumps([{"name": "web", "imageUri": "registry.example.com/web:2.0"}])
    status = _run(client, tmp_path, "shop", {"imagedefinitions.json": images}, _deploy("shop"))
    assert status == "Succeeded", action_state(client, "shop", "Deploy", "Deploy")
    (service,) = ecs.describe_services(cluster="shop", services=["web"])["services"]
    assert service["taskDefinition"] != first
    current = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    definition = current["taskDefinition"]
    assert definition["revision"] == 2
    assert {c["name"]: c["image"] for c in definition["containerDefinitions"]} == {
        "web": "registry.example.com/web:2.0",
        "sidecar": "busybox:1",
    }
    state = action_state(client, "shop", "Deploy", "Deploy")
    assert state["externalExecutionId"] == service["taskDefinition"]


def test_an_unknown_container_or_file_fails_the_deploy(
    client: Any, ecs: Any, tmp_path: Path
) -> None:
    _service(ecs, "bad")
    images = json.dumps([{"name": "api", "imageUri": "registry.example.com/api:1"}])
    assert _run(client, tmp_path, "bad", {"images.json": images}, _deploy("bad")) == "Failed"
    message = action_state(client, "bad", "Deploy", "Deploy")["errorDetails"]["message"]
    assert "imagedefinitions.json is not a file of input artifact Src" in message
    action = _deploy("bad", FileName="images.json")
    assert _run(client, tmp_path, "bad2", {"images.json": images}, action) == "Failed"
    message = action_state(client, "bad2", "Deploy", "Deploy")["errorDetails"]["message"]
    assert "has no container named api" in message


def test_new_task_definition_keeps_what_can_be_registered_again() -> None:
    current = {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3",
        "revision": 3,
        "status": "ACTIVE",
        "family": "web",
        "cpu": "256",
        "volumes": [],
        "containerDefinitions": [{"name": "web", "image": "nginx:1"}],
    }
    assert new_task_definition(current, {"web": "nginx:2"}) == {
        "family": "web",
        "cpu": "256",
        "containerDefinitions": [{"name": "web", "image": "nginx:2"}],
    }
    assert current["containerDefinitions"] == [{"name": "web", "image": "nginx:1"}]
