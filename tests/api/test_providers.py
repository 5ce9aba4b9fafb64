"""The AWS source and deploy providers inside real pipelines, through boto3."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from conveyor.server import Running
from tests.support.declarations import ROLE
from tests.support.engine import (
    action_state,
    commands,
    latest_execution_id,
    make_repo,
    stage,
    wait_status,
)


def source(provider: str, configuration: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "Source",
        "actionTypeId": {
            "category": "Source",
            "owner": "AWS",
            "provider": provider,
            "version": "1",
        },
        "configuration": configuration,
        "outputArtifacts": [{"name": "Src"}],
        "namespace": "SRC",
    }


def deploy(bucket: str, **extra: str) -> dict[str, Any]:
    return {
        "name": "Publish",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"BucketName": bucket, **extra},
        "inputArtifacts": [{"name": "Site"}],
    }


def pipeline(name: str, first: dict[str, Any], *stages: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "stages": [{"name": "Source", "actions": [first]}, *stages],
    }


def build_site(*lines: str) -> dict[str, Any]:
    return commands("Site", *lines, outputArtifacts=[{"name": "Site", "files": ["site/**/*"]}])


def run(client: Any, declaration: dict[str, Any]) -> str:
    client.create_pipeline(pipeline=declaration)
    return wait_status(
        client,
        declaration["name"],
        latest_execution_id(client, declaration["name"]),
        "Succeeded",
        "Failed",
    )


def test_codecommit_source_to_an_s3_deploy(client: Any, server: Running) -> None:
    home = server.application.engine.settings.home
    make_repo(home / "repositories" / "website", {"index.html": "<h1>hello</h1>\n"})
    declaration = pipeline(
        "site",
        source("CodeCommit", {"RepositoryName": "website", "BranchName": "main"}),
        stage(
            "Build",
            build_site(
                "mkdir -p site",
                "cp index.html site/",
                "echo '#{SRC.RepositoryName}' > site/repo.txt",
            ),
        ),
        stage("Deploy", deploy("public-site", Extract="true", ObjectKey="www")),
    )
    assert run(client, declaration) == "Succeeded"
    published = home / "buckets" / "public-site" / "www" / "site"
    assert (published / "index.html").read_text() == "<h1>hello</h1>\n"
    assert (published / "repo.txt").read_text() == "website\n"
    assert "Deployed" in action_state(client, "site", "Deploy", "Publish")["summary"]


def test_connection_source_and_a_single_object_deploy(
    client: Any, server: Running, tmp_path: Path
) -> None:
    home = server.application.engine.settings.home
    make_repo(home / "repositories" / "acme" / "api", {"main.py": "print('api')\n"})
    connection = "arn:aws:codestar-connections:us-east-1:000000000000:connection/abc"
    declaration = pipeline(
        "api",
        source(
            "CodeStarSourceConnection",
            {"ConnectionArn": connection, "FullRepositoryId": "acme/api", "BranchName": "main"},
        ),
        stage("Build", build_site("mkdir -p site", "cp main.py site/")),
        stage("Deploy", deploy("releases", Extract="false", ObjectKey="api.zip")),
    )
    assert run(client, declaration) == "Succeeded"
    stored = home / "buckets" / "releases" / "api.zip"
    with zipfile.ZipFile(stored) as archive:
        assert archive.read("site/main.py") == b"print('api')\n"
    details = client.list_action_executions(pipelineName="api")["actionExecutionDetails"]
    variables = next(d for d in details if d["actionName"] == "Source")["output"]["outputVariables"]
    assert variables["FullRepositoryName"] == "acme/api"
    assert variables["ConnectionArn"] == connection


def test_s3_source_gives_etag_and_a_hostile_zip_fails_cleanly(client: Any, server: Running) -> None:
    home = server.application.engine.settings.home
    bucket = home / "buckets" / "drops"
    bucket.mkdir(parents=True)
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("app.txt", "ready\n")
    (bucket / "app.zip").write_bytes(good.getvalue())
    declaration = pipeline(
        "drop",
        source("S3", {"S3Bucket": "drops", "S3ObjectKey": "app.zip"}),
        stage(
            "Build",
            commands(
                "Check", "grep ready app.txt", "export TAG=#{SRC.ETag}", outputVariables=["TAG"]
            ),
        ),
    )
    assert run(client, declaration) == "Succeeded"
    details = client.list_action_executions(pipelineName="drop")["actionExecutionDetails"]
    check = next(d for d in details if d["actionName"] == "Check")
    assert len(check["output"]["outputVariables"]["TAG"]) == 32

    hostile = io.BytesIO()
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("../escaped.txt", "gotcha\n")
    (bucket / "hostile.zip").write_bytes(hostile.getvalue())
    declaration = pipeline(
        "hostile",
        source("S3", {"S3Bucket": "drops", "S3ObjectKey": "hostile.zip"}),
        stage("Build", commands("Unpack", "true")),
    )
    assert run(client, declaration) == "Failed"
    assert not (home / "work" / "escaped.txt").exists()
    assert not any(home.rglob("escaped.txt"))
    failed = [
        action_state(client, "hostile", stage_name, action)
        for stage_name, action in (("Source", "Source"), ("Build", "Unpack"))
    ]
    message = next(s["errorDetails"]["message"] for s in failed if s.get("status") == "Failed")
    assert "escaped.txt" in message
