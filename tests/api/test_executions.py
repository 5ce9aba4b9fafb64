"""Executions through boto3: runs, failures, variables, stops, retries, approvals, transitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.engine import (
    action_state,
    approval,
    approval_token,
    commands,
    declaration,
    execution_status,
    latest_execution_id,
    make_repo,
    stage,
    stage_state,
    wait_for,
    wait_status,
)
from tests.support.errors import code


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    make_repo(path, {"run.sh": "echo built > out.txt\n"}, "the first commit")
    return path


def test_create_pipeline_starts_an_execution_that_runs_to_the_end(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration(
            "app",
            repo,
            stage(
                "Build",
                commands(
                    "Make",
                    "sh run.sh",
                    "export RESULT=$(cat out.txt)",
                    outputVariables=["RESULT"],
                    namespace="BUILD",
                    outputArtifacts=[{"name": "Out", "files": ["out.txt"]}],
                ),
            ),
        )
    )
    execution_id = latest_execution_id(client, "app")
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    execution = client.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)
    details = execution["pipelineExecution"]
    assert details["trigger"]["triggerType"] == "CreatePipeline"
    assert details["pipelineVersion"] == 1
    assert details["executionMode"] == "SUPERSEDED"
    [revision] = details["artifactRevisions"]
    assert revision["name"] == "Src"
    assert revision["revisionSummary"] == "the first commit"
    actions = client.list_action_executions(
        pipelineName="app", filter={"pipelineExecutionId": execution_id}
    )["actionExecutionDetails"]
    make = next(a for a in actions if a["actionName"] == "Make")
    assert make["output"]["outputVariables"] == {"RESULT": "built"}
    assert make["output"]["outputArtifacts"][0]["name"] == "Out"
    source = next(a for a in actions if a["actionName"] == "Source")
    assert source["output"]["outputVariables"]["CommitMessage"] == "the first commit"
    state = client.get_pipeline_state(name="app")
    assert (
        state["stageStates"][0]["actionStates"][0]["currentRevision"]["revisionId"]
        == revision["revisionId"]
    )
    assert state["stageStates"][1]["latestExecution"]["status"] == "Succeeded"


def test_run_order_groups_run_in_sequence(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration(
            "app",
            repo,
            stage(
                "Build",
                commands("A", "date +%s%N > /dev/null", run_order=1),
                commands("B", "true", run_order=1),
                commands("C", "true", run_order=2),
            ),
        )
    )
    execution_id = latest_execution_id(client, "app")
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    details = client.list_action_executions(pipelineName="app")["actionExecutionDetails"]
    by_name = {d["actionName"]: d for d in details}
    assert by_name["C"]["startTime"] >= max(
        by_name["A"]["lastUpdateTime"], by_name["B"]["lastUpdateTime"]
    )


def test_a_failing_command_fails_the_action_stage_and_execution(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration(
            "app",
            repo,
            stage("Build", commands("Make", "echo about to fail", "exit 3")),
            stage("Deploy", commands("Ship", "true")),
        )
    )
    execution_id = latest_execution_id(client, "app")
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Failed"
    summary = client.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)[
        "pipelineExecution"
    ]["statusSummary"]
    assert "Make" in summary
    make = action_state(client, "app", "Build", "Make")
    assert make["status"] == "Failed"
    assert "exit 3" in make["errorDetails"]["message"]
    assert stage_state(client, "app", "Build")["latestExecution"]["status"] == "Failed"
    assert "latestExecution" not in stage_state(client, "app", "Deploy")


def test_pipeline_variables_defaults_overrides_and_errors(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration(
            "app",
            repo,
            stage(
                "Build",
                commands(
                    "Echo",
                    "export SEEN=#{variables.env}-#{codepipeline.PipelineExecutionId}",
                    outputVariables=["SEEN"],
                ),
            ),
            variables=[{"name": "env", "defaultValue": "dev"}, {"name": "region"}],
        ),
    )
    first = latest_execution_id(client, "app")
    assert wait_status(client, "app", first, "Succeeded", "Failed") == "Failed"
    summary = client.get_pipeline_execution(pipelineName="app", pipelineExecutionId=first)
    assert "region" in summary["pipelineExecution"]["statusSummary"]
    execution_id = client.start_pipeline_execution(
        name="app", variables=[{"name": "env", "value": "prod"}, {"name": "region", "value": "eu"}]
    )["pipelineExecutionId"]
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    execution = client.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)
    assert execution["pipelineExecution"]["variables"] == [
        {"name": "env", "resolvedValue": "prod"},
        {"name": "region", "resolvedValue": "eu"},
    ]
    actions = client.list_action_executions(
        pipelineName="app", filter={"pipelineExecutionId": execution_id}
    )
    echo = next(a for a in actions["actionExecutionDetails"] if a["actionName"] == "Echo")
    assert echo["output"]["outputVariables"] == {"SEEN": f"prod-{execution_id}"}
    for bad in ([{"name": "nope", "value": "x"}], [{"name": "env", "value": "x"}]):
        with pytest.raises(ClientError) as excinfo:
            client.start_pipeline_execution(name="app", variables=bad)
        assert code(excinfo) == "ValidationException"


def test_create_pipeline_execution_fails_when_a_variable_has_no_value(
    client: Any, repo: Path
) -> None:
    client.create_pipeline(
        pipeline=declaration(
            "app", repo, stage("Build", commands("Echo", "true")), variables=[{"name": "needed"}]
        )
    )
    # The first execution cannot run without a value: it is recorded as failed, saying why.
    [summary] = client.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"]
    assert summary["status"] == "Failed"
    assert "needed" in summary["statusSummary"]


def test_client_request_token_is_idempotent(client: Any, repo: Path) -> None:
    client.create_pipeline(pipeline=declaration("app", repo, stage("Gate", approval())))
    first = client.start_pipeline_execution(name="app", clientRequestToken="same-token")
    again = client.start_pipeline_execution(name="app", clientRequestToken="same-token")
    assert first["pipelineExecutionId"] == again["pipelineExecutionId"]
    other = client.start_pipeline_execution(name="app", clientRequestToken="other-token")
    assert other["pipelineExecutionId"] != first["pipelineExecutionId"]


def test_start_unknown_pipeline(client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.start_pipeline_execution(name="missing")
    assert code(excinfo) == "PipelineNotFoundException"


def test_approval_approve_reject_and_token_errors(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration(
            "app", repo, stage("Gate", approval(CustomData="ship #{SRC.CommitId}?"))
        )
    )
    first = latest_execution_id(client, "app")
    token = approval_token(client, "app")
    with pytest.raises(ClientError) as excinfo:
        client.put_approval_result(
            pipelineName="app",
            stageName="Gate",
            actionName="Approve",
            token="00000000-0000-0000-0000-000000000000",
            result={"status": "Approved", "summary": "x"},
        )
    assert code(excinfo) == "InvalidApprovalTokenException"
    for stage_name, action, error in (
        ("Nope", "Approve", "StageNotFoundException"),
        ("Gate", "Nope", "ActionNotFoundException"),
    ):
        with pytest.raises(ClientError) as excinfo:
            client.put_approval_result(
                pipelineName="app",
                stageName=stage_name,
                actionName=action,
                token=token,
                result={"status": "Approved", "summary": "x"},
            )
        assert code(excinfo) == error
    answer = client.put_approval_result(
        pipelineName="app",
        stageName="Gate",
        actionName="Approve",
        token=token,
        result={"status": "Approved", "summary": "looks good"},
    )
    assert answer["approvedAt"]
    assert wait_status(client, "app", first, "Succeeded", "Failed") == "Succeeded"
    approved = action_state(client, "app", "Gate", "Approve")
    assert approved["summary"] == "looks good"
    assert approved["lastUpdatedBy"].startswith("arn:aws:iam::000000000000:user/")
    with pytest.raises(ClientError) as excinfo:
        client.put_approval_result(
            pipelineName="app",
            stageName="Gate",
            actionName="Approve",
            token=token,
            result={"status": "Approved", "summary": "again"},
        )
    assert code(excinfo) == "ApprovalAlreadyCompletedException"
    second = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    token = wait_for(
        lambda: (t := approval_token(client, "app")) != approved.get("externalExecutionId") and t
    )
    client.put_approval_result(
        pipelineName="app",
        stageName="Gate",
        actionName="Approve",
        token=token,
        result={"status": "Rejected", "summary": "not today"},
    )
    assert wait_status(client, "app", second, "Succeeded", "Failed") == "Failed"
    assert "not today" in action_state(client, "app", "Gate", "Approve")["errorDetails"]["message"]


def test_approval_custom_data_is_resolved(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration(
            "app", repo, stage("Gate", approval(CustomData="ship #{SRC.CommitId}?"))
        )
    )
    approval_token(client, "app")
    details = client.list_action_executions(pipelineName="app")["actionExecutionDetails"]
    gate = next(d for d in details if d["actionName"] == "Approve")
    commit = next(d for d in details if d["actionName"] == "Source")["output"]["outputVariables"][
        "CommitId"
    ]
    assert gate["input"]["resolvedConfiguration"] == {"CustomData": f"ship {commit}?"}
    assert gate["input"]["configuration"] == {"CustomData": "ship #{SRC.CommitId}?"}


def test_superseded_mode_keeps_one_waiting_execution(client: Any, repo: Path) -> None:
    client.create_pipeline(pipeline=declaration("app", repo, stage("Gate", approval())))
    first = latest_execution_id(client, "app")
    token = approval_token(client, "app")
    second = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    wait_for(
        lambda: (
            stage_state(client, "app", "Gate")
            .get("inboundExecution", {})
            .get("pipelineExecutionId")
            == second
        )
    )
    third = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    assert wait_status(client, "app", second, "Superseded") == "Superseded"
    wait_for(
        lambda: (
            stage_state(client, "app", "Gate")
            .get("inboundExecution", {})
            .get("pipelineExecutionId")
            == third
        )
    )
    assert execution_status(client, "app", first) == "InProgress"
    client.put_approval_result(
        pipelineName="app",
        stageName="Gate",
        actionName="Approve",
        token=token,
        result={"status": "Approved", "summary": ""},
    )
    assert wait_status(client, "app", first, "Succeeded") == "Succeeded"
    wait_for(
        lambda: (
            stage_state(client, "app", "Gate")["latestExecution"]["pipelineExecutionId"] == third
        )
    )


def test_queued_mode_runs_waiting_executions_in_order(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration("app", repo, stage("Gate", approval()), executionMode="QUEUED")
    )
    first = latest_execution_id(client, "app")
    approval_token(client, "app")
    second = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    wait_for(lambda: len(stage_state(client, "app", "Gate").get("inboundExecutions", [])) == 1)
    third = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    waiting = wait_for(
        lambda: (
            (w := stage_state(client, "app", "Gate").get("inboundExecutions", []))
            and len(w) == 2
            and w
        )
    )
    assert [w["pipelineExecutionId"] for w in waiting] == [second, third]
    for expected in (first, second, third):
        wait_for(
            lambda e=expected: (
                stage_state(client, "app", "Gate")["latestExecution"]["pipelineExecutionId"] == e
            )
        )
        token = approval_token(client, "app")
        client.put_approval_result(
            pipelineName="app",
            stageName="Gate",
            actionName="Approve",
            token=token,
            result={"status": "Approved", "summary": ""},
        )
        assert wait_status(client, "app", expected, "Succeeded") == "Succeeded"


def test_parallel_mode_runs_executions_side_by_side(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration("app", repo, stage("Gate", approval()), executionMode="PARALLEL")
    )
    first = latest_execution_id(client, "app")
    second = client.start_pipeline_execution(name="app")["pipelineExecutionId"]

    def waiting_approvals() -> list[dict[str, Any]]:
        details = client.list_action_executions(pipelineName="app")["actionExecutionDetails"]
        return [d for d in details if d["actionName"] == "Approve" and d["status"] == "InProgress"]

    approvals = wait_for(lambda: len(waiting_approvals()) == 2 and waiting_approvals())
    assert "token" not in action_state(client, "app", "Gate", "Approve")
    for detail in approvals:
        client.put_approval_result(
            pipelineName="app",
            stageName="Gate",
            actionName="Approve",
            token=detail["output"]["executionResult"]["externalExecutionId"],
            result={"status": "Approved", "summary": ""},
        )
    assert wait_status(client, "app", first, "Succeeded") == "Succeeded"
    assert wait_status(client, "app", second, "Succeeded") == "Succeeded"


def test_disabled_transition_holds_the_execution_until_enabled(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Make", "true")))
    )
    first = latest_execution_id(client, "app")
    wait_status(client, "app", first, "Succeeded")
    client.disable_stage_transition(
        pipelineName="app",
        stageName="Build",
        transitionType="Inbound",
        reason="Freeze for the release",
    )
    held = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    build = wait_for(
        lambda: (s := stage_state(client, "app", "Build")).get("inboundExecution") and s
    )
    assert build["inboundExecution"]["pipelineExecutionId"] == held
    transition = build["inboundTransitionState"]
    assert transition["enabled"] is False
    assert transition["disabledReason"] == "Freeze for the release"
    assert transition["lastChangedBy"].startswith("arn:aws:iam::")
    assert execution_status(client, "app", held) == "InProgress"
    client.enable_stage_transition(pipelineName="app", stageName="Build", transitionType="Inbound")
    assert wait_status(client, "app", held, "Succeeded") == "Succeeded"
    assert stage_state(client, "app", "Build")["inboundTransitionState"]["enabled"] is True


def test_outbound_transition_closes_the_next_stage(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Make", "true")))
    )
    client.disable_stage_transition(
        pipelineName="app", stageName="Source", transitionType="Outbound", reason="hold"
    )
    execution_id = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    wait_for(
        lambda: (
            stage_state(client, "app", "Build")
            .get("inboundExecution", {})
            .get("pipelineExecutionId")
            == execution_id
        )
    )
    assert stage_state(client, "app", "Build")["inboundTransitionState"]["enabled"] is False
    client.enable_stage_transition(
        pipelineName="app", stageName="Source", transitionType="Outbound"
    )
    assert wait_status(client, "app", execution_id, "Succeeded") == "Succeeded"


def test_transition_errors(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Make", "true")))
    )
    with pytest.raises(ClientError) as excinfo:
        client.disable_stage_transition(
            pipelineName="app", stageName="Nope", transitionType="Inbound", reason="x"
        )
    assert code(excinfo) == "StageNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        client.disable_stage_transition(
            pipelineName="nope", stageName="Build", transitionType="Inbound", reason="x"
        )
    assert code(excinfo) == "PipelineNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        client.disable_stage_transition(
            pipelineName="app", stageName="Build", transitionType="Inbound", reason="no_underscores"
        )
    assert code(excinfo) == "ValidationException"


def test_stop_and_wait_lets_the_action_finish(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration(
            "app",
            repo,
            stage("Build", commands("Slow", "sleep 1")),
            stage("Deploy", commands("Ship", "true")),
        )
    )
    execution_id = latest_execution_id(client, "app")
    wait_for(lambda: action_state(client, "app", "Build", "Slow").get("status") == "InProgress")
    client.stop_pipeline_execution(
        pipelineName="app", pipelineExecutionId=execution_id, reason="enough"
    )
    assert execution_status(client, "app", execution_id) == "Stopping"
    with pytest.raises(ClientError) as excinfo:
        client.stop_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)
    assert code(excinfo) == "DuplicatedStopRequestException"
    assert wait_status(client, "app", execution_id, "Stopped") == "Stopped"
    assert action_state(client, "app", "Build", "Slow")["status"] == "Succeeded"
    assert "latestExecution" not in stage_state(client, "app", "Deploy")
    summary = client.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"][0]
    assert summary["stopTrigger"] == {"reason": "enough"}
    with pytest.raises(ClientError) as excinfo:
        client.stop_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)
    assert code(excinfo) == "PipelineExecutionNotStoppableException"


def test_stop_and_abandon_kills_the_action(client: Any, repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    client.create_pipeline(
        pipeline=declaration(
            "app", repo, stage("Build", commands("Slow", f"sleep 30 && touch {marker}"))
        )
    )
    execution_id = latest_execution_id(client, "app")
    wait_for(lambda: action_state(client, "app", "Build", "Slow").get("status") == "InProgress")
    client.stop_pipeline_execution(
        pipelineName="app", pipelineExecutionId=execution_id, abandon=True
    )
    assert execution_status(client, "app", execution_id) == "Stopped"
    assert action_state(client, "app", "Build", "Slow")["status"] == "Abandoned"
    assert stage_state(client, "app", "Build")["latestExecution"]["status"] == "Stopped"
    assert not marker.exists()


def test_stop_escalates_from_wait_to_abandon(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Slow", "sleep 30")))
    )
    execution_id = latest_execution_id(client, "app")
    wait_for(lambda: action_state(client, "app", "Build", "Slow").get("status") == "InProgress")
    client.stop_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)
    assert execution_status(client, "app", execution_id) == "Stopping"
    client.stop_pipeline_execution(
        pipelineName="app", pipelineExecutionId=execution_id, abandon=True
    )
    assert execution_status(client, "app", execution_id) == "Stopped"


def test_stop_unknown_execution(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Make", "true")))
    )
    with pytest.raises(ClientError) as excinfo:
        client.stop_pipeline_execution(
            pipelineName="app", pipelineExecutionId="00000000-0000-0000-0000-000000000000"
        )
    assert code(excinfo) == "PipelineExecutionNotFoundException"


def failing_until(
    client: Any, repo: Path, flag: Path, *before: dict[str, Any], name: str = "Flaky"
) -> str:
    """Create ``app`` whose Build stage holds ``before`` and an action that fails until
    ``flag`` exists; the id of its first execution, once that has failed."""
    failing = commands(name, f"test -f {flag}")
    client.create_pipeline(pipeline=declaration("app", repo, stage("Build", *before, failing)))
    execution_id = latest_execution_id(client, "app")
    assert wait_status(client, "app", execution_id, "Failed") == "Failed"
    return execution_id


def test_retry_failed_actions_keeps_the_execution_id(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    execution_id = failing_until(client, repo, flag, commands("Good", "true"))
    good_before = action_state(client, "app", "Build", "Good")["actionExecutionId"]
    with pytest.raises(ClientError) as excinfo:
        client.retry_stage_execution(
            pipelineName="app",
            stageName="Source",
            pipelineExecutionId=execution_id,
            retryMode="FAILED_ACTIONS",
        )
    assert code(excinfo) == "StageNotRetryableException"
    flag.touch()
    retried = client.retry_stage_execution(
        pipelineName="app",
        stageName="Build",
        pipelineExecutionId=execution_id,
        retryMode="FAILED_ACTIONS",
    )
    assert retried["pipelineExecutionId"] == execution_id
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    assert action_state(client, "app", "Build", "Good")["actionExecutionId"] == good_before
    build = stage_state(client, "app", "Build")
    assert build["retryStageMetadata"] == {
        "manualStageRetryAttempt": 1,
        "latestRetryTrigger": "ManualStageRetry",
    }
    history = client.list_action_executions(
        pipelineName="app", filter={"pipelineExecutionId": execution_id}
    )
    assert [
        d["status"] for d in history["actionExecutionDetails"] if d["actionName"] == "Flaky"
    ] == ["Succeeded", "Failed"]


def test_retry_all_actions_reruns_everything(client: Any, repo: Path, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    execution_id = failing_until(client, repo, flag, commands("Good", "true"))
    good_before = action_state(client, "app", "Build", "Good")["actionExecutionId"]
    flag.touch()
    client.retry_stage_execution(
        pipelineName="app",
        stageName="Build",
        pipelineExecutionId=execution_id,
        retryMode="ALL_ACTIONS",
    )
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    assert action_state(client, "app", "Build", "Good")["actionExecutionId"] != good_before


def test_retry_is_refused_once_a_newer_execution_entered_the_stage(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    first = failing_until(client, repo, flag)
    second = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    wait_status(client, "app", second, "Failed")
    with pytest.raises(ClientError) as excinfo:
        client.retry_stage_execution(
            pipelineName="app",
            stageName="Build",
            pipelineExecutionId=first,
            retryMode="FAILED_ACTIONS",
        )
    assert code(excinfo) == "NotLatestPipelineExecutionException"
    with pytest.raises(ClientError) as excinfo:
        client.retry_stage_execution(
            pipelineName="app",
            stageName="Nope",
            pipelineExecutionId=second,
            retryMode="FAILED_ACTIONS",
        )
    assert code(excinfo) == "StageNotFoundException"


def test_update_cancels_a_waiting_execution_of_the_old_version(client: Any, repo: Path) -> None:
    definition = declaration("app", repo, stage("Gate", approval()))
    client.create_pipeline(pipeline=definition)
    first = latest_execution_id(client, "app")
    token = approval_token(client, "app")
    waiting = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    wait_for(lambda: stage_state(client, "app", "Gate").get("inboundExecution"))
    client.update_pipeline(pipeline=definition)
    assert wait_status(client, "app", waiting, "Cancelled") == "Cancelled"
    client.put_approval_result(
        pipelineName="app",
        stageName="Gate",
        actionName="Approve",
        token=token,
        result={"status": "Approved", "summary": ""},
    )
    assert wait_status(client, "app", first, "Succeeded", "Cancelled") == "Succeeded"
    fresh = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    wait_for(
        lambda: (
            stage_state(client, "app", "Gate")["latestExecution"]["pipelineExecutionId"] == fresh
        )
    )
    assert (
        client.get_pipeline_execution(pipelineName="app", pipelineExecutionId=fresh)[
            "pipelineExecution"
        ]["pipelineVersion"]
        == 2
    )


def test_update_cancels_a_running_execution_after_its_actions(client: Any, repo: Path) -> None:
    definition = declaration(
        "app",
        repo,
        stage("Build", commands("Slow", "sleep 1"), commands("Next", "true", run_order=2)),
    )
    client.create_pipeline(pipeline=definition)
    first = latest_execution_id(client, "app")
    wait_for(lambda: action_state(client, "app", "Build", "Slow").get("status") == "InProgress")
    client.update_pipeline(pipeline=definition)
    assert wait_status(client, "app", first, "Cancelled", "Succeeded") == "Cancelled"
    assert action_state(client, "app", "Build", "Slow")["status"] == "Succeeded"
    assert "latestExecution" not in {
        k: v for k, v in action_state(client, "app", "Build", "Next").items() if v
    }


def test_source_revision_override_runs_an_older_commit(client: Any, repo: Path) -> None:
    from tests.support.engine import commit, git

    old = git(repo, "rev-parse", "HEAD")
    commit(repo, {"run.sh": "exit 1\n"}, "broken")
    client.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Make", "sh run.sh")))
    )
    first = latest_execution_id(client, "app")
    assert wait_status(client, "app", first, "Failed", "Succeeded") == "Failed"
    execution_id = client.start_pipeline_execution(
        name="app",
        sourceRevisions=[
            {"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": old}
        ],
    )["pipelineExecutionId"]
    assert wait_status(client, "app", execution_id, "Failed", "Succeeded") == "Succeeded"
    revision = client.get_pipeline_execution(pipelineName="app", pipelineExecutionId=execution_id)[
        "pipelineExecution"
    ]["artifactRevisions"][0]
    assert revision["revisionId"] == old
    with pytest.raises(ClientError) as excinfo:
        client.start_pipeline_execution(
            name="app",
            sourceRevisions=[
                {"actionName": "Source", "revisionType": "S3_OBJECT_KEY", "revisionValue": "x"}
            ],
        )
    assert code(excinfo) == "ValidationException"


def test_list_pipeline_executions_pages_and_filters(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    client.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Make", f"test -f {flag}")))
    )
    ids = [latest_execution_id(client, "app")]
    wait_status(client, "app", ids[0], "Failed")
    flag.touch()
    for _ in range(2):
        ids.append(client.start_pipeline_execution(name="app")["pipelineExecutionId"])
        wait_status(client, "app", ids[-1], "Succeeded")
    page = client.list_pipeline_executions(pipelineName="app", maxResults=2)
    assert [s["pipelineExecutionId"] for s in page["pipelineExecutionSummaries"]] == ids[::-1][:2]
    rest = client.list_pipeline_executions(
        pipelineName="app", maxResults=2, nextToken=page["nextToken"]
    )
    assert [s["pipelineExecutionId"] for s in rest["pipelineExecutionSummaries"]] == [ids[0]]
    assert "nextToken" not in rest
    succeeded = client.list_pipeline_executions(
        pipelineName="app", filter={"succeededInStage": {"stageName": "Build"}}
    )
    assert [s["pipelineExecutionId"] for s in succeeded["pipelineExecutionSummaries"]] == ids[:0:-1]
    with pytest.raises(ClientError) as excinfo:
        client.list_pipeline_executions(
            pipelineName="app",
            maxResults=2,
            nextToken=page["nextToken"],
            filter={"succeededInStage": {"stageName": "Build"}},
        )
    assert code(excinfo) == "InvalidNextTokenException"


def test_list_action_executions_latest_only_and_errors(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    execution_id = failing_until(client, repo, flag)
    flag.touch()
    client.retry_stage_execution(
        pipelineName="app",
        stageName="Build",
        pipelineExecutionId=execution_id,
        retryMode="FAILED_ACTIONS",
    )
    wait_status(client, "app", execution_id, "Succeeded")
    latest = client.list_action_executions(
        pipelineName="app",
        filter={
            "latestInPipelineExecution": {
                "pipelineExecutionId": execution_id,
                "startTimeRange": "Latest",
            }
        },
    )["actionExecutionDetails"]
    assert sorted(d["actionName"] for d in latest) == ["Flaky", "Source"]
    every = client.list_action_executions(pipelineName="app", maxResults=1)
    assert len(every["actionExecutionDetails"]) == 1
    assert "nextToken" in every
    with pytest.raises(ClientError) as excinfo:
        client.list_action_executions(
            pipelineName="app",
            filter={"pipelineExecutionId": "00000000-0000-0000-0000-000000000000"},
        )
    assert code(excinfo) == "PipelineExecutionNotFoundException"


def test_events_are_written_for_every_change(client: Any, repo: Path, server: Any) -> None:
    client.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Make", "true")))
    )
    execution_id = latest_execution_id(client, "app")
    wait_status(client, "app", execution_id, "Succeeded")
    with server.application.store.read() as tx:
        events = tx.events.after(0, pipeline_name="app")
    kinds = [(e.detail_type.split()[1], e.body["detail"]["state"]) for e in events]
    assert kinds[0] == ("Pipeline", "STARTED")
    assert kinds[-1] == ("Pipeline", "SUCCEEDED")
    assert ("Stage", "STARTED") in kinds and ("Action", "SUCCEEDED") in kinds
    first = events[0].body
    assert first["source"] == "aws.codepipeline"
    assert first["resources"] == ["arn:aws:codepipeline:us-east-1:000000000000:app"]
    assert first["detail"]["execution-trigger"]["trigger-type"] == "CreatePipeline"
    action = next(e.body for e in events if e.detail_type.endswith("Action Execution State Change"))
    assert action["detail"]["type"] == {
        "owner": "AWS",
        "category": "Source",
        "provider": "Git",
        "version": "1",
    }


def test_get_pipeline_state_of_a_new_pipeline_shape(client: Any, repo: Path) -> None:
    client.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Make", "true"))),
    )
    wait_status(client, "app", latest_execution_id(client, "app"), "Succeeded")
    state = client.get_pipeline_state(name="app")
    assert state["pipelineName"] == "app"
    assert state["pipelineVersion"] == 1
    assert "inboundTransitionState" not in state["stageStates"][0]
    assert state["stageStates"][1]["inboundTransitionState"] == {"enabled": True}
    with pytest.raises(ClientError) as excinfo:
        client.get_pipeline_state(name="nope")
    assert code(excinfo) == "PipelineNotFoundException"


def test_an_action_type_without_a_provider_fails_at_once(store: Any, repo: Path) -> None:
    """An installation without a provider for a built-in type fails its actions at once,
    saying so, instead of leaving them queued until they time out."""
    from conveyor.domain.arn import Scope
    from conveyor.engine.services import Limits, Services

    services = Services.build(store, Scope("us-east-1", "000000000000"), Limits())
    services.pipelines.create(
        declaration("app", repo, stage("Build", commands("Make", "true"))), []
    )
    executions, _ = services.views.executions("app", None, 10, None)
    [execution] = executions
    assert execution.status == "Failed"
    assert "runs action type AWS/Source/Git/1" in (execution.summary or "")
