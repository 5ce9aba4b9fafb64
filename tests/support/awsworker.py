"""A custom job worker written as AWS's samples write one, for Conveyor to serve unchanged.

It polls CodePipeline for one job of the type given, acknowledges it, fetches the input
artifact with ``s3.download_file`` using the job's ``artifactCredentials``, adds a file to
the zip and stores it as the output artifact with ``s3.upload_file``, then reports success.
Nothing here knows it talks to Conveyor: endpoints and the worker's own key come from the
environment (``AWS_ENDPOINT_URL_CODEPIPELINE``, ``AWS_ENDPOINT_URL_S3``,
``AWS_ACCESS_KEY_ID``...), as for any boto3 program. With ``--pad N`` the output also holds N
MiB of random bytes, so that ``upload_file`` goes multipart.

Run: ``python -m tests.support.awsworker Category/Provider/Version [--pad N]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import zipfile
from typing import Any

import boto3
from botocore.client import Config


def setup_s3_client(job_data: dict[str, Any]) -> Any:
    credentials = job_data["artifactCredentials"]
    session = boto3.session.Session(
        aws_access_key_id=credentials["accessKeyId"],
        aws_secret_access_key=credentials["secretAccessKey"],
        aws_session_token=credentials["sessionToken"],
    )
    return session.client("s3", config=Config(signature_version="s3v4"))


def location(artifact: dict[str, Any]) -> tuple[str, str]:
    s3 = artifact["location"]["s3Location"]
    return s3["bucketName"], s3["objectKey"]


def main(type_text: str, pad_mib: int) -> None:
    category, provider, version = type_text.split("/")
    codepipeline = boto3.client("codepipeline")
    type_id = {"category": category, "owner": "Custom", "provider": provider, "version": version}
    deadline = time.monotonic() + 120
    while True:
        jobs = codepipeline.poll_for_jobs(actionTypeId=type_id, maxBatchSize=1)["jobs"]
        if jobs:
            break
        if time.monotonic() > deadline:
            sys.exit("no job came")
        time.sleep(0.2)
    job = jobs[0]
    codepipeline.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    data = job["data"]
    s3 = setup_s3_client(data)
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, "input.zip")
        bucket, key = location(data["inputArtifacts"][0])
        s3.download_file(bucket, key, source)
        with zipfile.ZipFile(source) as archive:
            readme = archive.read("README.md").decode()
        output = os.path.join(folder, "output.zip")
        with zipfile.ZipFile(output, "w") as archive:
            archive.writestr("deployed.txt", f"deployed: {readme}")
            if pad_mib:
                archive.writestr("pad.bin", os.urandom(pad_mib * 1024 * 1024))
        bucket, key = location(data["outputArtifacts"][0])
        s3.upload_file(output, bucket, key)
    codepipeline.put_job_success_result(
        jobId=job["id"], executionDetails={"summary": "deployed by an AWS-style worker"}
    )
    print(job["id"])


if __name__ == "__main__":
    pad = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--pad" else 0
    main(sys.argv[1], pad)
