"""The work a job hands its worker, as a typed value.

A job's stored data is CodePipeline's JobData (what a job worker gets from PollForJobs and
GetJobDetails) plus a ``conveyor`` member with what Conveyor's own providers need beyond it
(commands, output files, the source revision to fetch, the deadline, ...), which the job API
never shows. `Work` is that data as one value: the engine builds a `Work` and stores
`Work.data()`; a worker reads it back with `Work.of`, never by poking at the dictionary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.domain.actiontype import ActionTypeId

OWN = "conveyor"


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    name: str
    bucket: str
    key: str
    revision: str | None = None


@dataclass(frozen=True, slots=True)
class OutputRef:
    name: str
    bucket: str
    key: str
    # The files (globs) the action declared for the artifact, for providers that pick them.
    files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EnvironmentVariable:
    name: str
    value: str
    type: str = "PLAINTEXT"


@dataclass(frozen=True, slots=True)
class Work:
    type_id: ActionTypeId
    # Configuration with every #{namespace.variable} already resolved.
    configuration: Mapping[str, str]
    pipeline_name: str
    pipeline_arn: str
    pipeline_execution_id: str
    stage: str
    action: str
    action_execution_id: str
    input_artifacts: tuple[ArtifactRef, ...] = ()
    output_artifacts: tuple[OutputRef, ...] = ()
    artifact_credentials: Mapping[str, str] = field(default_factory=dict)
    continuation_token: str | None = None
    # Conveyor's own, beyond CodePipeline's JobData.
    commands: tuple[str, ...] = ()
    output_variables: tuple[str, ...] = ()
    environment_variables: tuple[EnvironmentVariable, ...] = ()
    source_revision: str | None = None
    source_variables: Mapping[str, str] = field(default_factory=dict)
    deadline: float | None = None
    region: str | None = None
    # Whatever else the stored ``conveyor`` member holds (the names of sealed values).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def job_data(self) -> dict[str, Any]:
        """CodePipeline's JobData: what a job worker sees."""
        data: dict[str, Any] = {
            "actionTypeId": {
                "category": self.type_id.category,
                "owner": self.type_id.owner,
                "provider": self.type_id.provider,
                "version": self.type_id.version,
            },
            "actionConfiguration": {"configuration": dict(self.configuration)},
            "pipelineContext": {
                "pipelineName": self.pipeline_name,
                "stage": {"name": self.stage},
                "action": {"name": self.action, "actionExecutionId": self.action_execution_id},
                "pipelineArn": self.pipeline_arn,
                "pipelineExecutionId": self.pipeline_execution_id,
            },
            "inputArtifacts": [_input(a) for a in self.input_artifacts],
            "outputArtifacts": [
                {"name": o.name, "location": _location(o.bucket, o.key)}
                for o in self.output_artifacts
            ],
            "artifactCredentials": dict(self.artifact_credentials),
        }
        if self.continuation_token is not None:
            data["continuationToken"] = self.continuation_token
        return data

    def data(self) -> dict[str, Any]:
        """The stored form: the JobData with Conveyor's own member."""
        data = self.job_data()
        data[OWN] = {
            "commands": list(self.commands),
            "outputVariables": list(self.output_variables),
            "environmentVariables": [
                {"name": v.name, "value": v.value, "type": v.type}
                for v in self.environment_variables
            ],
            "outputFiles": {o.name: list(o.files) for o in self.output_artifacts},
            "sourceRevision": self.source_revision,
            "sourceVariables": dict(self.source_variables),
            "deadline": self.deadline,
            "region": self.region,
            **self.extra,
        }
        return data

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Work:
        """The work stored as ``data`` (`data`'s output, or a job worker's JobData)."""
        own = dict(data.get(OWN) or {})
        context = data["pipelineContext"]
        type_shape = data["actionTypeId"]
        files = own.pop("outputFiles", None) or {}
        inputs = []
        for artifact in data.get("inputArtifacts") or ():
            bucket, key = _bucket_key(artifact)
            inputs.append(ArtifactRef(artifact["name"], bucket, key, artifact.get("revision")))
        outputs = []
        for artifact in data.get("outputArtifacts") or ():
            bucket, key = _bucket_key(artifact)
            outputs.append(
                OutputRef(artifact["name"], bucket, key, tuple(files.get(artifact["name"], ())))
            )
        environment = tuple(
            EnvironmentVariable(v["name"], v["value"], v.get("type") or "PLAINTEXT")
            for v in own.pop("environmentVariables", None) or ()
        )
        return cls(
            type_id=ActionTypeId(
                type_shape["category"],
                type_shape["owner"],
                type_shape["provider"],
                type_shape["version"],
            ),
            configuration=dict(data["actionConfiguration"]["configuration"]),
            pipeline_name=context["pipelineName"],
            pipeline_arn=context.get("pipelineArn", ""),
            pipeline_execution_id=context["pipelineExecutionId"],
            stage=context["stage"]["name"],
            action=context["action"]["name"],
            action_execution_id=context["action"]["actionExecutionId"],
            input_artifacts=tuple(inputs),
            output_artifacts=tuple(outputs),
            artifact_credentials=dict(data.get("artifactCredentials") or {}),
            continuation_token=data.get("continuationToken"),
            commands=tuple(own.pop("commands", None) or ()),
            output_variables=tuple(own.pop("outputVariables", None) or ()),
            environment_variables=environment,
            source_revision=own.pop("sourceRevision", None),
            source_variables=dict(own.pop("sourceVariables", None) or {}),
            deadline=own.pop("deadline", None),
            region=own.pop("region", None),
            extra=own,
        )


def _location(bucket: str, key: str) -> dict[str, Any]:
    return {"type": "S3", "s3Location": {"bucketName": bucket, "objectKey": key}}


def _input(artifact: ArtifactRef) -> dict[str, Any]:
    shaped: dict[str, Any] = {"name": artifact.name}
    if artifact.revision:
        shaped["revision"] = artifact.revision
    shaped["location"] = _location(artifact.bucket, artifact.key)
    return shaped


def _bucket_key(artifact: Mapping[str, Any]) -> tuple[str, str]:
    s3 = artifact["location"]["s3Location"]
    return s3["bucketName"], s3["objectKey"]
