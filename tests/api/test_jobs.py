"""Custom actions run by job workers over the API, leases, and timeouts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conveyor.server import Running
from tests.support.engine import (
    action_state,
    approval,
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
    wait_status,
)
from tests.support.errors import code

CUSTOM = {"category": "Deploy", "owner": "Custom", "provider": "Rollout", "version": "1"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    make_repo(path)
    return path


def custom_pipeline(client: Any, repo: Path, *after: dict[str, Any]) -> None:
    client.create_custom_action_type(
        category="Deploy",
        provider="Rollout",
        version="1",
        configurationProperties=[
            {
                "name": "Environment",
                "required": True,
                "key": True,
                "secret": False,
                "queryable": True,
            },
            {"name": "Password", "required": False, "key": False, "secret": True},
        ],
        inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
    )
    deploy = {
        "name": "Rollout",
        "actionTypeId": CUSTOM,
        "configuration": {"Environment": "prod", "Password": "s3cret"},
        "inputArtifacts": [{"name": "Src"}],
        "namespace": "DEPLOY",
    }
    client.create_pipeline(pipeline=declaration("app", repo, stage("Deploy", deploy), *after))


def poll(client: Any, **extra: Any) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = client.poll_for_jobs(actionTypeId=CUSTOM, maxBatchSize=5, **extra)[
        "jobs"
    ]
    return jobs


def test_a_job_worker_runs_a_custom_action(client: Any, repo: Path) -> None:
    custom_pipeline(
        client, repo, stage("After", commands("Use", "test '#{DEPLOY.url}' = https://prod"))
    )
    execution_id = latest_execution_id(client, "app")
    jobs = wait_for(lambda: poll(client), what="a job")
    [job] = jobs
    data = job["data"]
    assert data["actionConfiguration"]["configuration"] == {
        "Environment": "prod",
        "Password": "s3cret",
    }
    assert data["pipelineContext"]["pipelineExecutionId"] == execution_id
    assert data["inputArtifacts"][0]["location"]["s3Location"]["bucketName"] == "artifacts"
    assert "conveyor" not in data
    assert job["accountId"] == "000000000000"
    assert poll(client) == []
    with pytest.raises(ClientError) as excinfo:
        client.acknowledge_job(jobId=job["id"], nonce="wrong")
    assert code(excinfo) == "InvalidNonceException"
    assert client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
    assert client.get_job_details(jobId=job["id"])["jobDetails"]["id"] == job["id"]
    client.put_job_success_result(
        jobId=job["id"],
        executionDetails={
            "summary": "rolled out",
            "externalExecutionId": "deploy-42",
            "percentComplete": 100,
        },
        outputVariables={"url": "https://prod"},
    )
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    state = action_state(client, "app", "Deploy", "Rollout")
    assert (state["summary"], state["externalExecutionId"]) == ("rolled out", "deploy-42")
    with pytest.raises(ClientError) as excinfo:
        client.put_job_success_result(jobId=job["id"])
    assert code(excinfo) == "InvalidJobStateException"


def test_continuation_tokens_keep_the_action_running(client: Any, repo: Path) -> None:
    custom_pipeline(client, repo)
    execution_id = latest_execution_id(client, "app")
    [first] = wait_for(lambda: poll(client), what="a job")
    client.acknowledge_job(jobId=first["id"], nonce=first["nonce"])
    client.put_job_success_result(
        jobId=first["id"],
        continuationToken="step-2",
        executionDetails={"summary": "half way", "percentComplete": 50},
    )
    [second] = wait_for(lambda: poll(client), what="the continuation job")
    assert second["data"]["continuationToken"] == "step-2"
    assert action_state(client, "app", "Deploy", "Rollout")["status"] == "InProgress"
    client.put_job_success_result(jobId=second["id"])
    assert wait_status(client, "app", execution_id, "Succeeded") == "Succeeded"


def test_job_failure_fails_the_action(client: Any, repo: Path) -> None:
    custom_pipeline(client, repo)
    execution_id = latest_execution_id(client, "app")
    [job] = wait_for(lambda: poll(client), what="a job")
    client.put_job_failure_result(
        jobId=job["id"],
        failureDetails={
            "type": "JobFailed",
            "message": "the rollout broke",
            "externalExecutionId": "d-1",
        },
    )
    assert wait_status(client, "app", execution_id, "Failed") == "Failed"
    state = action_state(client, "app", "Deploy", "Rollout")
    assert state["errorDetails"] == {"code": "JobFailed", "message": "the rollout broke"}


def test_job_errors(client: Any, repo: Path) -> None:
    custom_pipeline(client, repo)
    missing = "00000000-0000-0000-0000-000000000000"
    for call in (
        lambda: client.acknowledge_job(jobId=missing, nonce="1"),
        lambda: client.get_job_details(jobId=missing),
        lambda: client.put_job_success_result(jobId=missing),
        lambda: client.put_job_failure_result(
            jobId=missing, failureDetails={"type": "JobFailed", "message": "x"}
        ),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert code(excinfo) == "JobNotFoundException"
    for type_id in (
        {**CUSTOM, "provider": "Nope"},
        {**CUSTOM, "owner": "AWS", "provider": "CodeBuild", "category": "Build"},
    ):
        with pytest.raises(ClientError) as excinfo:
            client.poll_for_jobs(actionTypeId=type_id)
        assert code(excinfo) == "ActionTypeNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        client.poll_for_jobs(actionTypeId=CUSTOM, queryParam={"Password": "x"})
    assert code(excinfo) == "ValidationException"
    [job] = wait_for(lambda: poll(client), what="a job")
    with pytest.raises(ClientError) as excinfo:
        client.put_job_success_result(
            jobId=job["id"], continuationToken="t", outputVariables={"a": "b"}
        )
    assert code(excinfo) == "ValidationException"


def test_poll_query_param_matches_the_queryable_property(client: Any, repo: Path) -> None:
    custom_pipeline(client, repo)
    wait_for(lambda: action_state(client, "app", "Deploy", "Rollout").get("status") == "InProgress")
    assert poll(client, queryParam={"Environment": "staging"}) == []
    assert len(poll(client, queryParam={"Environment": "prod"})) == 1


def test_an_expired_lease_fails_the_action(server: Running, client: Any, repo: Path) -> None:
    custom_pipeline(client, repo)
    execution_id = latest_execution_id(client, "app")
    services = server.application.services
    wait_for(lambda: action_state(client, "app", "Deploy", "Rollout").get("status") == "InProgress")
    types = [next(iter(services.action_types.all("Custom"))).id]
    [job] = services.jobs.poll(types, owner="elsewhere/test")
    with services.store.write() as tx:
        tx.jobs.update(job.id, None, lease_until=time.time() - 1)
    services.sweeper.sweep()
    assert wait_status(client, "app", execution_id, "Failed") == "Failed"
    message = action_state(client, "app", "Deploy", "Rollout")["errorDetails"]["message"]
    assert "lease" in message
    assert services.jobs.get(job.id).status == "TimedOut"


def test_an_approval_times_out(server: Running, client: Any, repo: Path) -> None:
    gate = approval()
    gate["timeoutInMinutes"] = 5
    client.create_pipeline(pipeline=declaration("app", repo, stage("Gate", gate)))
    execution_id = latest_execution_id(client, "app")
    waiting = wait_for(
        lambda: (
            action_state(client, "app", "Gate", "Approve").get("token")
            and action_state(client, "app", "Gate", "Approve")
        )
    )
    services = server.application.services
    with services.store.read() as tx:
        attempt = tx.actions.get(waiting["actionExecutionId"])
    assert attempt is not None
    assert attempt.deadline is not None
    assert attempt.deadline - attempt.started == pytest.approx(300, abs=1)
    with services.store.write() as tx:
        tx.actions.update(attempt.id, None, deadline=time.time() - 1)
    services.sweeper.sweep()
    assert wait_status(client, "app", execution_id, "Failed") == "Failed"
    assert action_state(client, "app", "Gate", "Approve")["errorDetails"]["message"] == (
        "The approval request timed out after 5 minutes."
    )


def test_job_operations_do_not_serve_built_in_jobs(
    server: Running, client: Any, repo: Path, tmp_path: Path
) -> None:
    """A Commands job belongs to the server's own workers: a job worker who learns its id can
    neither read it nor end the running action with a forged result."""
    release = tmp_path / "release"
    wait = f"while [ ! -e {release} ]; do sleep 0.05; done; exit 3"
    client.create_pipeline(pipeline=declaration("app", repo, stage("Build", commands("Run", wait))))
    execution_id = latest_execution_id(client, "app")
    state = wait_for(
        lambda: (
            (s := action_state(client, "app", "Build", "Run")).get("status") == "InProgress" and s
        ),
        what="the action to run",
    )
    with server.application.store.read() as tx:
        [job] = tx.jobs.active_for(state["actionExecutionId"])
    for call in (
        lambda: client.get_job_details(jobId=job.id),
        lambda: client.acknowledge_job(jobId=job.id, nonce=job.nonce),
        lambda: client.put_job_success_result(jobId=job.id),
        lambda: client.put_job_failure_result(
            jobId=job.id, failureDetails={"type": "JobFailed", "message": "forged"}
        ),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert code(excinfo) == "JobNotFoundException"
    assert action_state(client, "app", "Build", "Run")["status"] == "InProgress"
    release.touch()
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Failed"
    assert "forged" not in str(action_state(client, "app", "Build", "Run"))


def test_after_a_failed_sweep_an_expired_lease_is_spared_for_a_while(
    server: Running, client: Any, repo: Path
) -> None:
    """Workers could not renew their leases while the sweeper could not reach the database:
    the pass after it spares them, so a result held through an outage is still taken."""
    custom_pipeline(client, repo)
    services = server.application.services
    wait_for(lambda: action_state(client, "app", "Deploy", "Rollout").get("status") == "InProgress")
    types = [next(iter(services.action_types.all("Custom"))).id]
    [job] = services.jobs.poll(types, owner="elsewhere/test")
    services.sweeper.failed()  # before the lease ends: the server's own passes spare it too
    with services.store.write() as tx:
        tx.jobs.update(job.id, None, lease_until=time.time() - 1)
    services.sweeper.sweep()
    assert services.jobs.get(job.id).status == "Dispatched"
    services.jobs.succeed(job.id, summary="held through the outage")
    assert action_state(client, "app", "Deploy", "Rollout")["status"] == "Succeeded"
