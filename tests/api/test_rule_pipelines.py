"""The rules that ask the world (DeploymentWindow, CodeBuild, CloudWatchAlarm, LambdaInvoke)
guarding the stages of a pipeline run by a real server: what each rule answers decides the
stage, and its result and summary reach ListRuleExecutions and GetPipelineState."""

from __future__ import annotations

import io
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_client
from tests.support.engine import (
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    stage_state,
    wait_for,
    wait_status,
)
from tests.support.moto import aws_client, configure, moto_server, server_calling

WAIT = 60.0


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    make_repo(path, {"version.txt": "good-1\n"}, "the first commit")
    return path


def rule(name: str, provider: str, **configuration: str) -> dict[str, Any]:
    return {
        "name": name,
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": provider, "version": "1"},
        "configuration": configuration,
    }


def guarded(name: str, tmp_path: Path, *rules: dict[str, Any]) -> dict[str, Any]:
    """A stage whose one action touches ``tmp_path/name``, entered only when ``rules`` pass."""
    declared = stage(name, commands("Touch", f"touch {tmp_path / name}"))
    declared["beforeEntry"] = {"conditions": [{"result": "FAIL", "rules": list(rules)}]}
    return declared


def run(client: Any, repo: Path, *stages: dict[str, Any]) -> str:
    """Create ``app`` with ``stages`` after its source; its first execution's id, once ended."""
    client.create_pipeline(pipeline=declaration("app", repo, *stages))
    execution_id = latest_execution_id(client, "app")
    wait_status(client, "app", execution_id, "Succeeded", "Failed", timeout=WAIT)
    return execution_id


def rule_states(client: Any, stage_name: str) -> list[tuple[str, str, str]]:
    """Each rule of the stage's entry condition: its name, its latest status and summary."""
    condition = stage_state(client, "app", stage_name)["beforeEntryConditionState"]
    return [
        (r["ruleName"], r["latestExecution"]["status"], r["latestExecution"].get("summary", ""))
        for r in condition["conditionStates"][0]["ruleStates"]
    ]


def status_of(client: Any, stage_name: str) -> str:
    return str(stage_state(client, "app", stage_name)["latestExecution"]["status"])


# -- DeploymentWindow -------------------------------------------------------------------------


def test_a_deployment_window_open_now_passes_and_one_that_opens_too_late_fails(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    # Hours from now, at the least 11 of them: after any rule's time of five minutes.
    later = (datetime.now(UTC).hour + 12) % 24
    always = rule("Always", "DeploymentWindow", Cron="* * * * * ?")
    tonight = {
        **rule("Tonight", "DeploymentWindow", Cron=f"* * {later} * * ?", TimeZone="UTC"),
        "timeoutInMinutes": 5,
    }
    execution_id = run(
        client, repo, guarded("Open", tmp_path, always), guarded("Deploy", tmp_path, tonight)
    )
    assert status_of(client, "Open") == "Succeeded"
    assert (tmp_path / "Open").exists()
    assert status_of(client, "Deploy") == "Failed"
    assert not (tmp_path / "Deploy").exists()
    ((name, status, summary),) = rule_states(client, "Deploy")
    assert (name, status) == ("Tonight", "Failed")
    assert "it opens next at " in summary and f"T{later:02d}:00+00:00" in summary
    assert summary.endswith("after the rule's time runs out")
    assert rule_states(client, "Open")[0][:2] == ("Always", "Succeeded")
    execution = client.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)
    assert execution["pipelineExecution"]["status"] == "Failed"


def test_a_deployment_window_closed_now_waits_for_it_to_open(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    # Half an hour from now, within the rule's hour: the rule waits in its job.
    minute = (datetime.now(UTC).minute + 30) % 60
    window = {
        **rule("HalfPast", "DeploymentWindow", Cron=f"* {minute} * * * ?"),
        "timeoutInMinutes": 60,
    }
    client.create_pipeline(pipeline=declaration("app", repo, guarded("Deploy", tmp_path, window)))
    execution_id = latest_execution_id(client, "app")

    def log() -> str:
        states = stage_state(client, "app", "Deploy").get("beforeEntryConditionState")
        rules = states["conditionStates"][0]["ruleStates"] if states else [{}]
        url = rules[0].get("latestExecution", {}).get("externalExecutionUrl")
        if not url:
            return ""
        with urllib.request.urlopen(url, timeout=30) as response:
            text: str = response.read().decode()
        return text if "waiting for it to open" in text else ""

    assert "Outside the deployment window" in wait_for(log, WAIT, "the rule to wait")
    assert status_of(client, "Deploy") == "InProgress"
    assert not (tmp_path / "Deploy").exists()
    client.override_stage_condition(
        pipelineName="app",
        stageName="Deploy",
        pipelineExecutionId=execution_id,
        conditionType="BEFORE_ENTRY",
    )
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed", timeout=WAIT) == (
        "Succeeded"
    )
    assert (tmp_path / "Deploy").exists()
    assert [r[:2] for r in rule_states(client, "Deploy")] == [("HalfPast", "Abandoned")]


# -- CodeBuild --------------------------------------------------------------------------------

BUILDSPEC = """\
version: 0.2
phases:
  build:
    commands:
      - echo "expecting $EXPECTED"
      - test "$(cat version.txt)" = "$EXPECTED"
"""


def build_rule(name: str, expected: str) -> dict[str, Any]:
    variables = f'[{{"name": "EXPECTED", "value": "{expected}", "type": "PLAINTEXT"}}]'
    return {
        **rule(name, "CodeBuild", ProjectName="checks", EnvironmentVariables=variables),
        "inputArtifacts": [{"name": "Src"}],
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_codebuild_rules_pass_when_their_build_succeeds(client: Any, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"version.txt": "good-1\n", "buildspec.yml": BUILDSPEC}, "the first commit")
    run(
        client,
        repo,
        guarded("Check", tmp_path, build_rule("Built", "good-1")),
        guarded("Deploy", tmp_path, build_rule("Newer", "good-2")),
    )
    assert status_of(client, "Check") == "Succeeded"
    assert (tmp_path / "Check").exists()
    assert rule_states(client, "Check")[0][:2] == ("Built", "Succeeded")
    assert status_of(client, "Deploy") == "Failed"
    assert not (tmp_path / "Deploy").exists()
    assert rule_states(client, "Deploy")[0][:2] == ("Newer", "Failed")
    condition = stage_state(client, "app", "Deploy")["beforeEntryConditionState"]
    url = condition["conditionStates"][0]["ruleStates"][0]["latestExecution"][
        "externalExecutionUrl"
    ]
    with urllib.request.urlopen(url, timeout=30) as response:
        assert b"expecting good-2" in response.read()


# -- CloudWatchAlarm and LambdaInvoke, against moto's server ------------------------------------

FUNCTIONS = """\
def healthy(event, context):
    configuration = event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]
    return {"healthy": configuration["UserParameters"]}

def unhealthy(event, context):
    raise RuntimeError("the canary is down")
"""


def create_function(endpoint: str, name: str) -> None:
    """A function in moto's Lambda, which runs no code: it answers with the event it got."""
    role = aws_client("iam", endpoint).create_role(
        RoleName="fn-role", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    aws_client("lambda", endpoint).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )


@pytest.fixture(scope="module")
def aws() -> Iterator[str]:
    """moto's server, with the Lambda function ``remote-check``."""
    with moto_server() as url:
        configure(url, {"lambda": {"use_docker": False}})
        create_function(url, "remote-check")
        yield url


@pytest.fixture
def guarded_client(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A client of a server (SQLite: the rules' providers are what is tested here, the engine
    path is the one every rule takes) whose CloudWatch and Lambda are moto's, and with two
    functions mapped to local handlers."""
    folder = tmp_path / "functions"
    folder.mkdir()
    (folder / "checks.py").write_text(FUNCTIONS)
    functions = {
        name: {"handler": f"checks:{name}", "path": str(folder)}
        for name in ("healthy", "unhealthy")
    }
    endpoints = {"cloudwatch": aws, "lambda": aws}
    with server_calling(
        tmp_path,
        monkeypatch,
        aws_endpoints=endpoints,
        lambda_functions=functions,
        detect_changes=False,
    ) as live:
        yield make_client(live.endpoint)


def alarm(endpoint: str, name: str, state: str) -> None:
    cloudwatch = aws_client("cloudwatch", endpoint)
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="Errors",
        Namespace="App",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def test_cloudwatch_alarms_let_a_quiet_stage_in_and_keep_a_firing_one_out(
    guarded_client: Any, repo: Path, tmp_path: Path, aws: str
) -> None:
    client = guarded_client
    alarm(aws, "canary-quiet", "OK")
    alarm(aws, "canary-firing", "ALARM")
    execution_id = run(
        client,
        repo,
        guarded("Canary", tmp_path, rule("Quiet", "CloudWatchAlarm", AlarmName="canary-quiet")),
        guarded("Deploy", tmp_path, rule("Firing", "CloudWatchAlarm", AlarmName="canary-firing")),
    )
    assert status_of(client, "Canary") == "Succeeded"
    assert (tmp_path / "Canary").exists()
    assert rule_states(client, "Canary") == [("Quiet", "Succeeded", "Alarm canary-quiet is OK")]
    assert status_of(client, "Deploy") == "Failed"
    assert not (tmp_path / "Deploy").exists()
    assert rule_states(client, "Deploy") == [("Firing", "Failed", "Alarm canary-firing is ALARM")]
    (detail,) = [
        d
        for d in client.list_rule_executions(
            pipelineName="app", filter={"pipelineExecutionId": execution_id}
        )["ruleExecutionDetails"]
        if d["ruleName"] == "Firing"
    ]
    assert detail["input"]["resolvedConfiguration"] == {"AlarmName": "canary-firing"}
    assert detail["output"]["executionResult"]["errorDetails"]["message"] == (
        "Alarm canary-firing is ALARM"
    )


def test_lambda_rules_pass_when_the_function_returns_and_fail_when_it_raises(
    guarded_client: Any, repo: Path, tmp_path: Path
) -> None:
    client = guarded_client
    local = rule("Local", "LambdaInvoke", FunctionName="healthy", UserParameters="#{SRC.CommitId}")
    remote = rule("Remote", "LambdaInvoke", FunctionName="remote-check")
    failing = rule("Canary", "LambdaInvoke", FunctionName="unhealthy")
    run(
        client,
        repo,
        guarded("Check", tmp_path, local, remote),
        guarded("Deploy", tmp_path, failing),
    )
    assert status_of(client, "Check") == "Succeeded"
    assert (tmp_path / "Check").exists()
    (first, second) = rule_states(client, "Check")
    commit = stage_state(client, "app", "Source")["actionStates"][0]["currentRevision"][
        "revisionId"
    ]
    assert first == ("Local", "Succeeded", f'Function healthy returned {{"healthy": "{commit}"}}')
    assert second[:2] == ("Remote", "Succeeded")
    assert second[2].startswith("Function remote-check returned {")
    assert status_of(client, "Deploy") == "Failed"
    assert not (tmp_path / "Deploy").exists()
    ((name, status, summary),) = rule_states(client, "Deploy")
    assert (name, status) == ("Canary", "Failed")
    assert "the canary is down" in summary
