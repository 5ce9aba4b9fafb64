"""Invoke/StepFunctions in real pipelines, with moto's server running the state machines."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.server import Running
from tests.conftest import make_client
from tests.support.engine import (
    action_state,
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_status,
)
from tests.support.moto import aws_client, configure, moto_server, server_calling

ROLE = "arn:aws:iam::123456789012:role/states"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        configure(url, {"stepfunctions": {"execute_state_machine": True}})
        yield url


@pytest.fixture
def server(tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    with server_calling(tmp_path, monkeypatch, aws_endpoints={"stepfunctions": endpoint}) as live:
        yield live


@pytest.fixture
def client(server: Running) -> Any:
    return make_client(server.endpoint)


def _machine(endpoint: str, name: str, states: dict[str, Any], start: str) -> str:
    sfn = aws_client("stepfunctions", endpoint)
    definition = json.dumps({"StartAt": start, "States": states})
    return str(
        sfn.create_state_machine(name=name, roleArn=ROLE, definition=definition)["stateMachineArn"]
    )


def _invoke(arn: str, **configuration: str) -> dict[str, Any]:
    return {
        "name": "Invoke",
        "actionTypeId": {
            "category": "Invoke",
            "owner": "AWS",
            "provider": "StepFunctions",
            "version": "1",
        },
        "configuration": {"StateMachineArn": arn, **configuration},
        "inputArtifacts": [{"name": "Src"}],
        "outputArtifacts": [{"name": "Result"}],
        "namespace": "SFN",
    }


def _run(client: Any, tmp_path: Path, name: str, *stages: dict[str, Any]) -> str:
    repo = tmp_path / name
    make_repo(repo, {"input.json": json.dumps({"from": "file"})})
    client.create_pipeline(pipeline=declaration(name, repo, *stages))
    return wait_status(
        client, name, latest_execution_id(client, name), "Succeeded", "Failed", timeout=60
    )


def test_a_state_machine_runs_to_its_end_with_the_input_given(
    client: Any, server: Running, endpoint: str, tmp_path: Path
) -> None:
    arn = _machine(
        endpoint,
        "release",
        {"Tag": {"Type": "Pass", "Result": "tagged", "ResultPath": "$.step", "End": True}},
        "Tag",
    )
    action = _invoke(arn, ExecutionNamePrefix="release", Input='{"commit": "#{SRC.CommitId}"}')
    check = commands("Check", 'case "#{SFN.ExecutionArn}" in *:release-*) ;; *) exit 1;; esac')
    status = _run(client, tmp_path, "release", stage("Invoke", action), stage("Check", check))
    assert status == "Succeeded", action_state(client, "release", "Invoke", "Invoke")
    home = server.application.engine.settings.home
    [archive] = list((home / "buckets" / "artifacts" / "release" / "Result").iterdir())
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as opened:
        output = json.loads(opened.read("output.json"))
    assert output["step"] == "tagged"
    assert len(output["commit"]) == 40


def test_input_from_a_file_of_the_input_artifact(
    client: Any, endpoint: str, tmp_path: Path
) -> None:
    arn = _machine(endpoint, "echo", {"Echo": {"Type": "Pass", "End": True}}, "Echo")
    action = _invoke(arn, InputType="FilePath", Input="input.json")
    assert _run(client, tmp_path, "echo", stage("Invoke", action)) == "Succeeded"


def test_a_failing_execution_fails_the_action_with_its_error_and_cause(
    client: Any, endpoint: str, tmp_path: Path
) -> None:
    arn = _machine(
        endpoint,
        "broken",
        {"Stop": {"Type": "Fail", "Error": "Broken", "Cause": "it broke"}},
        "Stop",
    )
    assert _run(client, tmp_path, "broken", stage("Invoke", _invoke(arn))) == "Failed"
    message = action_state(client, "broken", "Invoke", "Invoke")["errorDetails"]["message"]
    assert "FAILED: Broken: it broke" in message
