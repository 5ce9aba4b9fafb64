"""Remote workers: what an action costs when `conveyor worker` runs it, against in-process workers.

Two servers on SQLite run the same pipeline (a Git source, then `STEPS` Commands actions
running ``true`` one after the other): one with its 4 in-process workers (the floor), one with
none and a `conveyor worker --concurrency 4` in another process claiming over HTTP. The figure
is the median execution time over `ROUNDS` executions, per action, and what the remote worker
adds per action (aim: at most 2 ms more). Then the artifact round trip of 1 MiB and 100 MiB:
put and got back through the server's S3 endpoint with a job's artifactCredentials, as an
AWS-style job worker does, against the same copy on local disk.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _shapes import commands, git_source
from api import HOST, client, endpoint, free_port, subprocess_server
from server import make_repo

STEPS = 10
ROUNDS = 7
AIM_MS = 2.0
PIPELINE = "remote-bench"
ROLE = "arn:aws:iam::000000000000:role/conveyor-bench"
SIZES = (1024 * 1024, 100 * 1024 * 1024)
TRIPS = 3


def declaration(repo: Path) -> dict[str, Any]:
    steps = [commands(f"Step{i}", "true", run_order=i + 1) for i in range(STEPS)]
    return {
        "name": PIPELINE,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [git_source(str(repo))]},
            {"name": "Steps", "actions": steps},
        ],
    }


def _healthy(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{endpoint(port)}/health", timeout=2):
            return True
    except OSError:
        return False


@contextmanager
def server(home: Path, settings: str) -> Iterator[int]:
    home.mkdir(parents=True)
    (home / "settings.yaml").write_text("detect_changes: false\n" + settings)
    port = free_port()
    args = [sys.executable, "-m", "conveyor", "server", "--host", HOST, "--port", str(port)]
    with subprocess_server(
        "conveyor", [*args, "--home", str(home)], port, home.parent / f"{home.name}.log", _healthy
    ) as ready:
        yield ready


@contextmanager
def worker(url: str, home: Path) -> Iterator[None]:
    args = [sys.executable, "-m", "conveyor", "worker", "--endpoint", url, "--home", str(home)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "AWS_"))}
    with open(home.parent / "worker.log", "wb") as log:
        process = subprocess.Popen(
            [*args, "--concurrency", "4"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)


def per_action_ms(url: str, repo: Path) -> float:
    """The median time of an execution over `ROUNDS`, per action, in milliseconds."""
    pipelines = client("codepipeline", url)
    pipelines.create_pipeline(pipeline=declaration(repo))
    time.sleep(0.2)
    summaries = pipelines.list_pipeline_executions(pipelineName=PIPELINE)
    # The execution the creation started warms up; it is not measured.
    finish(pipelines, summaries["pipelineExecutionSummaries"][0]["pipelineExecutionId"])
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        finish(pipelines, pipelines.start_pipeline_execution(name=PIPELINE)["pipelineExecutionId"])
        times.append((time.perf_counter() - started) * 1000 / (STEPS + 1))
    return statistics.median(times)


def finish(pipelines: Any, execution: str) -> None:
    """Wait for the execution to end; it must succeed."""
    while True:
        state = pipelines.get_pipeline_execution(
            pipelineName=PIPELINE, pipelineExecutionId=execution
        )["pipelineExecution"]["status"]
        if state not in ("InProgress", "Stopping"):
            break
        time.sleep(0.005)
    if state != "Succeeded":
        raise RuntimeError(f"the execution ended {state}")


def job_s3(url: str, repo: Path) -> tuple[Any, str, str]:
    """A job's S3 client and output object, as an AWS-style custom job worker has them: a
    custom action's job polled with PollForJobs, its artifactCredentials, its location."""
    import boto3

    pipelines = client("codepipeline", url)
    type_id = {"category": "Deploy", "owner": "Custom", "provider": "Bench", "version": "1"}
    pipelines.create_custom_action_type(
        category="Deploy",
        provider="Bench",
        version="1",
        inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
    )
    deploy = {
        "name": "Deploy",
        "actionTypeId": type_id,
        "inputArtifacts": [{"name": "Src"}],
        "outputArtifacts": [{"name": "Out"}],
    }
    shape = declaration(repo)
    shape["name"] = "artifact-bench"
    shape["stages"][1] = {"name": "Deploy", "actions": [deploy]}
    pipelines.create_pipeline(pipeline=shape)
    while not (jobs := pipelines.poll_for_jobs(actionTypeId=type_id)["jobs"]):
        time.sleep(0.05)
    data = jobs[0]["data"]
    credentials = data["artifactCredentials"]
    s3 = boto3.session.Session(
        aws_access_key_id=credentials["accessKeyId"],
        aws_secret_access_key=credentials["secretAccessKey"],
        aws_session_token=credentials["sessionToken"],
    ).client("s3", endpoint_url=f"{url}/_conveyor/s3", region_name="us-east-1")
    where = data["outputArtifacts"][0]["location"]["s3Location"]
    return s3, where["bucketName"], where["objectKey"]


def round_trips(url: str, folder: Path, repo: Path) -> None:
    """Each size put and got back with boto3's managed transfers (multipart and ranged
    above 8 MiB) and the job's credentials; the floor is the same write and read back as a
    copy on local disk."""
    s3, bucket, key = job_s3(url, repo)
    for size in SIZES:
        source = folder / f"in-{size}"
        with open(source, "wb") as out:
            for _ in range(size // (1024 * 1024)):
                out.write(os.urandom(1024 * 1024))
        floors, trips = [], []
        for _ in range(TRIPS):
            started = time.perf_counter()
            copy = folder / f"copy-{size}"
            copy.write_bytes(source.read_bytes())
            copy.with_name(f"back-{size}").write_bytes(copy.read_bytes())
            floors.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            s3.upload_file(str(source), bucket, key)
            s3.download_file(bucket, key, str(folder / f"out-{size}"))
            trips.append((time.perf_counter() - started) * 1000)
        took, floor = statistics.median(trips), statistics.median(floors)
        print(
            f"artifact {size // 1024 // 1024} MiB round trip: {took:.1f} ms through the S3"
            f" endpoint, {floor:.1f} ms copying on local disk (floor), median of {TRIPS}"
        )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-remote-") as tmp:
        root = Path(tmp)
        repo = root / "repo"
        make_repo(repo)
        with server(root / "local", "") as port:
            floor = per_action_ms(endpoint(port), repo)
        settings = "workers: 0\nremote_workers: true\n"
        with server(root / "remote", settings) as port, worker(endpoint(port), root / "worker"):
            remote = per_action_ms(endpoint(port), repo)
            round_trips(endpoint(port), root, repo)
    extra = remote - floor
    print(f"per action, in-process workers (floor): {floor:.1f} ms")
    print(f"per action, conveyor worker over HTTP:  {remote:.1f} ms ({extra:+.1f} ms)")
    print(f"aim: at most {AIM_MS:.0f} ms more: {'met' if extra <= AIM_MS else 'missed'}")


if __name__ == "__main__":
    main()
