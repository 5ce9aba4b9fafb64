"""S3Buckets against moto's S3 server, and the S3 source and deploy over a real S3 API."""

from __future__ import annotations

import hashlib
import io
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from conveyor.actions.base import (
    ArtifactLocation,
    JobContext,
    JobResult,
    OutputArtifact,
    ProviderConfig,
)
from conveyor.actions.s3deploy import S3Deploy
from conveyor.actions.sources import S3Source
from conveyor.artifacts import ArtifactError, ArtifactStore
from conveyor.artifacts.s3 import S3Buckets
from conveyor.worker.artifactaccess import KnownObjects
from conveyor.worker.sent import Sent
from tests.support.moto import moto_server


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto S3 server on a free port of 127.0.0.1, for this module's tests."""
    with moto_server() as url:
        yield url


@pytest.fixture
def store(endpoint: str) -> S3Buckets:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return S3Buckets(endpoint, "us-east-1", session=session)


def _bucket() -> str:
    return f"b-{uuid.uuid4().hex[:12]}"


def _file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _versioned(store: S3Buckets) -> str:
    bucket = _bucket()
    client: Any = store.client
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def test_put_get_exists_stat_and_list_round_trip(store: S3Buckets, tmp_path: Path) -> None:
    bucket, as_protocol = _bucket(), store  # a missing bucket is made on the first put
    checked: ArtifactStore = as_protocol
    checked.put(bucket, "pipe/exec-1/Source.zip", _file(tmp_path / "a.zip", b"zip bytes"))
    checked.put(bucket, "pipe/exec-2/Source.zip", _file(tmp_path / "b.zip", b"more"))
    assert checked.exists(bucket, "pipe/exec-1/Source.zip")
    checked.get(bucket, "pipe/exec-1/Source.zip", tmp_path / "copy.zip")
    assert (tmp_path / "copy.zip").read_bytes() == b"zip bytes"
    info = checked.stat(bucket, "pipe/exec-1/Source.zip")
    assert info is not None
    assert (info.size, info.etag, info.version_id) == (
        9,
        hashlib.md5(b"zip bytes").hexdigest(),
        None,
    )
    assert abs(info.last_modified - time.time()) < 60
    assert checked.list(bucket, "pipe/") == ["pipe/exec-1/Source.zip", "pipe/exec-2/Source.zip"]
    assert checked.list(bucket, "pipe/exec-2") == ["pipe/exec-2/Source.zip"]


def test_missing_objects_and_buckets(store: S3Buckets, tmp_path: Path) -> None:
    bucket = _bucket()
    assert store.stat(bucket, "k") is None
    assert not store.exists(bucket, "k")
    assert store.list(bucket) == []
    with pytest.raises(ArtifactError, match=f"No object k in bucket {bucket}"):
        store.get(bucket, "k", tmp_path / "x")


def test_a_versioned_bucket_gives_version_ids(store: S3Buckets, tmp_path: Path) -> None:
    bucket = _versioned(store)
    store.put(bucket, "app.zip", _file(tmp_path / "one", b"one"))
    first = store.stat(bucket, "app.zip")
    store.put(bucket, "app.zip", _file(tmp_path / "two", b"two"))
    second = store.stat(bucket, "app.zip")
    assert first is not None and second is not None
    assert first.version_id and second.version_id and first.version_id != second.version_id
    store.get(bucket, "app.zip", tmp_path / "old", version_id=first.version_id)
    assert (tmp_path / "old").read_bytes() == b"one"
    assert store.stat(bucket, "app.zip", version_id=first.version_id) == first
    assert store.stat(bucket, "app.zip", version_id="no-such-version") is None


def _context(
    tmp_path: Path, store: ArtifactStore, configuration: dict[str, str], **extra: object
) -> JobContext:
    workspace = tmp_path / f"workspace-{uuid.uuid4().hex[:6]}"
    workspace.mkdir()
    fields: dict[str, Any] = {"input_artifacts": (), "output_artifacts": (), **extra}
    return JobContext(
        job_id="job-1",
        pipeline_name="pipe",
        pipeline_execution_id="exec-1",
        stage_name="Source",
        action_name="Fetch",
        action_execution_id="act-1",
        configuration=configuration,
        artifacts=store,
        workspace=workspace,
        log=io.StringIO(),
        cancelled=threading.Event(),
        **fields,
    )


def _zip(path: Path, text: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("index.html", text)
    return path


def test_s3_source_on_a_versioned_bucket(store: S3Buckets, tmp_path: Path) -> None:
    bucket, artifacts = _versioned(store), _bucket()
    store.put(bucket, "drop/app.zip", _zip(tmp_path / "one.zip", "v1"))
    first = store.stat(bucket, "drop/app.zip")
    store.put(bucket, "drop/app.zip", _zip(tmp_path / "two.zip", "v2"))
    second = store.stat(bucket, "drop/app.zip")
    assert first is not None and second is not None
    output = (OutputArtifact("Source", artifacts, "pipe/Source.zip"),)
    configuration = {"S3Bucket": bucket, "S3ObjectKey": "drop/app.zip"}

    def run(**extra: object) -> JobResult:
        context = _context(tmp_path, store, configuration, output_artifacts=output, **extra)
        result = S3Source(ProviderConfig(home=tmp_path)).run(context)
        assert result.succeeded, result.message
        return result

    latest = run()
    assert latest.output_variables == {"ETag": second.etag, "VersionId": second.version_id}
    assert latest.revision is not None and latest.revision.revision_id == second.version_id
    older = run(source_revision=first.version_id)
    assert older.output_variables["VersionId"] == first.version_id
    store.get(artifacts, "pipe/Source.zip", tmp_path / "emitted.zip")
    with zipfile.ZipFile(tmp_path / "emitted.zip") as emitted:
        assert emitted.read("index.html") == b"v1"


def test_s3_deploy_sets_content_type_and_cache_control(store: S3Buckets, tmp_path: Path) -> None:
    artifacts, site = _bucket(), _bucket()
    store.put(artifacts, "pipe/Build.zip", _zip(tmp_path / "build.zip", "<h1>hi</h1>"))
    configuration = {
        "BucketName": site,
        "Extract": "true",
        "ObjectKey": "www",
        "CacheControl": "max-age=60",
        "CannedACL": "public-read",
    }
    inputs = (ArtifactLocation("Build", artifacts, "pipe/Build.zip"),)
    context = _context(tmp_path, store, configuration, input_artifacts=inputs)
    result = S3Deploy(ProviderConfig(home=tmp_path)).run(context)
    assert result.succeeded, result.message
    assert result.summary == f"Deployed 1 file to s3://{site}/www"
    head = store.client.head_object(Bucket=site, Key="www/index.html")
    assert (head["ContentType"], head["CacheControl"]) == ("text/html", "max-age=60")


def _calls(store: S3Buckets) -> list[tuple[str, threading.Thread]]:
    """The S3 operations the store's client calls from now on, with the thread of each."""
    seen: list[tuple[str, threading.Thread]] = []

    def record(model: Any, **_: Any) -> None:
        seen.append((model.name, threading.current_thread()))

    store.client.meta.events.register("before-call.s3", record)
    return seen


def test_a_small_object_goes_in_one_request_each_way(store: S3Buckets, tmp_path: Path) -> None:
    bucket = _bucket()
    store.client.create_bucket(Bucket=bucket)
    calls, here = _calls(store), threading.current_thread()
    store.put(bucket, "pipe/Src.zip", _file(tmp_path / "a.zip", b"zip bytes"))
    store.get(bucket, "pipe/Src.zip", tmp_path / "copy.zip", size=9)
    assert calls == [("PutObject", here), ("GetObject", here)]
    assert (tmp_path / "copy.zip").read_bytes() == b"zip bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "copy.zip"]
    with pytest.raises(ArtifactError, match=f"No object gone.zip in bucket {bucket}"):
        store.get(bucket, "gone.zip", tmp_path / "gone.zip", size=9)
    assert not (tmp_path / "gone.zip").exists()


def test_a_large_object_or_one_of_unknown_size_goes_through_managed_transfers(
    store: S3Buckets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("conveyor.artifacts.s3.ONE_REQUEST", 4)
    bucket = _bucket()
    store.client.create_bucket(Bucket=bucket)
    calls = _calls(store)
    store.put(bucket, "big.zip", _file(tmp_path / "big.zip", b"12345"))
    store.get(bucket, "big.zip", tmp_path / "back.zip", size=5)
    store.get(bucket, "big.zip", tmp_path / "again.zip")
    managed = ["PutObject", "HeadObject", "GetObject", "HeadObject", "GetObject"]
    assert [name for name, _ in calls] == managed
    assert calls[0][1] is not threading.current_thread()  # a transfer's thread
    assert (tmp_path / "back.zip").read_bytes() == (tmp_path / "again.zip").read_bytes() == b"12345"


def test_a_worker_fetches_an_input_whose_size_the_server_said_in_one_request(
    store: S3Buckets, tmp_path: Path
) -> None:
    bucket = _bucket()
    store.put(bucket, "pipe/Src.zip", _file(tmp_path / "src.zip", b"zip bytes"))
    said = store.stat(bucket, "pipe/Src.zip")
    known = KnownObjects(store, lambda b, k: said if (b, k) == (bucket, "pipe/Src.zip") else None)
    store.put(bucket, "pipe/Other.zip", _file(tmp_path / "other.zip", b"other"))
    calls = _calls(store)
    known.get(bucket, "pipe/Src.zip", tmp_path / "one.zip")
    assert [name for name, _ in calls] == ["GetObject"]
    known.get(bucket, "pipe/Other.zip", tmp_path / "two.zip")  # the server said nothing of it
    assert [name for name, _ in calls] == ["GetObject", "HeadObject", "GetObject"]
    assert (tmp_path / "one.zip").read_bytes() == b"zip bytes"
    assert (tmp_path / "two.zip").read_bytes() == b"other"


def test_a_worker_fetches_back_nothing_it_sent(store: S3Buckets, tmp_path: Path) -> None:
    bucket = _bucket()
    store.client.create_bucket(Bucket=bucket)
    known = KnownObjects(store, store.stat, Sent(tmp_path / "sent"))
    known.put(bucket, "pipe/Src.zip", _file(tmp_path / "src.zip", b"zip bytes"))
    calls = _calls(store)
    known.get(bucket, "pipe/Src.zip", tmp_path / "back.zip")
    assert [name for name, _ in calls] == ["HeadObject"]  # what the server says of it, alone
    assert (tmp_path / "back.zip").read_bytes() == b"zip bytes"
    # Stored since by another: fetched.
    store.client.put_object(Bucket=bucket, Key="pipe/Src.zip", Body=b"zip BYTES")
    known.get(bucket, "pipe/Src.zip", tmp_path / "again.zip")
    assert [name for name, _ in calls] == ["HeadObject", "PutObject", "HeadObject", "GetObject"]
    assert (tmp_path / "again.zip").read_bytes() == b"zip BYTES"
