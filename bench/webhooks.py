"""A signed webhook delivery → an execution started: how long does the server take?

Conveyor runs as a subprocess on SQLite, then on PostgreSQL when ``$CONVEYOR_TEST_DATABASE_URL``
names one. A pipeline (a Git source from a local repository,
then a Commands action) has a ``GITHUB_HMAC`` webhook with a ``refs/heads/{BranchName}``
filter. Deliveries of a push payload, each signed, go over one keep-alive connection; each
answer says which execution it started, and ``Server-Timing`` says how long the server took
(signature, filters, the start's transaction). In the same run, interleaved with them so both
meet the same background work (the executions started keep the workers busy), the same start
through the API (``StartPipelineExecution``) is the peer; a ``GET /health`` round trip on a
keep-alive connection is the floor of any request. The aim: a median under 20 ms server-side.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from api import HOST, client, endpoint, percentile, verdict
from engine import DATABASE_ENV, conveyor_server, postgres_schema
from server import declaration, make_repo

DELIVERIES = 200
WARMUP = 20
AIM_MS = 20.0
SECRET = "bench-secret"
PIPELINE = "load"  # the pipeline `server.declaration` declares
PUSH = json.dumps({"ref": "refs/heads/main", "after": "0" * 40, "pusher": {"name": "bench"}})


def _server_ms(response: http.client.HTTPResponse) -> float:
    for part in (response.getheader("Server-Timing") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "dur":
            return float(value)
    raise RuntimeError("the answer has no Server-Timing")


class Timed:
    """Client and server milliseconds of the requests one kind of call made."""

    def __init__(self) -> None:
        self.client_ms: list[float] = []
        self.server_ms: list[float] = []

    def add(self, sent: float, response: http.client.HTTPResponse) -> None:
        self.client_ms.append((time.perf_counter() - sent) * 1000)
        self.server_ms.append(_server_ms(response))


def deliver(conn: http.client.HTTPConnection, path: str, into: Timed | None) -> None:
    body = PUSH.encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}
    sent = time.perf_counter()
    conn.request("POST", path, body, headers)
    response = conn.getresponse()
    answer = json.loads(response.read())
    if response.status != 200 or not answer.get("started"):
        raise RuntimeError(f"the delivery was not started: {response.status} {answer}")
    if into is not None:
        into.add(sent, response)


def start(conn: http.client.HTTPConnection, into: Timed | None) -> None:
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "CodePipeline_20150709.StartPipelineExecution",
    }
    sent = time.perf_counter()
    conn.request("POST", "/", json.dumps({"name": PIPELINE}), headers)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"StartPipelineExecution answered {response.status}")
    if into is not None:
        into.add(sent, response)


def health(conn: http.client.HTTPConnection) -> float:
    sent = time.perf_counter()
    conn.request("GET", "/health")
    conn.getresponse().read()
    return (time.perf_counter() - sent) * 1000


def measure(folder: Path, database: str | None) -> tuple[Timed, Timed, list[float]]:
    """Deliveries and API starts, interleaved, and /health round trips, on one server."""
    with ExitStack() as stack:
        home = folder / f"home-{'postgresql' if database else 'sqlite'}"
        home.mkdir()
        port = stack.enter_context(conveyor_server(home, database))
        codepipeline: Any = client("codepipeline", endpoint(port))
        pipeline = declaration(folder / "repo")
        pipeline["executionMode"] = "SUPERSEDED"
        codepipeline.create_pipeline(pipeline=pipeline)
        url = codepipeline.put_webhook(
            webhook={
                "name": "bench",
                "targetPipeline": PIPELINE,
                "targetAction": "Source",
                "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{BranchName}"}],
                "authentication": "GITHUB_HMAC",
                "authenticationConfiguration": {"SecretToken": SECRET},
            }
        )["webhook"]["url"]
        path = url[url.index("/webhooks/") :]
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        stack.callback(conn.close)
        for _ in range(WARMUP):
            deliver(conn, path, None)
            start(conn, None)
        webhooks, starts, floor = Timed(), Timed(), []
        for _ in range(DELIVERIES):
            deliver(conn, path, webhooks)
            start(conn, starts)
            floor.append(health(conn))
    return webhooks, starts, floor


def main() -> None:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conveyor-bench-")))
        make_repo(folder / "repo")
        report("SQLite", *measure(folder, None))
        url = os.environ.get(DATABASE_ENV)
        database = stack.enter_context(postgres_schema(url)) if url else None
        if database is not None:
            report("PostgreSQL", *measure(folder, database))
        elif not url:
            print(f"${DATABASE_ENV} is not set: PostgreSQL skipped")


def report(database: str, webhooks: Timed, starts: Timed, floor: list[float]) -> None:
    print(f"{DELIVERIES} signed deliveries, each starting an execution ({database})")
    print(f"{'':<34}{'p50 ms':>9}{'p90 ms':>9}{'max ms':>9}")
    rows = (
        ("webhook POST, server-side", webhooks.server_ms),
        ("webhook POST, round trip", webhooks.client_ms),
        ("StartPipelineExecution, server", starts.server_ms),
        ("GET /health round trip (floor)", floor),
    )
    for name, values in rows:
        print(
            f"{name:<34}{percentile(values, 50):>9.2f}{percentile(values, 90):>9.2f}"
            f"{max(values):>9.2f}"
        )
    median = percentile(webhooks.server_ms, 50)
    peer = percentile(starts.server_ms, 50)
    print(f"aim: webhook POST → execution started, median <= {AIM_MS:.0f} ms server-side")
    print(f"  {verdict(median <= AIM_MS)}  {median:.2f} ms ({median / peer:.2f}x the API start)")


if __name__ == "__main__":
    main()
