"""Malformed input the fuzz test found, answered with an error code instead of a 500.

A body nested a few hundred levels deep overflowed the stack in the protocol layer; it is
refused before any database is used, so those cases run against one server. PostgreSQL
refused a NUL character in a tag or a stop reason, and an access key too long for the column
that records who claimed a job: those cases run on both databases, which must answer alike.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conveyor.api.body import MAX_DEPTH
from conveyor.config import Settings
from conveyor.server import Running, running
from tests.conftest import make_client
from tests.support.engine import (
    approval,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
    wait_status,
)

CUSTOM = {"category": "Deploy", "owner": "Custom", "provider": "Rollout", "version": "1"}


def error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    failure = excinfo.value.response["Error"]
    return failure["Code"], failure["Message"]


def post(server: Running, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
    host, port = server.endpoint.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request(
            "POST",
            "/",
            body,
            {
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"CodePipeline_20150709.{target}",
            },
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture(scope="module")
def protocol_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One server for the bodies the protocol layer refuses before any database is used."""
    with running(Settings(home=tmp_path_factory.mktemp("malformed"))) as live:
        yield live


def nested(depth: int, leaf: str = '"\\u00e9"') -> str:
    return "[" * depth + leaf + "]" * depth


@pytest.mark.parametrize("depth", [326, 490, MAX_DEPTH - 1, MAX_DEPTH + 1, 100_000])
def test_deeply_nested_member_is_an_error(protocol_server: Running, depth: int) -> None:
    status, body = post(
        protocol_server, "GetPipeline", ('{"name": ' + nested(depth) + "}").encode()
    )
    assert status == 400, body
    # The member is the object's child: the object itself is the first level.
    expected = "ValidationException" if depth + 1 <= MAX_DEPTH else "SerializationException"
    assert body["__type"] == expected, body
    if expected == "ValidationException":
        assert "at 'name'" in body["message"]
    else:
        assert f"more than {MAX_DEPTH} levels" in body["message"]


@pytest.mark.parametrize("depth", [326, 100_000])
def test_deeply_nested_unknown_member_is_dropped_or_refused(
    protocol_server: Running, depth: int
) -> None:
    body = json.dumps({"name": "missing", "x-deep": "PLACE"}).replace('"PLACE"', nested(depth))
    status, answer = post(protocol_server, "GetPipeline", body.encode())
    assert status == 400, answer
    expected = "PipelineNotFoundException" if depth < MAX_DEPTH else "SerializationException"
    assert answer["__type"] == expected, answer


@pytest.mark.parametrize("depth", [326, 100_000])
def test_deeply_nested_body_is_a_serialization_error(protocol_server: Running, depth: int) -> None:
    status, answer = post(protocol_server, "GetPipeline", nested(depth).encode())
    assert status == 400, answer
    assert answer["__type"] == "SerializationException", answer


def test_nul_in_a_tag_is_a_validation_error(client: Any, tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    client.create_pipeline(
        pipeline=declaration("app", tmp_path / "repo", stage("Gate", approval()))
    )
    arn = client.get_pipeline(name="app")["metadata"]["pipelineArn"]
    for tag in ({"key": "team", "value": "a\x00b"}, {"key": "te\x00am", "value": "web"}):
        with pytest.raises(ClientError) as excinfo:
            client.tag_resource(resourceArn=arn, tags=[tag])
        code, message = error(excinfo)
        assert code == "ValidationException"
        assert "Member must not contain null characters" in message
        assert "tags.1.member." in message
    with pytest.raises(ClientError) as excinfo:
        client.untag_resource(resourceArn=arn, tagKeys=["te\x00am"])
    assert error(excinfo)[0] == "ValidationException"
    assert client.list_tags_for_resource(resourceArn=arn)["tags"] == []


def test_nul_in_a_stop_reason_is_a_validation_error(client: Any, tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    gate = stage("Gate", approval())
    client.create_pipeline(pipeline=declaration("app", tmp_path / "repo", gate))
    execution_id = wait_for(lambda: latest_execution_id(client, "app"), what="an execution")
    with pytest.raises(ClientError) as excinfo:
        client.stop_pipeline_execution(
            pipelineName="app", pipelineExecutionId=execution_id, reason="no\x00w", abandon=True
        )
    code, message = error(excinfo)
    assert code == "ValidationException"
    assert "at 'reason'" in message
    assert wait_status(client, "app", execution_id, "InProgress") == "InProgress"
    client.stop_pipeline_execution(
        pipelineName="app", pipelineExecutionId=execution_id, reason="now", abandon=True
    )
    assert wait_status(client, "app", execution_id, "Stopped") == "Stopped"


def _custom_pipeline(client: Any, repo: Path) -> None:
    client.create_custom_action_type(
        category="Deploy",
        provider="Rollout",
        version="1",
        inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
    )
    deploy = {"name": "Rollout", "actionTypeId": CUSTOM, "inputArtifacts": [{"name": "Src"}]}
    client.create_pipeline(pipeline=declaration("app", repo, stage("Deploy", deploy)))


def _poll(client: Any) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = client.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=1)["jobs"]
    return jobs


def test_access_key_longer_than_aws_allows_is_unrecognized(
    server: Running, client: Any, tmp_path: Path
) -> None:
    make_repo(tmp_path / "repo")
    _custom_pipeline(client, tmp_path / "repo")
    wait_for(
        lambda: client.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"]
    )
    too_long = make_client(server.endpoint, access_key="A" * 129)
    with pytest.raises(ClientError) as excinfo:
        _poll(too_long)
    code, message = error(excinfo)
    assert code == "UnrecognizedClientException"
    assert "Credential" in message
    # The job is still there for a worker whose key has the longest length AWS allows.
    longest = make_client(server.endpoint, access_key="A" * 128)
    [job] = wait_for(lambda: _poll(longest), what="a job")
    assert longest.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
