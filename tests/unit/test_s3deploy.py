"""The S3 deploy provider writing into folder buckets: extracted files, one object, bad zips."""

from __future__ import annotations

import io
import os
import stat
import threading
import zipfile
from pathlib import Path

import pytest

from conveyor.actions.base import (
    ArtifactLocation,
    FailureType,
    JobContext,
    JobResult,
    ProviderConfig,
)
from conveyor.actions.s3deploy import S3Deploy
from conveyor.artifacts.archive import pack
from conveyor.artifacts.local import LocalBuckets


def _context(tmp_path: Path, configuration: dict[str, str]) -> JobContext:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    return JobContext(
        job_id="job-1",
        pipeline_name="pipe",
        pipeline_execution_id="exec-1",
        stage_name="Deploy",
        action_name="Site",
        action_execution_id="act-1",
        configuration=configuration,
        input_artifacts=(ArtifactLocation("BuildOutput", "artifacts", "pipe/Build.zip"),),
        output_artifacts=(),
        artifacts=LocalBuckets(tmp_path / "buckets"),
        workspace=workspace,
        log=io.StringIO(),
        cancelled=threading.Event(),
    )


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    """A build output with a page, an executable, a nested asset, a link and an empty folder."""
    site = tmp_path / "site"
    (site / "assets").mkdir(parents=True)
    (site / "empty").mkdir()
    (site / "index.html").write_text("<h1>hi</h1>\n")
    (site / "run.sh").write_text("#!/bin/sh\n")
    (site / "run.sh").chmod(0o755)
    (site / "assets" / "app.js").write_text("go()\n")
    (site / "latest.js").symlink_to("assets/app.js")
    archive = tmp_path / "build.zip"
    pack(site, archive)
    LocalBuckets(tmp_path / "buckets").put("artifacts", "pipe/Build.zip", archive)
    return archive


def _run(tmp_path: Path, configuration: dict[str, str], limit: int | None = None) -> JobResult:
    config = ProviderConfig(home=tmp_path, max_artifact_bytes=limit)
    return S3Deploy(config).run(_context(tmp_path, configuration))


def test_extract_writes_each_file_under_the_prefix_with_its_mode(
    tmp_path: Path, artifact: Path
) -> None:
    result = _run(tmp_path, {"BucketName": "web", "Extract": "true", "ObjectKey": "/v1/"})
    assert result.succeeded, result.message
    assert result.summary == "Deployed 4 files to s3://web/v1"
    bucket = tmp_path / "buckets" / "web"
    assert LocalBuckets(tmp_path / "buckets").list("web") == [
        "v1/assets/app.js",
        "v1/index.html",
        "v1/latest.js",
        "v1/run.sh",
    ]
    assert (bucket / "v1" / "index.html").read_text() == "<h1>hi</h1>\n"
    assert stat.S_IMODE((bucket / "v1" / "run.sh").stat().st_mode) == 0o755
    latest = bucket / "v1" / "latest.js"
    assert not latest.is_symlink() and latest.read_text() == "go()\n"


def test_extract_without_object_key_writes_at_the_bucket_root(
    tmp_path: Path, artifact: Path
) -> None:
    result = _run(tmp_path, {"BucketName": "web", "Extract": "TRUE", "CacheControl": "max-age=60"})
    assert result.succeeded, result.message
    assert result.summary == "Deployed 4 files to s3://web/"
    assert (tmp_path / "buckets" / "web" / "assets" / "app.js").read_text() == "go()\n"


def test_without_extract_the_zip_is_one_object(tmp_path: Path, artifact: Path) -> None:
    configuration = {"BucketName": "web", "Extract": "false", "ObjectKey": "releases/site.zip"}
    result = _run(tmp_path, {**configuration, "CannedACL": "public-read"})
    assert result.succeeded, result.message
    assert result.summary == "Deployed 1 file to s3://web/releases/site.zip"
    stored = tmp_path / "buckets" / "web" / "releases" / "site.zip"
    assert stored.read_bytes() == artifact.read_bytes()


def _hostile(tmp_path: Path, entries: dict[str, str]) -> None:
    archive = tmp_path / "hostile.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for name, text in entries.items():
            out.writestr(name, text)
    LocalBuckets(tmp_path / "buckets").put("artifacts", "pipe/Build.zip", archive)


def test_a_hostile_zip_fails_before_anything_is_written(tmp_path: Path) -> None:
    _hostile(tmp_path, {"ok.txt": "fine", "../../escaped.txt": "evil"})
    result = _run(tmp_path, {"BucketName": "web", "Extract": "true"})
    assert (result.succeeded, result.failure_type) == (False, FailureType.JOB_FAILED)
    assert result.message is not None and "leaves the destination" in result.message
    assert not (tmp_path / "buckets" / "web").exists()
    assert not any(p.name == "escaped.txt" for p in tmp_path.rglob("*"))


def test_a_zip_bigger_than_allowed_fails(tmp_path: Path) -> None:
    _hostile(tmp_path, {"big.bin": "0" * 10_000})
    result = _run(tmp_path, {"BucketName": "web", "Extract": "true"}, limit=1000)
    assert not result.succeeded and result.message is not None
    assert "over 1000 bytes" in result.message
    assert not (tmp_path / "buckets" / "web").exists()


def test_a_cancelled_deploy_stops(tmp_path: Path, artifact: Path) -> None:
    context = _context(tmp_path, {"BucketName": "web", "Extract": "true"})
    context.cancelled.set()
    result = S3Deploy(ProviderConfig(home=tmp_path)).run(context)
    assert not result.succeeded and result.message == "Stopped after deploying 0 of 4 files"


@pytest.mark.parametrize(
    "configuration",
    [
        {"Extract": "true"},
        {"BucketName": "web"},
        {"BucketName": "web", "Extract": "maybe"},
        {"BucketName": "web", "Extract": "false"},
        {"BucketName": "web", "Extract": "true", "CannedACL": "everyone"},
    ],
)
def test_bad_configuration(tmp_path: Path, artifact: Path, configuration: dict[str, str]) -> None:
    result = _run(tmp_path, configuration)
    assert (result.succeeded, result.failure_type) == (False, FailureType.CONFIGURATION_ERROR)
    assert not os.path.exists(tmp_path / "buckets" / "web")
