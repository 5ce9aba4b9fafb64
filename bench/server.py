"""The server under load: does a fresh ``GET /health`` still answer at once?

Conveyor runs as a subprocess on SQLite with its 4 workers. A PARALLEL pipeline (a Git source
from a local repository, then a Commands action) gets 200 executions started at once, while
50 reader threads in another process ask ``GetPipelineState`` and ``ListPipelineExecutions``
in a loop over keep-alive connections. Meanwhile this process opens a fresh connection for
each ``GET /health``, every 20 ms, and times it; the same probe on the idle server is the
floor. A request that blocked the event loop (a store call run inline, say) shows up here as
seconds: the aims are a slowest ``/health`` under 2 s and a p99 within 3x the idle p99.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import subprocess
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _shapes import commands, git_source
from api import HOST, client, conveyor, endpoint, percentile, verdict

EXECUTIONS = 200
READERS = 50
PROBE_EVERY = 0.02  # seconds between /health probes
IDLE_PROBES = 200
LOAD_CAP = 45.0  # seconds of load at most
AIM_SLOWEST_MS = 2000.0
AIM_P99_RATIO = 3.0
PIPELINE = "load"
ROLE = "arn:aws:iam::000000000000:role/conveyor-bench"
TIMES = "\u00d7"


def make_repo(path: Path) -> None:
    path.mkdir(parents=True)
    env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "HOME": str(path)}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x", "PATH": "/usr/bin:/bin"}
    (path / "README").write_text("load\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)


def declaration(repo: Path) -> dict[str, Any]:
    return {
        "name": PIPELINE,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "executionMode": "PARALLEL",
        "stages": [
            {"name": "Source", "actions": [git_source(str(repo))]},
            {"name": "Build", "actions": [commands("Build", "true")]},
        ],
    }


def probe(port: int) -> float:
    """Milliseconds for one ``GET /health`` on a new connection, connecting included."""
    sent = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"/health answered {response.status}")
    finally:
        conn.close()
    return (time.perf_counter() - sent) * 1000


def _reader(port: int, until: float, counts: Any, index: int) -> None:
    bodies = [
        ("GetPipelineState", json.dumps({"name": PIPELINE}).encode()),
        ("ListPipelineExecutions", json.dumps({"pipelineName": PIPELINE}).encode()),
    ]
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    done = 0
    try:
        while time.monotonic() < until:
            target, body = bodies[done % 2]
            headers = {
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"CodePipeline_20150709.{target}",
            }
            conn.request("POST", "/", body, headers)
            conn.getresponse().read()
            done += 1
    finally:
        conn.close()
        counts[index] = done


def readers(port: int, until: float, counts: Any) -> None:
    """``READERS`` threads reading until ``until`` (monotonic), in a process of their own so
    their interpreter lock does not delay the probes."""
    threads = [
        threading.Thread(target=_reader, args=(port, until, counts, i)) for i in range(READERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def finished(codepipeline: Any) -> int:
    pages = codepipeline.get_paginator("list_pipeline_executions").paginate(pipelineName=PIPELINE)
    return sum(
        1
        for page in pages
        for summary in page["pipelineExecutionSummaries"]
        if summary["status"] not in ("InProgress", "Stopping")
    )


def main() -> None:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conveyor-bench-")))
        home = folder / "home"
        home.mkdir()
        make_repo(folder / "repo")
        port = stack.enter_context(conveyor(home))
        codepipeline = client("codepipeline", endpoint(port))
        codepipeline.create_pipeline(pipeline=declaration(folder / "repo"))
        idle = []
        for _ in range(IDLE_PROBES):
            idle.append(probe(port))
            time.sleep(PROBE_EVERY)
        started = time.monotonic()
        until = started + LOAD_CAP
        counts = multiprocessing.Array("i", READERS)
        reading = multiprocessing.get_context("fork").Process(
            target=readers, args=(port, until, counts)
        )
        reading.start()
        starters = [
            threading.Thread(target=lambda: codepipeline.start_pipeline_execution(name=PIPELINE))
            for _ in range(EXECUTIONS)
        ]
        for thread in starters:
            thread.start()
        loaded = []
        while time.monotonic() < until and reading.is_alive():
            loaded.append(probe(port))
            time.sleep(PROBE_EVERY)
        reading.join()
        for thread in starters:
            thread.join()
        load_seconds = time.monotonic() - started
        done = finished(codepipeline)
        reads = sum(counts)
    report(idle, loaded, done, reads, load_seconds)


def report(idle: list[float], loaded: list[float], done: int, reads: int, seconds: float) -> None:
    idle_p99, load_p99, slowest = percentile(idle, 99), percentile(loaded, 99), max(loaded)
    print(
        f"load: {EXECUTIONS} executions started at once ({done} finished), {READERS} readers "
        f"({reads / seconds:.0f} reads/s), {seconds:.0f} s"
    )
    print(f"{'GET /health':<22}{'probes':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, values in (("idle (floor)", idle), ("under load", loaded)):
        print(
            f"{name:<22}{len(values):>7}{percentile(values, 50):>9.2f}"
            f"{percentile(values, 99):>9.2f}{max(values):>9.2f}"
        )
    ratio = load_p99 / idle_p99
    print(f"aim: slowest < {AIM_SLOWEST_MS:.0f} ms, p99 within {AIM_P99_RATIO:.0f}{TIMES} idle")
    print(f"  {verdict(slowest < AIM_SLOWEST_MS)}  slowest /health {slowest:.1f} ms")
    print(f"  {verdict(ratio <= AIM_P99_RATIO)}  p99 {load_p99:.2f} ms = {ratio:.1f}{TIMES} idle")


if __name__ == "__main__":
    main()
