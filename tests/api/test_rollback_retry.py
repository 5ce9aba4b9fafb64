"""V2 stages through boto3: automatic retry on failure, manual and automatic rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.engine import (
    approval,
    commands,
    commit,
    declaration,
    execution_status,
    git,
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


def flaky_build(client: Any, repo: Path, line: str, mode: str = "FAILED_ACTIONS") -> str:
    build = stage("Build", commands("Good", "true"), commands("Flaky", line))
    build["onFailure"] = {"result": "RETRY", "retryConfiguration": {"retryMode": mode}}
    client.create_pipeline(pipeline=declaration("app", repo, build))
    return latest_execution_id(client, "app")


def attempts(client: Any, execution_id: str, action: str) -> list[str]:
    details = client.list_action_executions(
        pipelineName="app", filter={"pipelineExecutionId": execution_id}
    )["actionExecutionDetails"]
    return [d["status"] for d in details if d["actionName"] == action]


def test_a_stage_that_retries_on_failure_retries_its_failed_actions_once(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "failed-once"
    execution_id = flaky_build(client, repo, f"test -f {flag} || {{ touch {flag}; exit 1; }}")
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed", timeout=WAIT) == (
        "Succeeded"
    )
    assert attempts(client, execution_id, "Flaky") == ["Succeeded", "Failed"]
    assert attempts(client, execution_id, "Good") == ["Succeeded"]
    assert stage_state(client, "app", "Build")["retryStageMetadata"] == {
        "autoStageRetryAttempt": 1,
        "latestRetryTrigger": "AutomatedStageRetry",
    }


def test_the_automatic_retry_happens_once_then_the_stage_stays_failed(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    execution_id = flaky_build(client, repo, f"test -f {flag}", mode="ALL_ACTIONS")
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed", timeout=WAIT) == (
        "Failed"
    )
    assert attempts(client, execution_id, "Flaky") == ["Failed", "Failed"]
    assert attempts(client, execution_id, "Good") == ["Succeeded", "Succeeded"]
    build = stage_state(client, "app", "Build")
    assert build["latestExecution"]["status"] == "Failed"
    assert build["retryStageMetadata"]["autoStageRetryAttempt"] == 1
    # A manual retry after it counts as manual, and its failure is retried automatically again.
    flag.touch()
    client.retry_stage_execution(
        pipelineName="app",
        stageName="Build",
        pipelineExecutionId=execution_id,
        retryMode="FAILED_ACTIONS",
    )
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed", timeout=WAIT) == (
        "Succeeded"
    )
    assert stage_state(client, "app", "Build")["retryStageMetadata"] == {
        "autoStageRetryAttempt": 1,
        "manualStageRetryAttempt": 1,
        "latestRetryTrigger": "ManualStageRetry",
    }


def deploying(client: Any, repo: Path, log: Path, **deploy_stage: Any) -> str:
    """``app``: Source, then Deploy appending the source's version.txt to ``log`` (and the
    pipeline variable ``release`` with the source's commit to ``log.vars``), failing unless
    the version is a good one; its first execution's id, once succeeded."""
    shipped = f'echo "#{{variables.release}} #{{SRC.CommitId}}" >> {log}.vars'
    deploy = stage(
        "Deploy",
        commands("Ship", f"cat version.txt >> {log}", shipped, "grep -q good version.txt"),
    )
    deploy.update(deploy_stage)
    release = [{"name": "release", "defaultValue": "r1"}]
    client.create_pipeline(pipeline=declaration("app", repo, deploy, variables=release))
    first = latest_execution_id(client, "app")
    assert wait_status(client, "app", first, "Succeeded", "Failed", timeout=WAIT) == "Succeeded"
    return first


def test_rollback_stage_runs_the_stage_again_with_the_targets_revision(
    client: Any, repo: Path, tmp_path: Path, server: Any
) -> None:
    log = tmp_path / "deployed.log"
    first = deploying(client, repo, log)
    first_commit = git(repo, "rev-parse", "HEAD")
    commit(repo, {"version.txt": "good-2\n"}, "the second commit")
    second = client.start_pipeline_execution(
        name="app", variables=[{"name": "release", "value": "r2"}]
    )["pipelineExecutionId"]
    assert wait_status(client, "app", second, "Succeeded", "Failed", timeout=WAIT) == "Succeeded"

    rollback = client.rollback_stage(
        pipelineName="app", stageName="Deploy", targetPipelineExecutionId=first
    )["pipelineExecutionId"]
    assert rollback not in (first, second)
    assert wait_status(client, "app", rollback, "Succeeded", "Failed", timeout=WAIT) == (
        "Succeeded"
    )
    assert log.read_text().splitlines() == ["good-1", "good-2", "good-1"]
    # The target's pipeline variables and source variables, not the latest execution's.
    assert Path(f"{log}.vars").read_text().splitlines()[-1] == f"r1 {first_commit}"
    execution = client.get_pipeline_execution(pipelineName="app", pipelineExecutionId=rollback)[
        "pipelineExecution"
    ]
    assert execution["executionType"] == "ROLLBACK"
    assert execution["trigger"]["triggerType"] == "ManualRollback"
    assert execution["rollbackMetadata"] == {"rollbackTargetPipelineExecutionId": first}
    assert [r["revisionSummary"] for r in execution["artifactRevisions"]] == ["the first commit"]
    # Only the stage rolled back ran: no source action in the rollback execution.
    details = client.list_action_executions(
        pipelineName="app", filter={"pipelineExecutionId": rollback}
    )["actionExecutionDetails"]
    assert [d["actionName"] for d in details] == ["Ship"]
    deploy = stage_state(client, "app", "Deploy")["latestExecution"]
    assert deploy == {"pipelineExecutionId": rollback, "status": "Succeeded", "type": "ROLLBACK"}
    summaries = client.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"]
    assert summaries[0]["executionType"] == "ROLLBACK"
    with server.application.store.read() as tx:
        events = tx.events.after(0, pipeline_name="app")
    rolled = [
        (e.detail_type.removeprefix("CodePipeline "), e.body["detail"])
        for e in events
        if e.body["detail"]["execution-id"] == rollback
    ]
    assert [(kind, detail.get("stage"), detail["state"]) for kind, detail in rolled][:3] == [
        ("Pipeline Execution State Change", None, "STARTED"),
        ("Stage Execution State Change", "Deploy", "STARTED"),
        ("Action Execution State Change", "Deploy", "STARTED"),
    ]
    trigger = rolled[0][1]["execution-trigger"]
    assert trigger["trigger-type"] == "ManualRollback"
    assert rolled[-1][0] == "Pipeline Execution State Change"
    assert rolled[-1][1]["state"] == "SUCCEEDED"
    assert summaries[0]["rollbackMetadata"] == {"rollbackTargetPipelineExecutionId": first}

    def refused(stage_name: str, target: str) -> str:
        with pytest.raises(ClientError) as excinfo:
            client.rollback_stage(
                pipelineName="app", stageName=stage_name, targetPipelineExecutionId=target
            )
        return code(excinfo)

    assert refused("Source", first) == "UnableToRollbackStageException"
    assert refused("Deploy", rollback) == "UnableToRollbackStageException"
    assert refused("Nope", first) == "StageNotFoundException"
    assert refused("Deploy", "00000000-0000-0000-0000-000000000000") == (
        "PipelineExecutionNotFoundException"
    )


def test_rollback_refuses_a_target_that_failed_or_ran_an_older_version(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    log = tmp_path / "deployed.log"
    deploying(client, repo, log)
    commit(repo, {"version.txt": "bad\n"}, "a broken commit")
    broken = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    assert wait_status(client, "app", broken, "Succeeded", "Failed", timeout=WAIT) == "Failed"
    with pytest.raises(ClientError) as excinfo:
        client.rollback_stage(
            pipelineName="app", stageName="Deploy", targetPipelineExecutionId=broken
        )
    assert code(excinfo) == "UnableToRollbackStageException"
    assert "must have succeeded" in excinfo.value.response["Error"]["Message"]

    pipeline = client.get_pipeline(name="app")["pipeline"]
    pipeline["stages"][1]["actions"][0]["commands"].append("true")
    client.update_pipeline(pipeline=pipeline)
    summaries = client.list_pipeline_executions(
        pipelineName="app", filter={"succeededInStage": {"stageName": "Deploy"}}
    )["pipelineExecutionSummaries"]
    old = summaries[-1]["pipelineExecutionId"]
    with pytest.raises(ClientError) as excinfo:
        client.rollback_stage(pipelineName="app", stageName="Deploy", targetPipelineExecutionId=old)
    assert code(excinfo) == "PipelineExecutionOutdatedException"


def test_a_stage_that_rolls_back_on_failure_rolls_back_to_its_last_success(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    log = tmp_path / "deployed.log"
    first = deploying(client, repo, log, onFailure={"result": "ROLLBACK"})
    commit(repo, {"version.txt": "bad\n"}, "a broken commit")
    broken = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    assert wait_status(client, "app", broken, "Succeeded", "Failed", timeout=WAIT) == "Failed"

    def rollback_started() -> str | None:
        summaries = client.list_pipeline_executions(pipelineName="app")[
            "pipelineExecutionSummaries"
        ]
        newest = summaries[0]
        return newest["pipelineExecutionId"] if newest["executionType"] == "ROLLBACK" else None

    rollback = wait_for(rollback_started, WAIT, "the automatic rollback")
    assert wait_status(client, "app", rollback, "Succeeded", "Failed", timeout=WAIT) == (
        "Succeeded"
    )
    execution = client.get_pipeline_execution(pipelineName="app", pipelineExecutionId=rollback)[
        "pipelineExecution"
    ]
    assert execution["trigger"]["triggerType"] == "AutomatedRollback"
    assert execution["rollbackMetadata"] == {"rollbackTargetPipelineExecutionId": first}
    assert log.read_text().splitlines() == ["good-1", "bad", "good-1"]
    assert (
        len(client.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"]) == 3
    )


def test_a_stage_that_rolls_back_on_failure_does_nothing_before_its_first_success(
    client: Any, repo: Path, tmp_path: Path
) -> None:
    commit(repo, {"version.txt": "bad\n"}, "a broken commit")
    deploy = stage("Deploy", commands("Ship", "grep -q good version.txt"))
    deploy["onFailure"] = {"result": "ROLLBACK"}
    client.create_pipeline(pipeline=declaration("app", repo, deploy))
    first = latest_execution_id(client, "app")
    assert wait_status(client, "app", first, "Succeeded", "Failed", timeout=WAIT) == "Failed"
    summaries = client.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"]
    assert [s["pipelineExecutionId"] for s in summaries] == [first]


def test_rollback_refuses_a_skipped_stage_a_second_rollback_parallel_mode_and_v1(
    client: Any, repo: Path
) -> None:
    def refused(pipeline: str, stage_name: str, target: str) -> tuple[str, str]:
        with pytest.raises(ClientError) as excinfo:
            client.rollback_stage(
                pipelineName=pipeline, stageName=stage_name, targetPipelineExecutionId=target
            )
        return code(excinfo), excinfo.value.response["Error"]["Message"]

    check = {
        "name": "Open",
        "ruleTypeId": {
            "category": "Rule",
            "owner": "AWS",
            "provider": "VariableCheck",
            "version": "1",
        },
        "configuration": {"Variable": "#{variables.gate}", "Value": "open", "Operator": "EQ"},
    }
    deploy = stage("Deploy", commands("Ship", "true"))
    deploy["beforeEntry"] = {"conditions": [{"result": "SKIP", "rules": [check]}]}
    gate = [{"name": "gate", "defaultValue": "open"}]
    client.create_pipeline(pipeline=declaration("app", repo, deploy, variables=gate))
    parallel = stage("Deploy", commands("Ship", "true"))
    client.create_pipeline(pipeline=declaration("par", repo, parallel, executionMode="PARALLEL"))
    held = stage("Gate", approval())
    client.create_pipeline(pipeline=declaration("old", repo, held, pipelineType="V1"))
    first = latest_execution_id(client, "app")
    in_parallel = latest_execution_id(client, "par")
    assert wait_status(client, "app", first, "Succeeded", "Failed", timeout=WAIT) == "Succeeded"
    skipped = client.start_pipeline_execution(
        name="app", variables=[{"name": "gate", "value": "closed"}]
    )["pipelineExecutionId"]
    assert wait_status(client, "app", skipped, "Succeeded", "Failed", timeout=WAIT) == "Succeeded"
    assert stage_state(client, "app", "Deploy")["latestExecution"]["status"] == "Skipped"
    error, message = refused("app", "Deploy", skipped)
    assert error == "UnableToRollbackStageException"
    assert "Skipped" in message
    with pytest.raises(ClientError) as excinfo:
        client.retry_stage_execution(
            pipelineName="app",
            stageName="Deploy",
            pipelineExecutionId=skipped,
            retryMode="FAILED_ACTIONS",
        )
    assert code(excinfo) == "StageNotRetryableException"

    assert wait_status(client, "par", in_parallel, "Succeeded", "Failed", timeout=WAIT) == (
        "Succeeded"
    )
    error, message = refused("par", "Deploy", in_parallel)
    assert (error, "PARALLEL" in message) == ("UnableToRollbackStageException", True)
    error, message = refused("old", "Gate", latest_execution_id(client, "old"))
    assert (error, "V2" in message) == ("UnableToRollbackStageException", True)

    # A rollback waits in front of the stage while its way in is closed: a second is refused.
    client.disable_stage_transition(
        pipelineName="app", stageName="Deploy", transitionType="Inbound", reason="hold"
    )
    waiting = client.rollback_stage(
        pipelineName="app", stageName="Deploy", targetPipelineExecutionId=first
    )["pipelineExecutionId"]
    assert execution_status(client, "app", waiting) == "InProgress"
    assert refused("app", "Deploy", first)[0] == "ConflictException"
