"""The artifact endpoint (/_conveyor/s3) with per-job artifactCredentials: an AWS-style custom
job worker fetches and stores its artifacts with boto3 as on AWS, within its own job only."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

from conveyor.config import Settings
from conveyor.server import Running, running
from tests.conftest import make_client
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

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live(settings: Settings) -> Iterator[Running]:
    with running(replace(settings, job_lease_seconds=60)) as server:
        yield server


def custom_type(client: Any, provider: str) -> dict[str, str]:
    client.create_custom_action_type(
        category="Deploy",
        provider=provider,
        version="1",
        inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
    )
    return {"category": "Deploy", "owner": "Custom", "provider": provider, "version": "1"}


def pipeline(client: Any, repo: Path, name: str, provider: str, *after: dict[str, Any]) -> str:
    deploy = {
        "name": "Deploy",
        "actionTypeId": custom_type(client, provider),
        "inputArtifacts": [{"name": "Src"}],
        "outputArtifacts": [{"name": "Deployed"}],
    }
    client.create_pipeline(pipeline=declaration(name, repo, stage("Deploy", deploy), *after))
    return str(wait_for(lambda: latest_execution_id(client, name), what="an execution"))


def s3_for(endpoint: str, credentials: dict[str, str], **config: Any) -> Any:
    return boto3.session.Session(
        aws_access_key_id=credentials["accessKeyId"],
        aws_secret_access_key=credentials["secretAccessKey"],
        aws_session_token=credentials["sessionToken"],
    ).client(
        "s3",
        endpoint_url=f"{endpoint}/_conveyor/s3",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, **config),
    )


def poll_one(client: Any, provider: str) -> dict[str, Any]:
    type_id = {"category": "Deploy", "owner": "Custom", "provider": provider, "version": "1"}
    [job] = wait_for(
        lambda: client.poll_for_jobs(actionTypeId=type_id, maxBatchSize=1)["jobs"], what="a job"
    )
    found: dict[str, Any] = job
    return found


def where(artifact: dict[str, Any]) -> tuple[str, str]:
    s3 = artifact["location"]["s3Location"]
    return s3["bucketName"], s3["objectKey"]


def error_code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def test_an_aws_style_job_worker_runs_unchanged(live: Running, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"README.md": "hello from git"})
    client = make_client(live.endpoint)
    check = commands(
        "Check", 'grep -q "deployed: hello from git" deployed.txt', inputs=("Deployed",)
    )
    execution_id = pipeline(client, repo, "aws-style", "Sample", stage("Check", check))
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONVEYOR_"))},
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "AWS_ENDPOINT_URL_CODEPIPELINE": live.endpoint,
        "AWS_ENDPOINT_URL_S3": f"{live.endpoint}/_conveyor/s3",
        "AWS_ACCESS_KEY_ID": "worker",
        "AWS_SECRET_ACCESS_KEY": "worker-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.awsworker", "Deploy/Sample/1"],
        env=environment,
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert wait_status(client, "aws-style", execution_id, "Succeeded", "Failed") == "Succeeded"
    state = action_state(client, "aws-style", "Deploy", "Deploy")
    assert state["summary"] == "deployed by an AWS-style worker"


def test_a_job_credentials_reach_its_own_objects_only(live: Running, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    client = make_client(live.endpoint)
    pipeline(client, repo, "first", "One")
    pipeline(client, repo, "second", "Two")
    one, two = poll_one(client, "One"), poll_one(client, "Two")
    mine = s3_for(live.endpoint, one["data"]["artifactCredentials"])
    theirs = s3_for(live.endpoint, two["data"]["artifactCredentials"])
    in_bucket, in_key = where(one["data"]["inputArtifacts"][0])
    out_bucket, out_key = where(one["data"]["outputArtifacts"][0])
    # Its input, read; its output, written, read back, listed, deleted.
    assert mine.get_object(Bucket=in_bucket, Key=in_key)["Body"].read()[:2] == b"PK"
    mine.put_object(Bucket=out_bucket, Key=out_key, Body=b"made")
    assert mine.get_object(Bucket=out_bucket, Key=out_key)["Body"].read() == b"made"
    listed = mine.list_objects_v2(Bucket=out_bucket, Prefix=out_key.split("/")[0])
    assert [o["Key"] for o in listed["Contents"]] == sorted([in_key, out_key])
    # Another job's credentials: AccessDenied, for reading and for writing.
    with pytest.raises(ClientError) as caught:
        theirs.get_object(Bucket=in_bucket, Key=in_key)
    assert error_code(caught) == "AccessDenied"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as caught:
        theirs.put_object(Bucket=out_bucket, Key=out_key, Body=b"forged")
    assert error_code(caught) == "AccessDenied"
    seen = [o["Key"] for o in theirs.list_objects_v2(Bucket=out_bucket).get("Contents", [])]
    assert in_key not in seen and out_key not in seen
    # Its own input is not its to write.
    with pytest.raises(ClientError) as caught:
        mine.put_object(Bucket=in_bucket, Key=in_key, Body=b"changed")
    assert error_code(caught) == "AccessDenied"
    mine.delete_object(Bucket=out_bucket, Key=out_key)
    with pytest.raises(ClientError) as caught:
        mine.head_object(Bucket=out_bucket, Key=out_key)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_credentials_end_with_their_job(live: Running, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    client = make_client(live.endpoint)
    pipeline(client, repo, "ends", "Ends")
    job = poll_one(client, "Ends")
    s3 = s3_for(live.endpoint, job["data"]["artifactCredentials"])
    bucket, key = where(job["data"]["inputArtifacts"][0])
    s3.head_object(Bucket=bucket, Key=key)
    client.put_job_failure_result(
        jobId=job["id"], failureDetails={"type": "JobFailed", "message": "done with it"}
    )
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key=key)
    assert error_code(caught) == "ExpiredToken"


def test_requests_without_a_job_signature_are_refused(live: Running, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    client = make_client(live.endpoint)
    pipeline(client, repo, "forged", "Forged")
    job = poll_one(client, "Forged")
    credentials = job["data"]["artifactCredentials"]
    bucket, key = where(job["data"]["inputArtifacts"][0])
    wrong_secret = {**credentials, "secretAccessKey": "x" * 40}
    with pytest.raises(ClientError) as caught:
        s3_for(live.endpoint, wrong_secret).get_object(Bucket=bucket, Key=key)
    assert error_code(caught) == "SignatureDoesNotMatch"
    token = credentials["sessionToken"]
    altered = {
        **credentials,
        "sessionToken": token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB"),
    }
    with pytest.raises(ClientError) as caught:
        s3_for(live.endpoint, altered).get_object(Bucket=bucket, Key=key)
    assert error_code(caught) == "InvalidToken"
    plain = boto3.client(
        "s3",
        endpoint_url=f"{live.endpoint}/_conveyor/s3",
        region_name="us-east-1",
        aws_access_key_id=credentials["accessKeyId"],
        aws_secret_access_key=credentials["secretAccessKey"],
    )
    with pytest.raises(ClientError) as caught:
        plain.get_object(Bucket=bucket, Key=key)
    assert error_code(caught) == "InvalidAccessKeyId"


def test_a_large_artifact_goes_up_and_down_in_parts(live: Running, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    client = make_client(live.endpoint)
    pipeline(client, repo, "large", "Large")
    job = poll_one(client, "Large")
    s3 = s3_for(live.endpoint, job["data"]["artifactCredentials"])
    bucket, key = where(job["data"]["outputArtifacts"][0])
    large = tmp_path / "large.bin"
    with open(large, "wb") as out:
        for _ in range(100):
            out.write(os.urandom(1024 * 1024))
    s3.upload_file(str(large), bucket, key)
    stored = live.application.engine.settings.home / "buckets" / bucket / key
    assert stored.stat().st_size == 100 * 1024 * 1024
    assert _digest(stored) == _digest(large)
    back = tmp_path / "back.bin"
    s3.download_file(bucket, key, str(back))
    assert _digest(back) == _digest(large)
    # Nothing of the upload is left behind.
    uploads = live.application.engine.settings.home / "uploads"
    assert not [p for p in uploads.rglob("*") if p.is_file()]


def test_a_part_that_does_not_match_its_checksum_is_refused(live: Running, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    client = make_client(live.endpoint)
    pipeline(client, repo, "bad", "Bad")
    job = poll_one(client, "Bad")
    s3 = s3_for(live.endpoint, job["data"]["artifactCredentials"])
    bucket, key = where(job["data"]["outputArtifacts"][0])
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    with pytest.raises(ClientError) as caught:
        s3.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload,
            PartNumber=1,
            Body=b"abc",
            ChecksumCRC32="AAAAAA==",
        )
    assert error_code(caught) == "BadDigest"
    with pytest.raises(ClientError) as caught:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}]},
        )
    assert error_code(caught) == "InvalidPart"
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
    with pytest.raises(ClientError) as caught:
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"abc")
    assert error_code(caught) == "NoSuchUpload"


def _digest(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def chunked_put(url: str, credentials: dict[str, str], data: bytes, checksum: str | None) -> Any:
    """A PutObject with an aws-chunked body and its CRC32 in the trailer, encoded and signed
    by botocore as it sends one over https."""
    request = AWSRequest(
        method="PUT",
        url=url,
        headers={
            "Content-Encoding": "aws-chunked",
            "X-Amz-Trailer": "x-amz-checksum-crc32",
            "X-Amz-Decoded-Content-Length": str(len(data)),
        },
    )
    request.context["checksum"] = {
        "request_algorithm": {
            "in": "trailer",
            "algorithm": "crc32",
            "name": "x-amz-checksum-crc32",
        }
    }
    frozen = Credentials(
        credentials["accessKeyId"], credentials["secretAccessKey"], credentials["sessionToken"]
    )
    S3SigV4Auth(frozen, "s3", "us-east-1").add_auth(request)
    body = AwsChunkedWrapper(io.BytesIO(data), Crc32Checksum, "x-amz-checksum-crc32").read()
    if checksum is not None:
        body = (
            body.rsplit(b"x-amz-checksum-crc32:", 1)[0]
            + f"x-amz-checksum-crc32:{checksum}\r\n\r\n".encode()
        )
    sent = urllib.request.Request(url, body, dict(request.headers.items()), method="PUT")
    try:
        with urllib.request.urlopen(sent, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def test_an_aws_chunked_body_is_taken_with_its_trailing_checksum(
    live: Running, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    client = make_client(live.endpoint)
    pipeline(client, repo, "chunked", "Chunked")
    job = poll_one(client, "Chunked")
    credentials = job["data"]["artifactCredentials"]
    bucket, key = where(job["data"]["outputArtifacts"][0])
    url = f"{live.endpoint}/_conveyor/s3/{bucket}/{quote(key)}"
    data = os.urandom(2 * 1024 * 1024 + 77)
    status, body = chunked_put(url, credentials, data, None)
    assert status == 200, body
    stored = live.application.engine.settings.home / "buckets" / bucket / key
    assert stored.read_bytes() == data
    status, body = chunked_put(url, credentials, b"other bytes", "AAAAAA==")
    assert status == 400
    assert b"<Code>BadDigest</Code>" in body
    assert stored.read_bytes() == data


def test_an_upload_left_unfinished_for_days_is_removed(live: Running, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    client = make_client(live.endpoint)
    pipeline(client, repo, "stale", "Stale")
    job = poll_one(client, "Stale")
    s3 = s3_for(live.endpoint, job["data"]["artifactCredentials"])
    bucket, key = where(job["data"]["outputArtifacts"][0])
    old = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=old, PartNumber=1, Body=b"part")
    folder = live.application.engine.settings.home / "uploads" / old
    nine_days_ago = time.time() - 9 * 24 * 3600
    os.utime(folder, (nine_days_ago, nine_days_ago))
    fresh = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    assert not folder.exists()
    assert (folder.parent / fresh).is_dir()
