"""The console's pipeline page: server-side time to render a 20-stage, 60-action pipeline.

A server runs in this process on SQLite in a temporary home with one pipeline: a Git source
and 19 more stages of 3 Commands actions (``true``) in two run orders, 60 actions in all,
run once to the end so that every action has an execution to show. ``GET /pipelines/<name>``
then goes in a loop over one keep-alive connection after a warm-up, and the page's own
``Server-Timing`` (reading the engine's views, rendering the template) is the figure; the aim
is a median of at most 20 ms. Measured in the same run, as the floor the page is built on:
GetPipelineState of the same pipeline (the page reads the same view, then renders), and one
``GET /health`` round trip. Then `EXTRA` more pipelines (each with an execution that failed at
once) and the pipelines page, whose first page of 25 should cost about what one pipeline page
does however many pipelines there are: measured again once there are `MANY` (the rest made
through the engine's service, without executions), on its first page, a page in the middle
and a name filter, each within the same 20 ms. Last, how soon a change reaches an open event stream
(what an open page listens to): a transition disabled or enabled through the API, from the
call to the message, against the API call alone (aim: 100 ms).
"""

from __future__ import annotations

import http.client
import json
import queue
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import boto3

from conveyor.config import Settings
from conveyor.server import running

PIPELINE = "bench-console"
STAGES = 20
PER_STAGE = 3
WARMUP = 30
REQUESTS = 300
AIM_MS = 20.0
EXTRA = 300
MANY = 10_000  # pipelines in all for the list pages' second measurement
CHANGES = 50
AIM_PUSH_MS = 100.0
ROLE = "arn:aws:iam::000000000000:role/conveyor-bench"


def _git(repo: Path, *args: str) -> None:
    env = {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@conveyor.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@conveyor.invalid",
        "HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def declaration(repo: Path) -> dict[str, Any]:
    source = {
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "Git", "version": "1"},
        "configuration": {"RepositoryUrl": str(repo), "BranchName": "main"},
        "outputArtifacts": [{"name": "Src"}],
    }
    stages: list[dict[str, Any]] = [{"name": "Source", "actions": [source]}]
    for number in range(1, STAGES):
        stages.append(
            {
                "name": f"Stage{number:02d}",
                "actions": [
                    {
                        "name": f"Step{index}",
                        "actionTypeId": {
                            "category": "Compute",
                            "owner": "AWS",
                            "provider": "Commands",
                            "version": "1",
                        },
                        "commands": ["true"],
                        "inputArtifacts": [{"name": "Src"}],
                        "runOrder": 1 if index < 2 else 2,
                    }
                    for index in range(PER_STAGE)
                ],
            }
        )
    # 1 source + 19 stages of 3 = 58; two stages carry a 4th action to make 60.
    stages[1]["actions"].append({**stages[1]["actions"][0], "name": "Extra"})
    stages[2]["actions"].append({**stages[2]["actions"][0], "name": "Extra"})
    return {
        "name": PIPELINE,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "stages": stages,
    }


def _timing(response: http.client.HTTPResponse) -> float:
    header = response.headers.get("Server-Timing", "")
    return float(header.split("dur=")[1]) if "dur=" in header else float("nan")


def _loop(
    connection: http.client.HTTPConnection, send: Any, count: int
) -> tuple[list[float], list[float]]:
    server, trips = [], []
    for _ in range(count):
        started = time.perf_counter()
        send()
        response = connection.getresponse()
        response.read()
        trips.append((time.perf_counter() - started) * 1000)
        server.append(_timing(response))
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
    return server, trips


def _repo(home: Path) -> Path:
    repo = home / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("bench\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "bench")
    return repo


def _run_once(api: Any, repo: Path) -> tuple[int, str]:
    """Create the big pipeline and wait for its first execution to end: (actions, status)."""
    declared = declaration(repo)
    api.create_pipeline(pipeline=declared)
    deadline = time.monotonic() + 120
    while True:
        summaries = api.list_pipeline_executions(pipelineName=PIPELINE)[
            "pipelineExecutionSummaries"
        ]
        if summaries and summaries[0]["status"] != "InProgress":
            return sum(len(s["actions"]) for s in declared["stages"]), summaries[0]["status"]
        if time.monotonic() > deadline:
            raise RuntimeError("the pipeline did not finish")
        time.sleep(0.2)


def _measure(endpoint: str, api: Any, services: Any) -> dict[str, list[float]]:
    host, port = endpoint.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps({"name": PIPELINE}).encode()
    target = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "CodePipeline_20150709.GetPipelineState",
    }
    calls = {
        "page": lambda: connection.request("GET", f"/pipelines/{PIPELINE}"),
        "state": lambda: connection.request("POST", "/", body, target),
        "health": lambda: connection.request("GET", "/health"),
        "list": lambda: connection.request("GET", "/"),
    }
    found: dict[str, list[float]] = {}
    try:
        for name in ("page", "state", "health"):
            _loop(connection, calls[name], WARMUP)
            found[name], found[f"{name} trip"] = _loop(connection, calls[name], REQUESTS)
        for number in range(EXTRA):
            small = declaration(Path("/nonexistent/bench.git"))
            small["name"] = f"many-{number:04d}"
            small["stages"] = small["stages"][:2]
            api.create_pipeline(pipeline=small)
        _loop(connection, calls["list"], WARMUP)
        found["list"], _ = _loop(connection, calls["list"], REQUESTS)
        _fill(services, MANY - EXTRA - 1)
        connection.close()  # idle meanwhile for longer than the server keeps a connection
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        pages = {
            "many first": "/",
            "many middle": "/?after=zz-05000",
            "many filtered": "/?q=zz-0999",
        }
        for name, path in pages.items():
            page = partial(connection.request, "GET", path)
            _loop(connection, page, WARMUP)
            found[name], _ = _loop(connection, page, REQUESTS // 3)
    finally:
        connection.close()
    return found


def _fill(services: Any, count: int) -> None:
    """``count`` more pipelines, straight through the engine's service and without a first
    execution (creating them through the API would run one each)."""
    small = declaration(Path("/nonexistent/bench.git"))
    small["stages"] = small["stages"][:2]
    for number in range(count):
        services.pipelines.create({**small, "name": f"zz-{number:05d}"}, [], start=False)


def _push(endpoint: str, api: Any) -> tuple[list[float], list[float]]:
    """Milliseconds from a transition change's API call to its message on the stream, and
    of the call alone."""
    host, port = endpoint.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", f"/console/events?pipeline={PIPELINE}")
    response = connection.getresponse()
    arrived: queue.Queue[float] = queue.Queue()

    def read() -> None:
        try:
            while line := response.readline():
                if line.startswith(b"data: "):
                    arrived.put(time.perf_counter())
        except OSError:
            return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    pushes, calls = [], []
    try:
        time.sleep(0.2)  # the stream is open
        for number in range(CHANGES):
            started = time.perf_counter()
            if number % 2:
                api.enable_stage_transition(
                    pipelineName=PIPELINE, stageName="Stage05", transitionType="Inbound"
                )
            else:
                api.disable_stage_transition(
                    pipelineName=PIPELINE,
                    stageName="Stage05",
                    transitionType="Inbound",
                    reason="bench",
                )
            calls.append((time.perf_counter() - started) * 1000)
            pushes.append((arrived.get(timeout=10) - started) * 1000)
    finally:
        assert connection.sock is not None
        connection.sock.shutdown(socket.SHUT_RDWR)
        reader.join(timeout=5)
        connection.close()
    return pushes, calls


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        repo = _repo(home)
        settings = Settings(
            home=home / "home",
            database_url=f"sqlite:///{home / 'c.db'}",
            detect_changes=False,  # its made-up sources are not there to follow
        )
        with running(settings) as live:
            api = boto3.client(
                "codepipeline",
                endpoint_url=live.endpoint,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
            actions, status = _run_once(api, repo)
            found = _measure(live.endpoint, api, live.application.services)
            pushes, calls = _push(live.endpoint, api)
    page_ms = statistics.median(found["page"])
    state_ms = statistics.median(found["state"])
    print(f"pipeline of {STAGES} stages, {actions} actions, its execution {status}")
    print(
        f"console pipeline page: median {page_ms:.2f} ms server-side "
        f"(p90 {statistics.quantiles(found['page'], n=10)[-1]:.2f} ms; round trip "
        f"{statistics.median(found['page trip']):.2f} ms); aim <= {AIM_MS:.0f} ms: "
        f"{'met' if page_ms <= AIM_MS else 'MISSED'}"
    )
    print(
        f"floor, same run: GetPipelineState {state_ms:.2f} ms server-side; "
        f"GET /health round trip {statistics.median(found['health trip']):.2f} ms; "
        f"page / GetPipelineState = {page_ms / state_ms:.2f}"
    )
    print(
        f"pipelines page (first 25 of {EXTRA + 1} pipelines): median "
        f"{statistics.median(found['list']):.2f} ms server-side"
    )
    many = [statistics.median(found[k]) for k in ("many first", "many middle", "many filtered")]
    print(
        f"with {MANY} pipelines: first page {statistics.median(found['many first']):.2f} ms, "
        f"a page in the middle {statistics.median(found['many middle']):.2f} ms, "
        f"filtered by name {statistics.median(found['many filtered']):.2f} ms (server-side "
        f"medians); aim <= {AIM_MS:.0f} ms: "
        f"{'met' if max(many) <= AIM_MS else 'MISSED'}"
    )
    push_ms = statistics.median(pushes)
    print(
        f"a change to an open stream: median {push_ms:.1f} ms from the API call "
        f"(the call alone {statistics.median(calls):.1f} ms); aim <= {AIM_PUSH_MS:.0f} ms: "
        f"{'met' if push_ms <= AIM_PUSH_MS else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
