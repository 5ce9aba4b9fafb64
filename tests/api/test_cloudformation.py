"""Deploy/CloudFormation in real pipelines, with moto's server as the CloudFormation endpoint."""

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
    commit,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_status,
)
from tests.support.moto import aws_client, moto_server, server_calling

TEMPLATE = """\
Parameters:
  Greeting:
    Type: String
  Bucket:
    Type: String
    Default: none
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${AWS::StackName}-queue"
Outputs:
  Said:
    Value: !Ref Greeting
  Where:
    Value: !Ref Bucket
  QueueName:
    Value: !GetAtt Queue.QueueName
"""


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def server(tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    with server_calling(tmp_path, monkeypatch, aws_endpoints={"cloudformation": endpoint}) as live:
        yield live


@pytest.fixture
def client(server: Running) -> Any:
    return make_client(server.endpoint)


@pytest.fixture
def cfn(endpoint: str) -> Any:
    return aws_client("cloudformation", endpoint)


def deploy(stack: str, mode: str, **configuration: str) -> dict[str, Any]:
    return {
        "name": "Deploy",
        "actionTypeId": {
            "category": "Deploy",
            "owner": "AWS",
            "provider": "CloudFormation",
            "version": "1",
        },
        "configuration": {"ActionMode": mode, "StackName": stack, **configuration},
        "inputArtifacts": [{"name": "Src"}],
        "namespace": "CFN",
    }


def run(client: Any, name: str, expected: str = "Succeeded") -> str:
    status = wait_status(
        client, name, latest_execution_id(client, name), "Succeeded", "Failed", timeout=60
    )
    assert status == expected, [
        (a["actionName"], a.get("latestExecution", {}).get("errorDetails"))
        for s in client.get_pipeline_state(name=name)["stageStates"]
        for a in s["actionStates"]
    ]
    return status


def live_stack(cfn: Any, stack: str) -> dict[str, Any]:
    # Found by listing: moto keeps a change set's stack apart from the first one made for
    # the same name while under review.
    (found,) = [
        s
        for s in cfn.describe_stacks()["Stacks"]
        if s["StackName"] == stack and s["StackStatus"] != "REVIEW_IN_PROGRESS"
    ]
    return dict(found)


def outputs(cfn: Any, stack: str) -> dict[str, str]:
    found = live_stack(cfn, stack)
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs") or ()}


def stack_names(cfn: Any) -> set[str]:
    return {s["StackName"] for s in cfn.describe_stacks()["Stacks"]}


def test_a_stack_is_created_updated_and_deleted(
    client: Any, server: Running, cfn: Any, tmp_path: Path
) -> None:
    repo = tmp_path / "infra"
    make_repo(
        repo,
        {
            "template.yaml": TEMPLATE,
            "params.json": json.dumps({"greeting": "hello"}),
            "config.json": json.dumps(
                {"Parameters": {"Greeting": "from-config"}, "Tags": {"team": "infra"}}
            ),
        },
    )
    overrides = json.dumps(
        {
            "Greeting": {"Fn::GetParam": ["Src", "params.json", "greeting"]},
            "Bucket": {"Fn::GetArtifactAtt": ["Src", "BucketName"]},
        }
    )
    action = deploy(
        "app-stack",
        "CREATE_UPDATE",
        TemplatePath="Src::template.yaml",
        TemplateConfiguration="Src::config.json",
        ParameterOverrides=overrides,
        Capabilities="CAPABILITY_IAM,CAPABILITY_NAMED_IAM",
        RoleArn="arn:aws:iam::000000000000:role/cfn",
        OutputFileName="outputs.json",
    )
    action["outputArtifacts"] = [{"name": "Out"}]
    check = commands(
        "Check",
        "cat outputs.json",
        'test "$(python3 -c \'import json; print(json.load(open("outputs.json"))["Said"])\')" = "#{CFN.Said}"',
        inputs=("Out",),
    )
    client.create_pipeline(
        pipeline=declaration("infra", repo, stage("Deploy", action), stage("Check", check))
    )
    run(client, "infra")
    assert outputs(cfn, "app-stack") == {
        "Said": "hello",
        "Where": "artifacts",
        "QueueName": "app-stack-queue",
    }
    (created,) = cfn.describe_stacks(StackName="app-stack")["Stacks"]
    assert {t["Key"]: t["Value"] for t in created["Tags"]} == {"team": "infra"}
    assert created["RoleARN"] == "arn:aws:iam::000000000000:role/cfn"
    state = action_state(client, "infra", "Deploy", "Deploy")
    assert state["externalExecutionId"] == created["StackId"]
    assert state["summary"] == "Stack app-stack is up to date"
    execution_id = latest_execution_id(client, "infra")
    [deploy_run] = [
        d
        for d in client.list_action_executions(
            pipelineName="infra", filter={"pipelineExecutionId": execution_id}
        )["actionExecutionDetails"]
        if d["actionName"] == "Deploy"
    ]
    assert deploy_run["output"]["outputVariables"]["Said"] == "hello"

    commit(repo, {"params.json": json.dumps({"greeting": "again"})}, "say it again")
    client.start_pipeline_execution(name="infra")
    run(client, "infra")
    assert outputs(cfn, "app-stack")["Said"] == "again"

    client.create_pipeline(
        pipeline=declaration("teardown", repo, stage("Deploy", deploy("app-stack", "DELETE_ONLY")))
    )
    run(client, "teardown")
    assert "app-stack" not in stack_names(cfn)
    # Deleting what is not there any more is a success too.
    client.start_pipeline_execution(name="teardown")
    run(client, "teardown")


def test_a_change_set_is_replaced_then_executed(
    client: Any, server: Running, cfn: Any, tmp_path: Path
) -> None:
    repo = tmp_path / "infra"
    make_repo(repo, {"template.yaml": TEMPLATE})
    overrides = json.dumps({"Greeting": "planned"})
    plan = deploy(
        "planned-stack",
        "CHANGE_SET_REPLACE",
        ChangeSetName="next",
        TemplatePath="Src::template.yaml",
        ParameterOverrides=overrides,
    )
    apply = deploy("planned-stack", "CHANGE_SET_EXECUTE", ChangeSetName="next")
    apply["name"], apply["runOrder"], apply["namespace"] = "Apply", 2, "APPLY"
    client.create_pipeline(pipeline=declaration("planned", repo, stage("Deploy", plan)))
    run(client, "planned")
    (pending,) = cfn.describe_stacks(StackName="planned-stack")["Stacks"]
    assert pending["StackStatus"] == "REVIEW_IN_PROGRESS"
    # Replacing it again leaves one change set of that name.
    client.start_pipeline_execution(name="planned")
    run(client, "planned")
    summaries = cfn.list_change_sets(StackName="planned-stack")["Summaries"]
    assert [c["ChangeSetName"] for c in summaries] == ["next"]

    client.update_pipeline(pipeline=declaration("planned", repo, stage("Deploy", plan, apply)))
    client.start_pipeline_execution(name="planned")
    run(client, "planned")
    # moto gives stacks made by change sets no outputs: their parameters show the deploy.
    executed = live_stack(cfn, "planned-stack")
    assert executed["StackStatus"] == "CREATE_COMPLETE"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in executed["Parameters"]} == {
        "Greeting": "planned",
        "Bucket": "none",
    }
    applied = action_state(client, "planned", "Deploy", "Apply")
    assert applied["summary"] == "Change set next is executed"


def test_a_failing_template_fails_the_action_with_the_service_reason(
    client: Any, server: Running, tmp_path: Path
) -> None:
    repo = tmp_path / "infra"
    make_repo(
        repo,
        {
            "template.json": json.dumps(
                {
                    "Resources": {
                        "Queue": {
                            "Type": "AWS::SQS::Queue",
                            "Properties": {"QueueName": "plain", "FifoQueue": True},
                        }
                    }
                }
            )
        },
    )
    action = deploy("broken", "CREATE_UPDATE", TemplatePath="Src::template.json")
    client.create_pipeline(pipeline=declaration("broken", repo, stage("Deploy", action)))
    run(client, "broken", "Failed")
    state = action_state(client, "broken", "Deploy", "Deploy")
    assert state["status"] == "Failed"
    assert state["errorDetails"]["code"] == "JobFailed"
    assert "FIFO" in state["errorDetails"]["message"]


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ({"TemplatePath": "Src::missing.yaml"}, "missing.yaml is not a file of input artifact Src"),
        ({"TemplatePath": "Other::template.yaml"}, "Other is not an input artifact"),
        (
            {
                "TemplatePath": "Src::template.yaml",
                "ParameterOverrides": '{"Greeting": {"Fn::GetParam": ["Src", "nope.json", "k"]}}',
            },
            "nope.json is not a file of input artifact Src",
        ),
        (
            {"TemplatePath": "Src::template.yaml", "ParameterOverrides": "{not json"},
            "ParameterOverrides is not valid JSON",
        ),
    ],
)
def test_a_bad_configuration_fails_before_any_stack_is_touched(
    client: Any,
    server: Running,
    cfn: Any,
    tmp_path: Path,
    configuration: dict[str, str],
    message: str,
) -> None:
    repo = tmp_path / "infra"
    make_repo(repo, {"template.yaml": TEMPLATE})
    action = deploy("never-made", "CREATE_UPDATE", **configuration)
    client.create_pipeline(pipeline=declaration("bad", repo, stage("Deploy", action)))
    run(client, "bad", "Failed")
    state = action_state(client, "bad", "Deploy", "Deploy")
    assert state["errorDetails"]["code"] == "ConfigurationError"
    assert message in state["errorDetails"]["message"]
    assert "never-made" not in stack_names(cfn)


def test_output_file_lands_in_the_output_artifact(
    client: Any, server: Running, tmp_path: Path
) -> None:
    repo = tmp_path / "infra"
    make_repo(repo, {"template.yaml": TEMPLATE})
    action = deploy(
        "filed",
        "CREATE_UPDATE",
        TemplatePath="Src::template.yaml",
        ParameterOverrides='{"Greeting": "filed"}',
        OutputFileName="out/stack.json",
    )
    action["outputArtifacts"] = [{"name": "Out"}]
    client.create_pipeline(pipeline=declaration("filed", repo, stage("Deploy", action)))
    run(client, "filed")
    home = server.application.engine.settings.home
    [archive] = [p for p in (home / "buckets" / "artifacts" / "filed" / "Out").iterdir()]
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as opened:
        written = json.loads(opened.read("out/stack.json"))
    assert written == {"Said": "filed", "Where": "none", "QueueName": "filed-queue"}


def test_an_action_in_another_region_deploys_there(
    client: Any, endpoint: str, tmp_path: Path
) -> None:
    repo = tmp_path / "infra"
    make_repo(repo, {"template.yaml": TEMPLATE})
    action = deploy(
        "far-stack",
        "CREATE_UPDATE",
        TemplatePath="Src::template.yaml",
        ParameterOverrides='{"Greeting": "far"}',
    )
    action["region"] = "eu-west-1"
    declared = declaration("far", repo, stage("Deploy", action))
    del declared["artifactStore"]
    declared["artifactStores"] = {
        "us-east-1": {"type": "S3", "location": "artifacts"},
        "eu-west-1": {"type": "S3", "location": "artifacts-eu"},
    }
    client.create_pipeline(pipeline=declared)
    run(client, "far")
    europe = aws_client("cloudformation", endpoint, region="eu-west-1")
    assert [s["StackName"] for s in europe.describe_stacks()["Stacks"]] == ["far-stack"]
    home = aws_client("cloudformation", endpoint)
    assert "far-stack" not in stack_names(home)


def test_a_template_over_51200_bytes_goes_through_s3(
    client: Any, server: Running, cfn: Any, endpoint: str, tmp_path: Path
) -> None:
    # Padding in Metadata makes the template larger than a request's TemplateBody may be.
    large = TEMPLATE + "Metadata:\n  Padding: " + "x" * 60_000 + "\n"
    assert len(large.encode()) > 51_200
    repo = tmp_path / "large"
    make_repo(repo, {"template.yaml": large, "small.yaml": TEMPLATE})
    big = deploy(
        "large-stack",
        "CREATE_UPDATE",
        TemplatePath="Src::template.yaml",
        ParameterOverrides=json.dumps({"Greeting": "big"}),
    )
    small = {
        **deploy(
            "small-stack",
            "CREATE_UPDATE",
            TemplatePath="Src::small.yaml",
            ParameterOverrides=json.dumps({"Greeting": "small"}),
        ),
        "name": "Small",
        "namespace": "SMALL",
    }
    client.create_pipeline(pipeline=declaration("large", repo, stage("Deploy", big, small)))
    run(client, "large")
    assert outputs(cfn, "large-stack")["Said"] == "big"
    assert cfn.get_template(StackName="large-stack")["TemplateBody"] == large
    s3 = aws_client("s3", endpoint)
    kept = s3.list_objects_v2(Bucket="conveyor-templates-000000000000-us-east-1")["Contents"]
    # Only the large template went through S3; the small one was sent in the request.
    assert [o["Key"].split("/")[0] for o in kept] == ["large"]
    body = s3.get_object(Bucket="conveyor-templates-000000000000-us-east-1", Key=kept[0]["Key"])
    assert body["Body"].read().decode() == large
