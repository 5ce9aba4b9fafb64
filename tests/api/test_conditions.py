"""Stage conditions through boto3: rules run as jobs, in order, and an unmet condition's
result (FAIL, SKIP, ROLLBACK) decides what happens to the stage and the execution."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import sqlite_only
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
from tests.support.errors import code

WAIT = 60.0


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    make_repo(path, {"version.txt": "good-1\n"}, "the first commit")
    return path


def variable_check(name: str, value: str, operator: str = "EQ") -> dict[str, Any]:
    return {
        "name": name,
        "ruleTypeId": {
            "category": "Rule",
            "owner": "AWS",
            "provider": "VariableCheck",
            "version": "1",
        },
        "configuration": {"Variable": "#{variables.gate}", "Value": value, "Operator": operator},
    }


def commands_rule(name: str, *lines: str) -> dict[str, Any]:
    return {
        "name": name,
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "Commands", "version": "1"},
        "commands": list(lines),
        "inputArtifacts": [{"name": "Src"}],
    }


def create(client: Any, repo: Path, gate: str, tmp_path: Path, **build_stage: Any) -> str:
    """``app``: Source, Build (touching ``built``), Deploy (touching ``deployed``), with the
    pipeline variable ``gate``; its first execution's id, once it ended."""
    build = stage("Build", commands("Make", f"touch {tmp_path / 'built'}"))
    build.update(build_stage)
    deploy = stage("Deploy", commands("Ship", f"touch {tmp_path / 'deployed'}"))
    client.create_pipeline(
        pipeline=declaration(
            "app", repo, build, deploy, variables=[{"name": "gate", "defaultValue": gate}]
        )
    )
    execution_id = latest_execution_id(client, "app")
    wait_status(client, "app", execution_id, "Succeeded", "Failed", timeout=WAIT)
    return execution_id


def rules(client: Any, execution_id: str) -> list[tuple[str, str]]:
    details = client.list_rule_executions(
        pipelineName="app", filter={"pipelineExecutionId": execution_id}
    )["ruleExecutionDetails"]
    return sorted((d["ruleName"], d["status"]) for d in details)


def test_an_unmet_entry_condition_with_fail_fails_the_stage_before_its_actions(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    entry = {"conditions": [{"result": "FAIL", "rules": [variable_check("Open", "open")]}]}
    execution_id = create(client, repo, "closed", tmp_path, beforeEntry=entry)
    assert (
        client.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)[
            "pipelineExecution"
        ]["status"]
        == "Failed"
    )
    assert stage_state(client, "app", "Build")["latestExecution"]["status"] == "Failed"
    assert not (tmp_path / "built").exists()
    assert rules(client, execution_id) == [("Open", "Failed")]
    entry_state = stage_state(client, "app", "Build")["beforeEntryConditionState"]
    assert entry_state["latestExecution"]["status"] == "Failed"
    (condition_state,) = entry_state["conditionStates"]
    assert condition_state["latestExecution"]["status"] == "Failed"
    (rule_state,) = condition_state["ruleStates"]
    assert rule_state["ruleName"] == "Open"
    assert rule_state["latestExecution"]["status"] == "Failed"
    detail = client.list_rule_executions(pipelineName="app")["ruleExecutionDetails"][0]
    assert detail["input"]["resolvedConfiguration"]["Variable"] == "closed"
    assert detail["ruleExecutionId"]


def test_met_entry_conditions_run_every_rule_in_order_then_the_actions(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    checks = [variable_check("Open", "open"), commands_rule("Readable", "grep -q good version.txt")]
    entry = {"conditions": [{"result": "FAIL", "rules": checks}]}
    execution_id = create(client, repo, "open", tmp_path, beforeEntry=entry)
    assert stage_state(client, "app", "Deploy")["latestExecution"]["status"] == "Succeeded"
    assert (tmp_path / "built").exists()
    assert rules(client, execution_id) == [("Open", "Succeeded"), ("Readable", "Succeeded")]
    entry_state = stage_state(client, "app", "Build")["beforeEntryConditionState"]
    assert entry_state["latestExecution"]["status"] == "Succeeded"
    states = entry_state["conditionStates"][0]["ruleStates"]
    assert [(r["ruleName"], r["latestExecution"]["status"]) for r in states] == [
        ("Open", "Succeeded"),
        ("Readable", "Succeeded"),
    ]
    assert "onSuccessConditionState" not in stage_state(client, "app", "Build")


def test_a_failing_commands_rule_stops_the_condition_at_it(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    checks = [commands_rule("Missing", "test -f missing.txt"), variable_check("Open", "open")]
    entry = {"conditions": [{"result": "FAIL", "rules": checks}]}
    execution_id = create(client, repo, "open", tmp_path, beforeEntry=entry)
    assert stage_state(client, "app", "Build")["latestExecution"]["status"] == "Failed"
    assert rules(client, execution_id) == [("Missing", "Failed")]
    (detail,) = client.list_rule_executions(pipelineName="app")["ruleExecutionDetails"]
    url = detail["output"]["executionResult"]["externalExecutionUrl"]
    with urllib.request.urlopen(url, timeout=30) as response:
        assert b"test -f missing.txt" in response.read()


def test_an_unmet_entry_condition_with_skip_skips_the_stage_and_goes_on(
    client: Any, repo: Path, tmp_path: Path, server: Any
) -> None:
    entry = {"conditions": [{"result": "SKIP", "rules": [variable_check("Open", "open")]}]}
    execution_id = create(client, repo, "closed", tmp_path, beforeEntry=entry)
    assert (
        client.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)[
            "pipelineExecution"
        ]["status"]
        == "Succeeded"
    )
    assert stage_state(client, "app", "Build")["latestExecution"]["status"] == "Skipped"
    assert not (tmp_path / "built").exists()
    assert (tmp_path / "deployed").exists()
    with server.application.store.read() as tx:
        events = tx.events.after(0, pipeline_name="app")
    changes = [
        (e.detail_type, e.body["detail"]["state"], e.body["detail"].get("rule"))
        for e in events
        if "Condition" in e.detail_type or "Rule" in e.detail_type
    ]
    assert changes == [
        ("CodePipeline Stage Condition State Change", "STARTED", None),
        ("CodePipeline Rule Execution State Change", "STARTED", "Open"),
        ("CodePipeline Rule Execution State Change", "FAILED", "Open"),
        ("CodePipeline Stage Condition State Change", "FAILED", None),
    ]
    rule_event = next(e.body for e in events if "Rule" in e.detail_type)
    assert rule_event["detail"]["condition-type"] == "BEFORE_ENTRY"
    assert rule_event["detail"]["type"]["provider"] == "VariableCheck"


def test_an_unmet_on_success_condition_fails_the_stage_after_its_actions(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    after = {"conditions": [{"result": "FAIL", "rules": [variable_check("Open", "open")]}]}
    execution_id = create(client, repo, "closed", tmp_path, onSuccess=after)
    assert (tmp_path / "built").exists()
    assert stage_state(client, "app", "Build")["latestExecution"]["status"] == "Failed"
    assert not (tmp_path / "deployed").exists()
    assert rules(client, execution_id) == [("Open", "Failed")]


def test_an_unmet_on_success_condition_with_rollback_rolls_the_stage_back(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    after = {"conditions": [{"result": "ROLLBACK", "rules": [variable_check("Open", "open")]}]}
    first = create(client, repo, "open", tmp_path, onSuccess=after)
    assert stage_state(client, "app", "Deploy")["latestExecution"]["status"] == "Succeeded"
    second = client.start_pipeline_execution(
        name="app", variables=[{"name": "gate", "value": "closed"}]
    )["pipelineExecutionId"]
    assert wait_status(client, "app", second, "Succeeded", "Failed", timeout=WAIT) == "Failed"

    def rollback() -> dict[str, Any] | None:
        summaries = client.list_pipeline_executions(pipelineName="app")[
            "pipelineExecutionSummaries"
        ]
        return next((s for s in summaries if s.get("executionType") == "ROLLBACK"), None)

    found = wait_for(rollback, timeout=WAIT, what="the rollback execution")
    assert found["rollbackMetadata"]["rollbackTargetPipelineExecutionId"] == first
    assert found["trigger"]["triggerType"] == "AutomatedRollback"


def test_an_entry_condition_with_skip_refuses_a_commands_rule(client: Any, repo: Path) -> None:
    entry = {"conditions": [{"result": "SKIP", "rules": [commands_rule("Check", "true")]}]}
    build = stage("Build", commands("Make", "true"))
    build["beforeEntry"] = entry
    with pytest.raises(ClientError) as raised:
        client.create_pipeline(pipeline=declaration("app", repo, build))
    assert code(raised) == "InvalidStageDeclarationException"
    assert "Check" in str(raised.value)


REFUSED_RESULTS = [
    ("beforeEntry", "conditions[0].result", "ROLLBACK"),
    ("onSuccess", "conditions[0].result", "SKIP"),
    ("onFailure", "conditions[0].result", "FAIL"),
    ("onFailure", "result", "SKIP"),
]


@sqlite_only
@pytest.mark.parametrize(("kind", "field", "result"), REFUSED_RESULTS)
def test_a_result_its_condition_kind_does_not_allow_is_refused(
    client: Any, repo: Path, kind: str, field: str, result: str
) -> None:
    build = stage("Build", commands("Make", "true"))
    if field == "result":
        build[kind] = {"result": result}
    else:
        build[kind] = {"conditions": [{"result": result, "rules": [variable_check("G", "x")]}]}
    with pytest.raises(ClientError) as raised:
        client.create_pipeline(
            pipeline=declaration("app", repo, build, variables=[{"name": "gate"}])
        )
    assert code(raised) == "InvalidStageDeclarationException"
    assert f"at pipeline.stages[1].{kind}.{field}" in str(raised.value)
    assert client.list_pipelines()["pipelines"] == []


def test_overrides_let_the_stage_in_and_out_while_its_rules_still_run(
    client: Any, repo: Path, tmp_path: Path, server: Any
) -> None:
    never = tmp_path / "never"
    waits = commands_rule("Wait", f"while [ ! -f {never} ]; do sleep 0.2; done")
    after = commands_rule("After", f"while [ ! -f {never} ]; do sleep 0.2; done")
    build = stage("Build", commands("Make", f"touch {tmp_path / 'built'}"))
    build["beforeEntry"] = {"conditions": [{"result": "FAIL", "rules": [waits]}]}
    build["onSuccess"] = {"conditions": [{"result": "FAIL", "rules": [after]}]}
    deploy = stage("Deploy", commands("Ship", f"touch {tmp_path / 'deployed'}"))
    client.create_pipeline(pipeline=declaration("app", repo, build, deploy))
    execution_id = latest_execution_id(client, "app")

    def override(kind: str) -> None:
        client.override_stage_condition(
            pipelineName="app",
            stageName="Build",
            pipelineExecutionId=execution_id,
            conditionType=kind,
        )

    wait_for(lambda: rules(client, execution_id) == [("Wait", "InProgress")], timeout=WAIT)
    with pytest.raises(ClientError) as raised:
        override("ON_SUCCESS")
    assert code(raised) == "ConditionNotOverridableException"
    override("BEFORE_ENTRY")
    running = [("After", "InProgress"), ("Wait", "Abandoned")]
    wait_for(lambda: rules(client, execution_id) == running, timeout=WAIT)
    assert (tmp_path / "built").exists()
    entry_state = stage_state(client, "app", "Build")["beforeEntryConditionState"]
    assert entry_state["latestExecution"]["status"] == "Overridden"
    with pytest.raises(ClientError) as raised:
        override("BEFORE_ENTRY")
    assert code(raised) == "ConditionNotOverridableException"
    override("ON_SUCCESS")
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed", timeout=WAIT) == (
        "Succeeded"
    )
    assert (tmp_path / "deployed").exists()
    assert rules(client, execution_id) == [("After", "Abandoned"), ("Wait", "Abandoned")]
    success_state = stage_state(client, "app", "Build")["onSuccessConditionState"]
    assert success_state["latestExecution"]["status"] == "Overridden"
    (condition_state,) = success_state["conditionStates"]
    assert condition_state["ruleStates"][0]["ruleName"] == "After"
    assert condition_state["ruleStates"][0]["latestExecution"]["status"] == "Abandoned"
    with server.application.store.read() as tx:
        events = tx.events.after(0, pipeline_name="app")
    changes = [
        (
            e.body["detail"].get("condition-type"),
            e.body["detail"].get("rule"),
            e.body["detail"]["state"],
        )
        for e in events
        if "Condition" in e.detail_type or "Rule" in e.detail_type
    ]
    assert changes == [
        ("BEFORE_ENTRY", None, "STARTED"),
        ("BEFORE_ENTRY", "Wait", "STARTED"),
        ("BEFORE_ENTRY", "Wait", "ABANDONED"),
        ("BEFORE_ENTRY", None, "OVERRIDDEN"),
        ("ON_SUCCESS", None, "STARTED"),
        ("ON_SUCCESS", "After", "STARTED"),
        ("ON_SUCCESS", "After", "ABANDONED"),
        ("ON_SUCCESS", None, "OVERRIDDEN"),
    ]


def test_a_rule_past_its_time_fails_and_its_condition_with_it(
    client: Any, repo: Path, tmp_path: Path, server: Any
) -> None:
    never = tmp_path / "never"
    waits = {
        **commands_rule("Wait", f"while [ ! -f {never} ]; do sleep 0.2; done"),
        "timeoutInMinutes": 5,
    }
    build = stage("Build", commands("Make", f"touch {tmp_path / 'built'}"))
    build["beforeEntry"] = {"conditions": [{"result": "FAIL", "rules": [waits]}]}
    client.create_pipeline(pipeline=declaration("app", repo, build))
    execution_id = latest_execution_id(client, "app")
    wait_for(lambda: rules(client, execution_id) == [("Wait", "InProgress")], timeout=WAIT)
    services = server.application.services
    with services.store.read() as tx:
        (rule,) = tx.rule_runs.rules_of([execution_id])
    assert rule.deadline is not None
    assert rule.deadline - rule.started == pytest.approx(300, abs=1)
    with services.store.write() as tx:
        tx.rule_runs.update_rule(rule.id, "InProgress", deadline=time.time() - 1)
    services.sweeper.sweep()
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed", timeout=WAIT) == (
        "Failed"
    )
    assert rules(client, execution_id) == [("Wait", "Failed")]
    (detail,) = client.list_rule_executions(pipelineName="app")["ruleExecutionDetails"]
    error = detail["output"]["executionResult"]["errorDetails"]
    assert error == {"code": "TimedOut", "message": "The rule timed out after 5 minutes."}
    assert not (tmp_path / "built").exists()


def test_met_on_failure_conditions_let_the_failed_stage_roll_back(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    on_failure = {
        "result": "ROLLBACK",
        "conditions": [{"result": "ROLLBACK", "rules": [variable_check("Closed", "closed")]}],
    }
    deploy = stage("Deploy", commands("Ship", 'test "#{variables.gate}" = open'))
    deploy["onFailure"] = on_failure
    client.create_pipeline(
        pipeline=declaration(
            "app", repo, deploy, variables=[{"name": "gate", "defaultValue": "open"}]
        )
    )
    first = latest_execution_id(client, "app")
    assert wait_status(client, "app", first, "Succeeded", "Failed", timeout=WAIT) == "Succeeded"
    second = client.start_pipeline_execution(
        name="app", variables=[{"name": "gate", "value": "closed"}]
    )["pipelineExecutionId"]
    assert wait_status(client, "app", second, "Succeeded", "Failed", timeout=WAIT) == "Failed"
    assert rules(client, second) == [("Closed", "Succeeded")]

    def rollback() -> dict[str, Any] | None:
        summaries = client.list_pipeline_executions(pipelineName="app")[
            "pipelineExecutionSummaries"
        ]
        return next((s for s in summaries if s.get("executionType") == "ROLLBACK"), None)

    found = wait_for(rollback, timeout=WAIT, what="the rollback execution")
    assert found["rollbackMetadata"]["rollbackTargetPipelineExecutionId"] == first
    failure_state = stage_state(client, "app", "Deploy")
    assert "onFailureConditionState" in failure_state
