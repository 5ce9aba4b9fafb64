"""What GetPipelineState shows as AWS does: a custom type's URL templates rendered with the
action's values, and a source action's commit as its external execution id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.test_tags import create_custom_type
from tests.support.engine import (
    action_state,
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
    wait_status,
)

JENKINS = {"category": "Build", "owner": "Custom", "provider": "Jenkins", "version": "1"}
BASE = "https://ci.example.com/job/{Config:Job}"


def _state(client: Any, stage_name: str, action: str) -> dict[str, Any]:
    for stage_state in client.get_pipeline_state(name="ci")["stageStates"]:
        for found in stage_state["actionStates"]:
            if (stage_state["stageName"], found["actionName"]) == (stage_name, action):
                return dict(found)
    raise AssertionError(f"no action {stage_name}/{action}")


def test_entity_and_execution_urls_follow_the_type_templates(client: Any, tmp_path: Path) -> None:
    create_custom_type(
        client,
        settings={
            "entityUrlTemplate": BASE,
            "executionUrlTemplate": BASE + "/{ExternalExecutionId}/",
        },
        configurationProperties=[
            {"name": "Job", "required": True, "key": True, "secret": False},
            {"name": "Token", "required": False, "key": False, "secret": True},
        ],
    )
    repo = tmp_path / "app"
    commit_id = make_repo(repo)
    build = {
        "name": "Build",
        "actionTypeId": JENKINS,
        "configuration": {"Job": "web app", "Token": "s3cret"},
        "inputArtifacts": [{"name": "Src"}],
    }
    client.create_pipeline(pipeline=declaration("ci", repo, stage("Build", build)))
    [job] = wait_for(
        lambda: client.poll_for_jobs(actionTypeId=JENKINS)["jobs"], what="a Jenkins job"
    )
    client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    client.put_job_success_result(
        jobId=job["id"], executionDetails={"summary": "built", "externalExecutionId": "42"}
    )
    assert wait_status(client, "ci", latest_execution_id(client, "ci"), "Succeeded") == (
        "Succeeded"
    )
    built = _state(client, "Build", "Build")
    assert built["entityUrl"] == "https://ci.example.com/job/web%20app"
    assert built["latestExecution"]["externalExecutionUrl"] == (
        "https://ci.example.com/job/web%20app/42/"
    )
    source = action_state(client, "ci", "Source", "Source")
    assert source["externalExecutionId"] == commit_id
    assert "entityUrl" not in _state(client, "Source", "Source")


def test_a_custom_source_revision_url_follows_the_type_template(client: Any) -> None:
    vault = {"category": "Source", "owner": "Custom", "provider": "Vault", "version": "1"}
    client.create_custom_action_type(
        category="Source",
        provider="Vault",
        version="1",
        settings={"revisionUrlTemplate": "https://vault.example.com/{Config:Path}@{RevisionId}"},
        configurationProperties=[{"name": "Path", "required": True, "key": True, "secret": False}],
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
        outputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
    )
    source = {
        "name": "Source",
        "actionTypeId": vault,
        "configuration": {"Path": "app/config"},
        "outputArtifacts": [{"name": "Src"}],
    }
    vault_pipeline = {
        "name": "vault",
        "roleArn": "arn:aws:iam::000000000000:role/conveyor",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            {"name": "Source", "actions": [source]},
            {"name": "Use", "actions": [commands("Use", "true")]},
        ],
    }
    client.create_pipeline(pipeline=vault_pipeline)
    [job] = wait_for(lambda: client.poll_for_jobs(actionTypeId=vault)["jobs"], what="a job")
    client.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    location = job["data"]["outputArtifacts"][0]["location"]["s3Location"]
    assert location["bucketName"] == "artifacts"
    client.put_job_success_result(
        jobId=job["id"],
        currentRevision={"revision": "v7", "changeIdentifier": "v7"},
        executionDetails={"summary": "read v7"},
    )
    execution_id = latest_execution_id(client, "vault")
    wait_status(client, "vault", execution_id, "Succeeded", "Failed")
    execution = client.get_pipeline_execution(
        pipelineName="vault", pipelineExecutionId=execution_id
    )["pipelineExecution"]
    [revision] = execution["artifactRevisions"]
    assert revision["revisionUrl"] == "https://vault.example.com/app%2Fconfig@v7"
