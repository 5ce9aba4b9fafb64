"""Change detection of S3 sources against moto's S3 server: a new object starts one execution."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from conveyor.config import Settings
from tests.api.test_detection import (
    declaration,
    detecting,
    detection_of,
    executions,
    settle,
    wait_count,
)
from tests.support.engine import wait_for
from tests.unit.test_s3_buckets import endpoint

__all__ = ["endpoint"]


def s3_action(bucket: str, key: str, **config: str) -> dict[str, Any]:
    return {
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"S3Bucket": bucket, "S3ObjectKey": key, **config},
        "outputArtifacts": [{"name": "Src"}],
        "namespace": "SRC",
    }


def a_zip(text: str) -> bytes:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("app.txt", text)
    return data.getvalue()


def test_new_object_starts_one_execution(
    settings: Settings, tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    bucket = f"src-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket="artifacts")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="app.zip", Body=a_zip("one"))
    s3.put_object(Bucket=bucket, Key="quiet.zip", Body=a_zip("one"))
    with detecting(settings, s3_endpoint=endpoint) as (_, client, detector):
        app = declaration("app", s3_action(bucket, "app.zip"))
        app["stages"][1]["actions"][0]["commands"] = ["echo #{SRC.ETag} && cat app.txt"]
        client.create_pipeline(pipeline=app)
        client.create_pipeline(
            pipeline=declaration(
                "quiet", s3_action(bucket, "quiet.zip", PollForSourceChanges="false")
            )
        )
        wait_count(client, "app", 1)
        wait_count(client, "quiet", 1)
        # A first look that succeeded: the object as it is now is the one already run.
        settle(detector)
        assert detection_of(client, "app") == {}
        version = s3.put_object(Bucket=bucket, Key="app.zip", Body=a_zip("two"))["VersionId"]
        s3.put_object(Bucket=bucket, Key="quiet.zip", Body=a_zip("two"))
        found = wait_count(client, "app", 2)
        assert found[0]["trigger"]["triggerType"] == "PollForSourceChanges"
        assert version in found[0]["trigger"]["triggerDetail"]
        execution = found[0]["pipelineExecutionId"]
        ended = wait_for(
            lambda: (
                (
                    got := client.get_pipeline_execution(
                        pipelineName="app", pipelineExecutionId=execution
                    )["pipelineExecution"]
                )["status"]
                not in ("InProgress", "Stopping")
                and got
            ),
            60,
            "the detected execution",
        )
        assert ended["status"] == "Succeeded", ended.get("statusSummary")
        revisions = client.get_pipeline_execution(
            pipelineName="app", pipelineExecutionId=execution
        )["pipelineExecution"]["artifactRevisions"]
        assert revisions[0]["revisionId"] == version
        polls = detector.counters.s3_polls
        wait_for(lambda: detector.counters.s3_polls > polls + 2, 60, "more looks")
        assert len(executions(client, "app")) == 2
        assert len(executions(client, "quiet")) == 1
