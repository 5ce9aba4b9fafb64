"""The routes `conveyor worker` uses: built-in jobs over /_conveyor/worker, artifacts over the
S3 subset at /_conveyor/s3, and who may reach them."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.applications import Starlette

from conveyor.api.s3serve import BucketRoutes
from conveyor.api.workerjobs import type_of
from conveyor.artifacts import ArtifactError, ArtifactStore
from conveyor.artifacts.local import LocalBuckets
from conveyor.auth.artifactkeys import ArtifactKeys
from conveyor.config import Settings
from conveyor.domain.errors import JobNotFoundException
from conveyor.engine.jobs import Taker
from conveyor.server import Running, running
from conveyor.store import JobRecord
from conveyor.store.errors import StoreUnavailable
from conveyor.worker.artifactaccess import KnownObjects, artifact_store
from conveyor.worker.remote import Key, RemoteJobs, signed
from tests.conftest import make_client
from tests.support.auth import allow, make_user, signed_client
from tests.support.engine import (
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
)

GIT = "AWS/Source/Git/1"


@pytest.fixture
def remote(settings: Settings) -> Iterator[Running]:
    with running(replace(settings, workers=0, remote_workers=True)) as live:
        yield live


def call(
    endpoint: str, name: str, body: dict[str, Any], key: tuple[str, str] | None = None
) -> tuple[int, Any]:
    url, data = f"{endpoint}/_conveyor/worker/{name}", json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if key is not None:
        headers = signed(url, data, headers, Key(*key), "us-east-1")
    request = urllib.request.Request(url, data, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            text = error.read()
        return error.code, json.loads(text) if text.startswith(b"{") else text


def start(endpoint: str, tmp_path: Path) -> str:
    repo = tmp_path / "repo"
    make_repo(repo)
    client = make_client(endpoint)
    client.create_pipeline(
        pipeline=declaration("remote", repo, stage("Run", commands("Echo", "echo hi")))
    )
    return str(wait_for(lambda: latest_execution_id(client, "remote"), what="an execution"))


def test_a_long_poll_takes_a_job_queued_while_it_waits(remote: Running, tmp_path: Path) -> None:
    answers: list[tuple[float, Any]] = []

    def poll() -> None:
        _, body = call(remote.endpoint, "poll", {"types": [GIT], "owner": "w/1", "wait": 15})
        answers.append((time.monotonic(), body))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    start(remote.endpoint, tmp_path)
    queued = time.monotonic()
    poller.join(20)
    (answered, body) = answers[0]
    assert body["job"]["type"] == GIT
    assert body["job"]["status"] == "InProgress"
    assert body["job"]["owner"] == "remote/w/1"
    assert body["lease"] > 0
    # Woken by the queueing, not by the end of its wait.
    assert answered - queued < 2.0


def test_a_job_answers_only_to_the_worker_that_holds_it(remote: Running, tmp_path: Path) -> None:
    start(remote.endpoint, tmp_path)
    status, body = call(remote.endpoint, "poll", {"types": [GIT], "owner": "w/1", "wait": 5})
    job_id = body["job"]["id"]
    for name in ("renew", "status"):
        status, answer = call(remote.endpoint, name, {"jobId": job_id, "owner": "w/2"})
        assert status == 400 and answer["__type"] == "JobNotFoundException", answer
    status, answer = call(
        remote.endpoint,
        "result",
        {"jobId": job_id, "owner": "w/2", "succeeded": False, "message": "forged"},
    )
    assert answer["__type"] == "JobNotFoundException"
    # Checked again where the result is written: a result for another's job writes nothing.
    with pytest.raises(JobNotFoundException):
        remote.application.services.jobs.fail(
            job_id, failure_type="JobFailed", message="forged", held_by="remote/w/2"
        )
    assert remote.application.services.jobs.get(job_id).status == "InProgress"
    assert call(remote.endpoint, "renew", {"jobId": job_id, "owner": "w/1"}) == (
        200,
        {"renewed": True},
    )
    status, answer = call(
        remote.endpoint,
        "result",
        {
            "jobId": job_id,
            "owner": "w/1",
            "succeeded": False,
            "failureType": "JobFailed",
            "message": "no checkout here",
            "log": "worker log line\n",
        },
    )
    assert (status, answer) == (200, {"job": None})
    logs = "".join(
        p.read_text() for p in (remote.application.engine.settings.home / "logs").glob("*")
    )
    assert "worker log line" in logs
    # A result once given is final.
    status, answer = call(
        remote.endpoint, "result", {"jobId": job_id, "owner": "w/1", "succeeded": True}
    )
    assert answer["__type"] == "InvalidJobStateException"


def test_a_job_handed_out_has_its_log_file_before_its_result(
    remote: Running, tmp_path: Path
) -> None:
    start(remote.endpoint, tmp_path)
    _, body = call(remote.endpoint, "poll", {"types": [GIT], "owner": "w/1", "wait": 5})
    job = body["job"]
    execution = job["data"]["pipelineContext"]["action"]["actionExecutionId"]
    log = remote.application.engine.settings.home / "logs" / f"{execution}.log"
    # Made once the poll's answer is sent, so the result only appends to it.
    wait_for(log.exists, timeout=5, what="the log file of the job handed out")
    assert log.read_text() == ""
    result = {"jobId": job["id"], "owner": "w/1", "succeeded": False, "message": "no"}
    answer = call(remote.endpoint, "result", result | {"failureType": "JobFailed", "log": "in\n"})
    assert answer == (200, {"job": None})
    assert log.read_text() == "in\n"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"types": ["Custom/Deploy/Rollout/1"], "owner": "w"}, "types"),
        ({"types": ["AWS/Build"], "owner": "w"}, "types"),
        ({"types": [], "owner": "w"}, "types"),
        ({"types": [GIT]}, "owner"),
        ({"types": [GIT], "owner": "w", "wait": -1}, "wait"),
    ],
)
def test_a_bad_poll_is_refused_naming_its_field(
    remote: Running, body: dict[str, Any], field: str
) -> None:
    status, answer = call(remote.endpoint, "poll", body)
    assert status == 400
    assert answer["__type"] == "ValidationException"
    assert answer["message"].startswith(f"{field}:")


def test_leaving_ends_the_polls_that_wait(remote: Running) -> None:
    answers: list[float] = []

    def poll() -> None:
        call(remote.endpoint, "poll", {"types": [GIT], "owner": "node/abc/worker-0", "wait": 15})
        answers.append(time.monotonic())

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)
    left = time.monotonic()
    assert call(remote.endpoint, "leave", {"owner": "node/abc/"}) == (200, {})
    poller.join(20)
    assert answers[0] - left < 2.0


def test_the_worker_routes_exist_only_with_remote_workers_on(server: Running) -> None:
    status, _ = call(server.endpoint, "poll", {"types": [GIT], "owner": "w"})
    assert status == 404


def get_from(
    app: Any, client: str, path: str, headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, bytes]:
    """GET ``path`` of the ASGI ``app`` as if from address ``client``."""
    sent: list[dict[str, Any]] = []
    asked: list[bool] = []

    async def receive() -> dict[str, Any]:
        if asked:  # the client stays connected until the answer is sent
            await asyncio.Event().wait()
        asked.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers or [(b"host", b"ci.example")],
        "client": (client, 5000),
        "server": ("ci.example", 80),
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


def bucket_app(tmp_path: Path, keys: ArtifactKeys) -> Any:
    buckets = LocalBuckets(tmp_path / "buckets")
    routes = BucketRoutes(buckets, tmp_path / "uploads", keys, "us-east-1", lambda job: True)
    return Starlette(routes=routes.routes())


def test_the_artifact_endpoint_answers_any_address_for_a_job_signature(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    LocalBuckets(tmp_path / "buckets").put("b", "k", tmp_path / "f")
    keys = ArtifactKeys(lambda: b"a key of this installation")
    app = bucket_app(tmp_path, keys)
    status, body = get_from(app, "203.0.113.9", "/_conveyor/s3/b/k")
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in body
    credentials = keys.mint("job-1", time.time() + 60, [("b", "k")], [])
    request = AWSRequest(method="GET", url="http://ci.example/_conveyor/s3/b/k")
    S3SigV4Auth(
        Credentials(
            credentials["accessKeyId"],
            credentials["secretAccessKey"],
            credentials["sessionToken"],
        ),
        "s3",
        "us-east-1",
    ).add_auth(request)
    headers = [(b"host", b"ci.example")] + [
        (k.lower().encode(), v.encode() if isinstance(v, str) else v)
        for k, v in request.headers.items()
    ]
    assert get_from(app, "203.0.113.9", "/_conveyor/s3/b/k", headers) == (200, b"x")
    # The same credentials at a server of another installation (another secret key).
    other = bucket_app(tmp_path, ArtifactKeys(lambda: b"another key"))
    status, body = get_from(other, "127.0.0.1", "/_conveyor/s3/b/k", headers)
    assert status == 400
    assert b"<Code>InvalidToken</Code>" in body
    # Past its expiry.
    later = ArtifactKeys(lambda: b"a key of this installation", clock=lambda: time.time() + 120)
    status, body = get_from(bucket_app(tmp_path, later), "127.0.0.1", "/_conveyor/s3/b/k", headers)
    assert status == 400
    assert b"<Code>ExpiredToken</Code>" in body


def test_the_types_left_to_job_workers_are_not_served_to_remote_workers(
    settings: Settings,
) -> None:
    chosen = replace(
        settings, workers=0, remote_workers=True, worker_action_types=("AWS/Deploy/ECS/1",)
    )
    with running(chosen) as live:
        status, answer = call(
            live.endpoint, "poll", {"types": ["AWS/Deploy/ECS/1"], "owner": "w", "wait": 0}
        )
        assert status == 400
        assert answer["message"].startswith("types: every one is left to PollForJobs")
        both = {"types": ["AWS/Deploy/ECS/1", GIT], "owner": "w", "wait": 0}
        assert call(live.endpoint, "poll", both)[1]["job"] is None


@pytest.fixture
def secured(settings: Settings) -> Iterator[Running]:
    with running(replace(settings, workers=0, remote_workers=True, auth="required")) as live:
        yield live


def test_with_auth_a_worker_signs_its_calls_and_needs_the_worker_action(
    secured: Running, tmp_path: Path
) -> None:
    git_arn = "arn:aws:codepipeline:us-east-1:000000000000:actiontype:AWS/Source/Git/1"
    admin = make_user(secured, "admin", managed=["AWSCodePipeline_FullAccess"])
    builder = make_user(
        secured, "builder", policies=[allow("conveyor:RunBuiltInJobs", resource=git_arn)]
    )
    intruder = make_user(secured, "intruder", policies=[allow("conveyor:*")])
    poll = {"types": [GIT], "owner": "w/1", "wait": 0}
    status, answer = call(secured.endpoint, "poll", poll)
    assert (status, answer["__type"]) == (403, "MissingAuthenticationTokenException")
    status, answer = call(secured.endpoint, "poll", poll, ("AKIAUNKNOWN000000000", "x"))
    assert answer["__type"] == "UnrecognizedClientException"
    # API rights are not worker rights.
    status, answer = call(secured.endpoint, "poll", poll, admin)
    assert (status, answer["__type"]) == (400, "AccessDeniedException")
    assert "conveyor:RunBuiltInJobs" in answer["message"]
    status, answer = call(
        secured.endpoint, "poll", {**poll, "types": [GIT, "AWS/Build/CodeBuild/1"]}, builder
    )
    assert answer["__type"] == "AccessDeniedException"
    repo = tmp_path / "repo"
    make_repo(repo)
    signed_client(secured, admin).create_pipeline(
        pipeline=declaration("remote", repo, stage("Run", commands("Echo", "echo hi")))
    )
    status, answer = call(secured.endpoint, "poll", {**poll, "wait": 15}, builder)
    assert status == 200, answer
    job = answer["job"]
    assert job["owner"] == f"remote/{builder[0]}/w/1"
    # The job is the key's: another key naming the same owner cannot reach it.
    held = {"jobId": job["id"], "owner": "w/1"}
    status, answer = call(secured.endpoint, "renew", held, intruder)
    assert answer["__type"] == "JobNotFoundException"
    assert call(secured.endpoint, "renew", held, builder) == (200, {"renewed": True})


def holding_a_source_job(
    remote: Running, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[RemoteJobs, JobRecord, ArtifactStore, tuple[str, str]]:
    """A worker holding the source job of a new execution, its artifact store, and where
    the job's output goes."""
    start(remote.endpoint, tmp_path)
    jobs = RemoteJobs(remote.endpoint, tmp_path / "logs", wait=5)
    request.addfinalizer(jobs.close)
    job = wait_for(lambda: jobs.claim([type_of(GIT)], owner="w/1"), what="a job")
    store = artifact_store(Settings(home=tmp_path / "worker"), remote.endpoint, jobs)
    output = job.data["outputArtifacts"][0]["location"]["s3Location"]
    return jobs, job, store, (output["bucketName"], output["objectKey"])


def test_a_worker_reaches_each_artifact_with_its_job_credentials(
    remote: Running, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    _, _, store, (bucket, key) = holding_a_source_job(remote, tmp_path, request)
    large = tmp_path / "large.bin"
    large.write_bytes(os.urandom(20 * 1024 * 1024))  # above boto3's 8 MiB: parts, in threads
    store.put(bucket, key, large)
    back = tmp_path / "back.bin"
    store.get(bucket, key, back)
    assert back.read_bytes() == large.read_bytes()
    # An object no held job names: refused by the server.
    with pytest.raises(ArtifactError, match="InvalidAccessKeyId"):
        store.put(bucket, "elsewhere/key", large)


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (StoreUnavailable("connection refused"), 503, b"ServiceUnavailable"),
        (RuntimeError("a bug"), 500, b"InternalError"),
    ],
)
def test_the_artifact_endpoint_answers_failures_as_s3_errors(
    tmp_path: Path, failure: Exception, status: int, code: bytes
) -> None:
    keys = ArtifactKeys(lambda: b"a key of this installation")

    def active(job_id: str) -> bool:
        raise failure

    routes = BucketRoutes(LocalBuckets(tmp_path / "b"), tmp_path / "u", keys, "us-east-1", active)
    credentials = keys.mint("job-1", time.time() + 60, [("b", "k")], [])
    request = AWSRequest(method="GET", url="http://ci.example/_conveyor/s3/b/k")
    frozen = Credentials(
        credentials["accessKeyId"], credentials["secretAccessKey"], credentials["sessionToken"]
    )
    S3SigV4Auth(frozen, "s3", "us-east-1").add_auth(request)
    headers = [(b"host", b"ci.example")] + [
        (k.lower().encode(), v.encode() if isinstance(v, str) else v)
        for k, v in request.headers.items()
    ]
    answer = get_from(Starlette(routes=routes.routes()), "127.0.0.1", "/_conveyor/s3/b/k", headers)
    assert answer[0] == status
    assert b"<Code>" + code + b"</Code>" in answer[1]
    assert b"a bug" not in answer[1]


def test_an_s3_source_job_may_read_the_object_it_names(
    remote: Running, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    drops = remote.application.engine.settings.home / "buckets" / "drops"
    drops.mkdir(parents=True)
    (drops / "app.zip").write_bytes(b"PK zip bytes")
    (drops / "other.zip").write_bytes(b"PK other")
    source = {
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {
            "S3Bucket": "drops",
            "S3ObjectKey": "app.zip",
            "PollForSourceChanges": "false",
        },
        "outputArtifacts": [{"name": "Src"}],
    }
    shape = declaration("drop", tmp_path, stage("Run", commands("Echo", "echo hi")))
    shape["stages"][0]["actions"] = [source]
    make_client(remote.endpoint).create_pipeline(pipeline=shape)
    jobs = RemoteJobs(remote.endpoint, tmp_path / "logs", wait=5)
    request.addfinalizer(jobs.close)
    wait_for(lambda: jobs.claim([type_of("AWS/Source/S3/1")], owner="w/1"), what="a job")
    store = artifact_store(Settings(home=tmp_path / "worker"), remote.endpoint, jobs)
    store.get("drops", "app.zip", tmp_path / "app.zip")
    assert (tmp_path / "app.zip").read_bytes() == b"PK zip bytes"
    with pytest.raises(ArtifactError):
        store.get("drops", "other.zip", tmp_path / "other.zip")


def test_a_job_says_what_the_server_knows_of_its_inputs_and_the_worker_asks_no_more(
    remote: Running, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    jobs, source, store, (bucket, key) = holding_a_source_job(remote, tmp_path, request)
    packed = tmp_path / "src.zip"
    packed.write_bytes(b"PK not much of a source")
    store.put(bucket, key, packed)
    commands_type = type_of("AWS/Compute/Commands/1")
    job = jobs.succeed(source.id, next_for=Taker([commands_type], "w/1"))
    assert job is not None and job.type_id == commands_type
    on_disk = LocalBuckets(remote.application.engine.settings.home / "buckets").stat(bucket, key)
    assert on_disk is not None and jobs.known(bucket, key) == on_disk
    # Answered from what came with the job; anything else, from the store behind.
    elsewhere = LocalBuckets(tmp_path / "empty")
    assert KnownObjects(elsewhere, jobs.known).stat(bucket, key) == on_disk
    assert KnownObjects(elsewhere, jobs.known).stat(bucket, "other") is None
    assert KnownObjects(elsewhere, jobs.known).stat(bucket, key, version_id="v1") is None
    # Once the job is reported, what came with it goes.
    jobs.fail(job.id, failure_type="JobFailed", message="done here")
    assert jobs.known(bucket, key) is None
