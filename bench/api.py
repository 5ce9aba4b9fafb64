"""API throughput: GetPipeline requests per second against Conveyor and against moto's server.

Both run as subprocesses on free loopback ports (Conveyor on SQLite in a temporary home) and
hold the same two-stage pipeline. The same pre-built GetPipeline request, with a fake SigV4
``Authorization`` header as boto3 sends, then goes in a loop over one keep-alive connection,
and over 4 connections from 4 threads, after a warm-up. moto is the yardstick because it is
what people run locally today: Conveyor should answer reads at least five times as fast and
spend under 1 ms per request itself (its ``Server-Timing`` header), or it becomes the
bottleneck of every tool that polls it. One ``GET /health`` round trip is timed too: a socket
without TCP_NODELAY shows up there as ~40 ms (Nagle's algorithm meeting delayed ACKs).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from _shapes import action_type, commands, git_source

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCESS_KEY = "testing"
PIPELINE = "bench"
ROLE = "conveyor-bench"

WARMUP = 300  # requests before measuring, split among the threads
REQUESTS = 3000  # requests measured, split among the threads
TIME_CAP = 15.0  # seconds per measurement, whichever comes first
THREADS = 4
HEALTH_TRIPS = 200
START_TIMEOUT = 30.0

AIM_RATIO = 5.0
AIM_SERVER_P50_MS = 1.0
AIM_HEALTH_MS = 10.0  # far below the ~40 ms of a Nagle / delayed-ACK stall

TIMES = "\u00d7"  # the multiplication sign, spelled out for ruff

STATE_PIPELINE = "bench-state"
STATE_STEPS = 20  # Commands actions after the source: 21 actions in all
STATE_HISTORY = 100  # executions the pipeline has run before GetPipelineState is timed


@dataclass(frozen=True)
class Call:
    """One pre-built request: the operation and its JSON body, with boto3's headers."""

    operation: str
    body: bytes

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"CodePipeline_20150709.{self.operation}",
            "X-Amz-Date": "20250101T000000Z",
            # moto picks the service and region from the credential scope; nobody checks the
            # signature.
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20250101/{REGION}/codepipeline/"
                "aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
                "Signature=" + "0" * 64
            ),
            "Content-Length": str(len(self.body)),
        }


def call(operation: str, pipeline: str) -> Call:
    return Call(operation, json.dumps({"name": pipeline}).encode())


GET_PIPELINE = call("GetPipeline", PIPELINE)
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "codepipeline.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def declaration(role_arn: str) -> dict[str, Any]:
    """A valid two-stage pipeline (as in tests/support/declarations.py): Git, then CodeBuild."""
    build = {
        "name": "Build",
        "actionTypeId": action_type("Build", "CodeBuild"),
        "configuration": {"ProjectName": "app"},
        "inputArtifacts": [{"name": "SourceOutput"}],
    }
    return {
        "name": PIPELINE,
        "roleArn": role_arn,
        "artifactStore": {"type": "S3", "location": "conveyor-artifacts"},
        "stages": [
            {
                "name": "Source",
                "actions": [git_source("https://example.com/app.git", "SourceOutput")],
            },
            {"name": "Build", "actions": [build]},
        ],
    }


def state_declaration(role_arn: str) -> dict[str, Any]:
    """A 21-action pipeline: a Git source (a folder that does not exist, so its one execution
    fails at once), then ``STATE_STEPS`` Commands actions one after the other."""
    source = git_source("/nonexistent/bench.git", "SourceOutput")
    steps = [
        commands(f"Step{order:02d}", "true", source="SourceOutput", run_order=order)
        for order in range(1, STATE_STEPS + 1)
    ]
    return {
        "name": STATE_PIPELINE,
        "roleArn": role_arn,
        "artifactStore": {"type": "S3", "location": "conveyor-artifacts"},
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [source]},
            {"name": "Steps", "actions": steps},
        ],
    }


# --- the servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _clean_environ() -> dict[str, str]:
    """The environment minus anything that could point a server at other state or accounts."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CONVEYOR_", "MOTO_", "AWS_"))
    }


def _answers(port: int, path: str) -> int | None:
    """The status of ``GET path``, or None when nothing answers yet."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        conn.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def subprocess_server(
    name: str, args: list[str], port: int, log: Path, ready: Callable[[int], bool]
) -> Iterator[int]:
    """Run ``args`` until the block ends; yield its port once ``ready(port)`` holds."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_clean_environ(),
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not ready(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{name} did not start ({' '.join(args)}):\n{tail}")
                time.sleep(0.05)
            yield port
        finally:
            _stop(process)


def conveyor(home: Path) -> AbstractContextManager[int]:
    port = free_port()
    args = [sys.executable, "-m", "conveyor", "server", "--host", HOST, "--port", str(port)]
    args += ["--home", str(home)]
    return subprocess_server(
        "conveyor", args, port, home / "server.log", lambda p: _answers(p, "/health") == 200
    )


def moto(folder: Path) -> AbstractContextManager[int]:
    port = free_port()
    args = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    return subprocess_server(
        "moto", args, port, folder / "moto.log", lambda p: _answers(p, "/") is not None
    )


def endpoint(port: int) -> str:
    return f"http://{HOST}:{port}"


def client(service: str, endpoint: str) -> Any:
    session: Any = boto3.session.Session()  # Any: the stubs want a literal service name
    return session.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=ACCESS_KEY,
        config=Config(retries={"max_attempts": 1}),
    )


def moto_role(endpoint: str) -> str:
    """An IAM role in moto that CodePipeline may assume: moto checks for one."""
    iam = client("iam", endpoint)
    created = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))
    return str(created["Role"]["Arn"])


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class Run:
    """What the client saw over one measurement (several connections for the threaded one)."""

    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    reconnects: int = 0
    started: float = float("inf")
    ended: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.count / (self.ended - self.started) if self.count else 0.0

    def merge(self, other: Run) -> None:
        self.latencies_ms += other.latencies_ms
        self.server_ms += other.server_ms
        self.reconnects += other.reconnects
        self.started = min(self.started, other.started)
        self.ended = max(self.ended, other.ended)


def _server_timing(header: str | None) -> float | None:
    """The ``dur`` of ``Server-Timing: app;dur=<ms>``, if any."""
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == "dur":
            return float(value)
    return None


def _requests(
    conn: http.client.HTTPConnection, request: Call, count: int, deadline: float, into: Run
) -> None:
    perf = time.perf_counter
    body, headers = request.body, request.headers
    for _ in range(count):
        if perf() > deadline:
            break
        sent = perf()
        conn.request("POST", "/", body, headers)
        response = conn.getresponse()
        payload = response.read()
        took = perf() - sent
        if response.status != 200:
            raise RuntimeError(f"{request.operation} answered {response.status}: {payload[:300]!r}")
        into.latencies_ms.append(took * 1000)
        dur = _server_timing(response.getheader("Server-Timing"))
        if dur is not None:
            into.server_ms.append(dur)
        if response.will_close:
            into.reconnects += 1


def check_answer(port: int, request: Call = GET_PIPELINE) -> None:
    """Make sure the loop measures the operation: unsigned, moto answers S3's ListBuckets with
    200."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", "/", request.body, request.headers)
        payload = conn.getresponse().read()
    finally:
        conn.close()
    try:
        answer = json.loads(payload)
        name = answer["pipeline"]["name"] if "pipeline" in answer else answer["pipelineName"]
    except (ValueError, KeyError, TypeError):
        name = None
    if name != json.loads(request.body)["name"]:
        raise RuntimeError(f"port {port} did not answer {request.operation}: {payload[:300]!r}")


def _connection_loop(
    port: int, request: Call, warmup: int, count: int, start: threading.Barrier
) -> Run:
    run = Run()
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        _requests(conn, request, warmup, time.perf_counter() + TIME_CAP, Run())
        start.wait()
        run.started = time.perf_counter()
        _requests(conn, request, count, run.started + TIME_CAP, run)
        run.ended = time.perf_counter()
    finally:
        conn.close()
    return run


def measure(port: int, threads: int, request: Call = GET_PIPELINE) -> Run:
    """A request in a loop over ``threads`` keep-alive connections, one per thread."""
    start = threading.Barrier(threads)
    results: list[Run] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(
                _connection_loop(port, request, WARMUP // threads, REQUESTS // threads, start)
            )
        except BaseException as exc:
            errors.append(exc)
            start.abort()

    workers = [threading.Thread(target=work, name=f"bench-{i}") for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    total = Run()
    for result in results:
        total.merge(result)
    return total


def health_round_trip(port: int) -> list[float]:
    """Milliseconds per keep-alive ``GET /health``, after one to open the connection."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    times: list[float] = []
    try:
        for i in range(HEALTH_TRIPS + 1):
            sent = time.perf_counter()
            conn.request("GET", "/health")
            response = conn.getresponse()
            response.read()
            if i:
                times.append((time.perf_counter() - sent) * 1000)
    finally:
        conn.close()
    return times


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, q in (0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


# --- reporting ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q):>9.3f}" if values else f"{'-':>9}"


def report(runs: dict[tuple[str, int], Run], health: list[float], state: dict[str, Run]) -> None:
    print(f"GetPipeline: {REQUESTS} requests after {WARMUP} warm-up, cap {TIME_CAP:.0f} s")
    print(
        f"{'server':<9}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'srv p50':>9}{'srv p99':>9}{'reconn':>8}"
    )
    for (name, threads), run in runs.items():
        print(
            f"{name:<9}{threads:>6}{run.rate:>9.0f}{_ms(run.latencies_ms, 50)}"
            f"{_ms(run.latencies_ms, 99)}{_ms(run.server_ms, 50)}{_ms(run.server_ms, 99)}"
            f"{run.reconnects:>8}"
        )
    print("(p50/p99: client-observed; srv: Server-Timing; reconn: server closed the connection)")
    ratios = {n: runs["conveyor", n].rate / runs["moto", n].rate for n in (1, THREADS)}
    listed = ", ".join(f"{ratio:.1f}{TIMES} with {n} conn" for n, ratio in ratios.items())
    print(f"ratio conveyor/moto: {listed}")
    h50 = percentile(health, 50)
    print(f"GET /health keep-alive round trip: p50 {h50:.3f} ms, max {max(health):.3f} ms")
    server_p50 = percentile(runs["conveyor", 1].server_ms, 50)
    print(f"aim: \u2265 {AIM_RATIO:.0f}{TIMES} moto's throughput, server-side p50 < 1 ms")
    for n, ratio in ratios.items():
        print(f"  {verdict(ratio >= AIM_RATIO)}  throughput {ratio:.1f}{TIMES} moto ({n} conn)")
    print(f"  {verdict(server_p50 < AIM_SERVER_P50_MS)}  server-side p50 {server_p50:.3f} ms")
    print(f"  {verdict(h50 < AIM_HEALTH_MS)}  /health round trip {h50:.3f} ms (TCP_NODELAY guard)")
    print(
        f"GetPipelineState of a {STATE_STEPS + 1}-action pipeline with {STATE_HISTORY + 1} "
        "executions behind it (Conveyor), on one connection (moto has "
        "no GetPipelineState: its GetPipeline of the same pipeline is the yardstick)"
    )
    for name, run in state.items():
        print(
            f"  {name:<26}{run.rate:>8.0f} req/s  p50 {_ms(run.latencies_ms, 50)} ms  "
            f"srv p50 {_ms(run.server_ms, 50)} ms"
        )
    ours, theirs = state["conveyor GetPipelineState"].rate, state["moto GetPipeline"].rate
    print(f"  {verdict(ours >= theirs)}  GetPipelineState at {ours / theirs:.1f}{TIMES} moto")


def _history(cp: Any) -> None:
    """``STATE_HISTORY`` executions of the state pipeline, each failing at its source, so
    that GetPipelineState reads a pipeline with a past, not a fresh one."""
    for _ in range(STATE_HISTORY):
        cp.start_pipeline_execution(name=STATE_PIPELINE)
    deadline = time.monotonic() + START_TIMEOUT
    pages = cp.get_paginator("list_pipeline_executions")
    while time.monotonic() < deadline:
        summaries = [
            s
            for page in pages.paginate(pipelineName=STATE_PIPELINE)
            for s in page["pipelineExecutionSummaries"]
        ]
        if all(s["status"] not in ("InProgress", "Stopping") for s in summaries):
            return
        time.sleep(0.1)
    raise RuntimeError("the state pipeline's executions did not end")


def main() -> None:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conveyor-bench-")))
        home = folder / "home"
        home.mkdir()
        ports = {"conveyor": stack.enter_context(conveyor(home))}
        ports["moto"] = stack.enter_context(moto(folder))

        role_arn = moto_role(endpoint(ports["moto"]))
        for port in ports.values():
            client("codepipeline", endpoint(port)).create_pipeline(pipeline=declaration(role_arn))
            check_answer(port)

        runs: dict[tuple[str, int], Run] = {}
        for threads in (1, THREADS):
            for name, port in ports.items():
                runs[name, threads] = measure(port, threads)
        health = health_round_trip(ports["conveyor"])
        for port in ports.values():
            cp = client("codepipeline", endpoint(port))
            cp.create_pipeline(pipeline=state_declaration(role_arn))
        _history(client("codepipeline", endpoint(ports["conveyor"])))
        get_state = call("GetPipelineState", STATE_PIPELINE)
        check_answer(ports["conveyor"], get_state)
        state = {
            "conveyor GetPipelineState": measure(ports["conveyor"], 1, get_state),
            "moto GetPipeline": measure(ports["moto"], 1, call("GetPipeline", STATE_PIPELINE)),
        }
    report(runs, health, state)


if __name__ == "__main__":
    main()
