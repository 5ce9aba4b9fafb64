"""CodeBuild projects through the CodeBuild API, with boto3 (in the RPC v2 CBOR protocol it
speaks to CodeBuild), plain JSON 1.1 with X-Amz-Target, and the AWS CLI, on both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import cbor2
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conveyor.config import Settings
from conveyor.server import Running, running
from tests.api.test_codebuild_pipelines import codebuild, declaration
from tests.conftest import sqlite_only
from tests.support.auth import allow, make_user, signed_client
from tests.support.engine import (
    action_state,
    git_source,
    latest_execution_id,
    make_repo,
    wait_status,
)
from tests.support.errors import code

ROLE = "arn:aws:iam::000000000000:role/build"
ARN = "arn:aws:codebuild:us-east-1:000000000000:project/"


def codebuild_client(endpoint: str, *, validate: bool = True) -> Any:
    return boto3.client(
        "codebuild",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="conveyor",
        aws_secret_access_key="conveyor",
        config=Config(
            parameter_validation=validate, retries={"mode": "standard", "max_attempts": 1}
        ),
    )


@pytest.fixture
def builds(server: Running) -> Any:
    return codebuild_client(server.endpoint)


def project(name: str = "build", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "source": {"type": "CODEPIPELINE", "buildspec": "buildspec-test.yml"},
        "artifacts": {"type": "CODEPIPELINE"},
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": [{"name": "STAGE", "value": "test"}],
        },
        "serviceRole": ROLE,
        **extra,
    }


def test_create_project_answers_the_project_with_codebuild_defaults(builds: Any) -> None:
    created = builds.create_project(**project(description="the app"))["project"]
    assert created["name"] == "build"
    assert created["arn"] == ARN + "build"
    assert created["description"] == "the app"
    assert created["source"]["buildspec"] == "buildspec-test.yml"
    assert created["timeoutInMinutes"] == 60
    assert created["queuedTimeoutInMinutes"] == 480
    assert created["created"] == created["lastModified"]
    assert created["created"].year >= 2024


def test_create_project_twice_is_resource_already_exists(builds: Any) -> None:
    builds.create_project(**project())
    with pytest.raises(builds.exceptions.ResourceAlreadyExistsException) as caught:
        builds.create_project(**project())
    assert "build" in caught.value.response["Error"]["Message"]


def test_create_project_refuses_what_the_model_refuses(server: Running) -> None:
    unchecked = codebuild_client(server.endpoint, validate=False)
    with pytest.raises(ClientError) as caught:
        unchecked.create_project(**project("x", timeoutInMinutes=1))
    assert code(caught) == "ValidationException"
    assert "'timeoutInMinutes'" in str(caught.value)
    assert "'name'" in str(caught.value)


def test_create_project_refuses_a_pipeline_source_with_s3_artifacts(builds: Any) -> None:
    bad = project(artifacts={"type": "S3", "location": "bucket"})
    with pytest.raises(builds.exceptions.InvalidInputException) as caught:
        builds.create_project(**bad)
    assert "artifacts.type" in str(caught.value)


def test_create_project_refuses_a_located_source_without_location(builds: Any) -> None:
    bad = project(source={"type": "CODECOMMIT"}, artifacts={"type": "NO_ARTIFACTS"})
    with pytest.raises(builds.exceptions.InvalidInputException) as caught:
        builds.create_project(**bad)
    assert "source.location" in str(caught.value)


def test_update_project_replaces_the_members_given(builds: Any) -> None:
    builds.create_project(**project())
    changed = builds.update_project(
        name="build", timeoutInMinutes=15, source={"type": "CODEPIPELINE", "buildspec": "b.yml"}
    )["project"]
    assert changed["timeoutInMinutes"] == 15
    assert changed["source"] == {"type": "CODEPIPELINE", "buildspec": "b.yml"}
    assert changed["environment"]["environmentVariables"] == [{"name": "STAGE", "value": "test"}]
    assert changed["lastModified"] >= changed["created"]
    got = builds.batch_get_projects(names=["build"])["projects"][0]
    assert got["timeoutInMinutes"] == 15


def test_update_project_by_arn(builds: Any) -> None:
    builds.create_project(**project())
    changed = builds.update_project(name=ARN + "build", description="by arn")["project"]
    assert (changed["name"], changed["description"]) == ("build", "by arn")


def test_update_project_of_a_missing_project_is_resource_not_found(builds: Any) -> None:
    with pytest.raises(builds.exceptions.ResourceNotFoundException):
        builds.update_project(name="ghost", timeoutInMinutes=15)


def test_batch_get_projects_by_name_and_arn_with_those_not_found(builds: Any) -> None:
    builds.create_project(**project("one"))
    builds.create_project(**project("two"))
    answer = builds.batch_get_projects(names=["two", ARN + "one", "ghost"])
    assert [p["name"] for p in answer["projects"]] == ["two", "one"]
    assert answer["projectsNotFound"] == ["ghost"]


def test_delete_project_removes_it_and_is_idempotent(builds: Any) -> None:
    builds.create_project(**project())
    builds.delete_project(name="build")
    assert builds.batch_get_projects(names=["build"])["projectsNotFound"] == ["build"]
    builds.delete_project(name="build")
    builds.create_project(**project())


def test_list_projects_sorted_and_paged(builds: Any) -> None:
    names = [f"p{i:03d}" for i in range(105)]
    for name in reversed(names):
        builds.create_project(**project(name))
    first = builds.list_projects(sortBy="NAME", sortOrder="ASCENDING")
    assert first["projects"] == names[:100]
    second = builds.list_projects(
        sortBy="NAME", sortOrder="ASCENDING", nextToken=first["nextToken"]
    )
    assert second["projects"] == names[100:]
    assert "nextToken" not in second
    newest = builds.list_projects(sortBy="CREATED_TIME", sortOrder="DESCENDING")["projects"]
    assert newest[:3] == ["p000", "p001", "p002"]


def test_list_projects_refuses_a_token_it_did_not_issue(builds: Any) -> None:
    with pytest.raises(builds.exceptions.InvalidInputException):
        builds.list_projects(nextToken="forged.token")


def test_json_protocol_with_x_amz_target(server: Running, builds: Any) -> None:
    builds.create_project(**project())
    request = urllib.request.Request(
        server.endpoint + "/",
        data=json.dumps({"names": ["build"]}).encode(),
        headers={
            "X-Amz-Target": "CodeBuild_20161006.BatchGetProjects",
            "Content-Type": "application/x-amz-json-1.1",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    assert answer["projects"][0]["arn"] == ARN + "build"
    assert isinstance(answer["projects"][0]["created"], float)


@sqlite_only
def test_aws_cli_create_project_and_batch_get_projects(server: Running, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "conveyor",
        "AWS_SECRET_ACCESS_KEY": "conveyor",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", server.endpoint]
    spec = project("cli")
    created = subprocess.run(
        [*aws, "codebuild", "create-project", "--cli-input-json", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(created.stdout)["project"]["arn"] == ARN + "cli"
    got = subprocess.run(
        [*aws, "codebuild", "batch-get-projects", "--names", "cli", "ghost"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer = json.loads(got.stdout)
    assert [p["name"] for p in answer["projects"]] == ["cli"]
    assert answer["projectsNotFound"] == ["ghost"]


FAILING = "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 3\n"
TESTING = (
    "version: 0.2\nenv:\n  exported-variables:\n    - STAGE\n"
    'phases:\n  build:\n    commands:\n      - test "$STAGE" = test\n'
)


INLINE_CHECK = (
    "version: 0.2\nenv:\n  exported-variables:\n    - CHECKED\n"
    "phases:\n  build:\n    commands:\n      - export CHECKED=inline-$STAGE\n"
)


def test_a_pipeline_builds_the_project_its_action_names(
    client: Any, builds: Any, tmp_path: Path
) -> None:
    """CodePipeline's CodeBuild action: "ProjectName: the name of the build project in
    CodeBuild", whose buildspec (here ``buildspec-test.yml``, and inline YAML for the
    ``Test`` action) runs instead of the source's ``buildspec.yml``."""
    builds.create_project(**project())
    inline = project("check")
    inline["source"] = {"type": "CODEPIPELINE", "buildspec": INLINE_CHECK}
    builds.create_project(**inline)
    make_repo(tmp_path / "app", {"buildspec.yml": FAILING, "buildspec-test.yml": TESTING})
    check = codebuild("Check", ["Src"], [])
    check["actionTypeId"]["category"] = "Test"
    check["namespace"] = "CHECK"
    client.create_pipeline(
        pipeline=declaration(
            "app",
            [git_source(tmp_path / "app")],
            {"name": "Build", "actions": [codebuild("Build", ["Src"], []), check]},
        )
    )
    execution_id = latest_execution_id(client, "app")
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    details = client.list_action_executions(pipelineName="app")["actionExecutionDetails"]
    built = next(d for d in details if d["actionName"] == "Build")
    assert built["output"]["outputVariables"] == {"STAGE": "test"}
    checked = next(d for d in details if d["actionName"] == "Check")
    assert checked["output"]["outputVariables"] == {"CHECKED": "inline-test"}
    build_id = checked["output"]["executionResult"]["externalExecutionId"]
    (found,) = builds.batch_get_builds(ids=[build_id])["builds"]
    assert found["projectName"] == "check"
    assert found["buildStatus"] == "SUCCEEDED"


def test_a_pipeline_whose_project_does_not_exist_fails_saying_so(
    client: Any, tmp_path: Path
) -> None:
    make_repo(tmp_path / "app", {"buildspec-test.yml": TESTING})
    client.create_pipeline(
        pipeline=declaration(
            "app",
            [git_source(tmp_path / "app")],
            {"name": "Build", "actions": [codebuild("Build", ["Src"], [])]},
        )
    )
    execution_id = latest_execution_id(client, "app")
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Failed"
    state = action_state(client, "app", "Build", "Build")
    assert "CodeBuild project build does not exist" in state["errorDetails"]["message"]


def test_codebuild_operations_are_authorized_on_the_project(settings: Settings) -> None:
    """IAM names CodeBuild's actions ``codebuild:<Operation>`` on the project's ARN."""
    with running(replace(settings, auth="required")) as secured:
        key = make_user(
            secured,
            "builder",
            policies=[allow("codebuild:CreateProject", resource=ARN + "mine")],
        )
        mine = signed_client(secured, key, "codebuild")
        assert mine.create_project(**project("mine"))["project"]["name"] == "mine"
        with pytest.raises(ClientError) as caught:
            mine.create_project(**project("theirs"))
        assert code(caught) == "AccessDeniedException"
        assert f"codebuild:CreateProject on resource: {ARN}theirs" in str(caught.value)
        with pytest.raises(ClientError) as caught:
            mine.batch_get_projects(names=["mine"])
        assert code(caught) == "AccessDeniedException"
        auditor = make_user(secured, "auditor", policies=[allow("cloudtrail:LookupEvents")])
        trail = signed_client(secured, auditor, "cloudtrail")
        by_builder = [{"AttributeKey": "Username", "AttributeValue": "builder"}]
        found = trail.lookup_events(LookupAttributes=by_builder)["Events"]
        assert [(e["EventName"], e["ReadOnly"]) for e in found] == [
            ("BatchGetProjects", "true"),
            ("CreateProject", "false"),
            ("CreateProject", "false"),
        ]
        assert {e["EventSource"] for e in found} == {"codebuild.amazonaws.com"}
        assert found[1]["Resources"] == [
            {"ResourceType": "AWS::CodeBuild::Project", "ResourceName": "theirs"}
        ]


def refusal(endpoint: str, operation: str, body: bytes) -> tuple[int, str, bytes]:
    """Status, error type and body of a CBOR request that is refused."""
    request = urllib.request.Request(
        f"{endpoint}/service/CodeBuild_20161006/operation/{operation}",
        data=body,
        headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    with refused.value as answer:
        return answer.code, answer.headers["x-amzn-ErrorType"], answer.read()


def test_codebuild_operations_not_served_yet_say_so(builds: Any, server: Running) -> None:
    with pytest.raises(ClientError) as caught:
        builds.list_build_batches()
    assert code(caught) == "UnsupportedOperationException"
    assert "ListBuildBatches" in str(caught.value)
    status, kind, body = refusal(server.endpoint, "MakeBuildsFaster", b"\xa0")
    assert (status, kind) == (400, "UnknownOperationException")
    assert cbor2.loads(body)["__type"] == "UnknownOperationException"


def test_a_body_that_is_not_cbor_is_a_serialization_error(server: Running) -> None:
    status, kind, _ = refusal(server.endpoint, "ListProjects", b"\xff\xff")
    assert (status, kind) == (400, "SerializationException")
