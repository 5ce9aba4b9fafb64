"""The work a job hands its worker: stored as CodePipeline's JobData plus Conveyor's own
member, read back as the same typed value."""

from __future__ import annotations

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.work import ArtifactRef, EnvironmentVariable, OutputRef, Work

WORK = Work(
    type_id=ActionTypeId("Build", "AWS", "Commands", "1"),
    configuration={"Key": "value"},
    pipeline_name="p",
    pipeline_arn="arn:aws:codepipeline:us-east-1:123456789012:p",
    pipeline_execution_id="e1",
    stage="Build",
    action="Make",
    action_execution_id="a1",
    input_artifacts=(ArtifactRef("Src", "b", "k1", "abc"), ArtifactRef("Other", "b", "k2")),
    output_artifacts=(OutputRef("Out", "b", "k3", ("dist/**",)),),
    artifact_credentials={"accessKeyId": "x", "secretAccessKey": "y", "sessionToken": "z"},
    commands=("make",),
    output_variables=("VERSION",),
    environment_variables=(EnvironmentVariable("A", "1", "PLAINTEXT"),),
    source_revision="abc",
    source_variables={"PR": "7"},
    deadline=100.0,
    region="us-east-1",
)


def test_work_reads_back_as_it_was_stored() -> None:
    assert Work.of(WORK.data()) == WORK


def test_the_job_data_a_worker_sees_is_codepipelines_shape_without_conveyors_own() -> None:
    data = WORK.job_data()
    assert "conveyor" not in data
    assert data["inputArtifacts"][0] == {
        "name": "Src",
        "revision": "abc",
        "location": {"type": "S3", "s3Location": {"bucketName": "b", "objectKey": "k1"}},
    }
    assert "revision" not in data["inputArtifacts"][1]
    assert data["pipelineContext"]["action"] == {"name": "Make", "actionExecutionId": "a1"}
    assert data["actionTypeId"]["provider"] == "Commands"


def test_a_continuation_token_and_unknown_own_members_survive() -> None:
    data = WORK.data()
    data["continuationToken"] = "t"
    data["conveyor"]["sealed"] = ["Key"]
    work = Work.of(data)
    assert work.continuation_token == "t"
    assert work.extra == {"sealed": ["Key"]}
    assert work.data()["conveyor"]["sealed"] == ["Key"]
