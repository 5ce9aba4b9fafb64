"""Job workers with `auth: required`: each is restricted to the action types its policies
name, and a job it has taken answers to it alone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conveyor.config import Settings
from conveyor.server import Running, running
from tests.support.auth import allow, make_user, signed_client
from tests.support.engine import declaration, make_repo, stage, wait_for

ROLLOUT = {"category": "Deploy", "owner": "Custom", "provider": "Rollout", "version": "1"}
OTHER = {"category": "Deploy", "owner": "Custom", "provider": "Other", "version": "1"}
ROLLOUT_ARN = "arn:aws:codepipeline:us-east-1:000000000000:actiontype:Custom/Deploy/Rollout/1"
WORKER = [
    "codepipeline:PollForJobs",
    "codepipeline:AcknowledgeJob",
    "codepipeline:GetJobDetails",
    "codepipeline:PutJobSuccessResult",
    "codepipeline:PutJobFailureResult",
]


@pytest.fixture
def secured(settings: Settings) -> Iterator[Running]:
    with running(replace(settings, auth="required")) as live:
        yield live


def code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    value: str = excinfo.value.response["Error"]["Code"]
    return value


def rollout_pipeline(admin: Any, repo: Path) -> None:
    for type_id in (ROLLOUT, OTHER):
        admin.create_custom_action_type(
            category=type_id["category"],
            provider=type_id["provider"],
            version="1",
            inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
            outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
        )
    deploy = {"name": "Rollout", "actionTypeId": ROLLOUT, "inputArtifacts": [{"name": "Src"}]}
    admin.create_pipeline(pipeline=declaration("app", repo, stage("Deploy", deploy)))


def test_job_workers_are_restricted_to_their_action_type(secured: Running, tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    admin = signed_client(
        secured, make_user(secured, "admin", managed=["AWSCodePipeline_FullAccess"])
    )
    rollout_pipeline(admin, tmp_path / "repo")
    worker = signed_client(
        secured, make_user(secured, "worker", policies=[allow(*WORKER, resource=ROLLOUT_ARN)])
    )
    other = signed_client(
        secured, make_user(secured, "other", policies=[allow(*WORKER, resource=[ROLLOUT_ARN])])
    )
    outsider = signed_client(
        secured,
        make_user(
            secured,
            "outsider",
            policies=[allow(*WORKER, resource=ROLLOUT_ARN.replace("Rollout", "Other"))],
        ),
    )
    with pytest.raises(ClientError) as excinfo:
        worker.poll_for_jobs(actionTypeId=OTHER)
    assert code(excinfo) == "AccessDeniedException"
    assert f"on resource: {ROLLOUT_ARN.replace('Rollout', 'Other')}" in str(excinfo.value)
    [job] = wait_for(lambda: worker.poll_for_jobs(actionTypeId=ROLLOUT)["jobs"], what="a job")
    # A worker allowed on another type is refused this one's job outright.
    with pytest.raises(ClientError) as excinfo:
        outsider.get_job_details(jobId=job["id"])
    assert code(excinfo) == "AccessDeniedException"
    # A worker of the same type who learns the id and nonce cannot take or end the job.
    for call in (
        lambda: other.acknowledge_job(jobId=job["id"], nonce=job["nonce"]),
        lambda: other.put_job_failure_result(
            jobId=job["id"], failureDetails={"type": "JobFailed", "message": "forged"}
        ),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert code(excinfo) == "JobNotFoundException"
    assert worker.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
    assert worker.get_job_details(jobId=job["id"])["jobDetails"]["id"] == job["id"]
    worker.put_job_success_result(jobId=job["id"])
