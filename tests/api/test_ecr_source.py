"""Source/ECR in real pipelines, with moto's server as the ECR endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_client
from tests.support.engine import (
    action_state,
    commands,
    latest_execution_id,
    stage,
    wait_status,
)
from tests.support.moto import aws_client, moto_server, server_calling

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7023,
            "digest": "sha256:" + "b" * 64,
        },
        "layers": [],
    }
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def client(tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with server_calling(tmp_path, monkeypatch, aws_endpoints={"ecr": endpoint}) as live:
        yield make_client(live.endpoint)


def _pipeline(name: str, repository: str, *stages: dict[str, Any]) -> dict[str, Any]:
    source = {
        "name": "Image",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "ECR", "version": "1"},
        "configuration": {"RepositoryName": repository, "ImageTag": "release"},
        "outputArtifacts": [{"name": "Src"}],
        "namespace": "IMG",
    }
    return {
        "name": name,
        "roleArn": "arn:aws:iam::000000000000:role/conveyor",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "stages": [{"name": "Source", "actions": [source]}, *stages],
    }


def test_an_ecr_source_emits_the_image_detail_and_its_variables(client: Any, endpoint: str) -> None:
    ecr = aws_client("ecr", endpoint)
    ecr.create_repository(repositoryName="web")
    pushed = ecr.put_image(repositoryName="web", imageManifest=MANIFEST, imageTag="release")
    digest = pushed["image"]["imageId"]["imageDigest"]
    check = commands(
        "Check",
        'test "$(python3 -c \'import json; print(json.load(open("imageDetail.json"))["ImageDigest"])\')" = "#{IMG.ImageDigest}"',
        'case "#{IMG.ImageURI}" in */web@sha256:*) ;; *) exit 1;; esac',
        'test "#{IMG.ImageTag}" = release',
    )
    client.create_pipeline(pipeline=_pipeline("images", "web", stage("Check", check)))
    status = wait_status(
        client, "images", latest_execution_id(client, "images"), "Succeeded", "Failed"
    )
    assert status == "Succeeded", action_state(client, "images", "Check", "Check")
    state = action_state(client, "images", "Source", "Image")
    assert state["externalExecutionId"] == digest


def test_a_missing_image_is_an_unavailable_revision(client: Any, endpoint: str) -> None:
    aws_client("ecr", endpoint).create_repository(repositoryName="empty")
    check = commands("Check", "true")
    client.create_pipeline(pipeline=_pipeline("none", "empty", stage("Check", check)))
    status = wait_status(client, "none", latest_execution_id(client, "none"), "Succeeded", "Failed")
    assert status == "Failed"
    state = action_state(client, "none", "Source", "Image")
    assert state["errorDetails"]["code"] == "RevisionUnavailable"
    assert "release of empty" in state["errorDetails"]["message"]
