"""Parallel work: how many actions per second the server gets through with 50 executions at once.

Conveyor runs as a subprocess (SQLite in a temporary home, then PostgreSQL in a fresh schema
when ``CONVEYOR_TEST_DATABASE_URL`` answers) with its 4 workers and one PARALLEL pipeline: a
Git source over a small local repository, then ``STEPS`` Commands actions running ``true``
one after the other. 50 executions are started at once from 50 threads; the rate is every
action of them divided by the time from the first execution's start to the last one's end,
from the server's timestamps. The server's own CPU (``/proc/<pid>/stat``, its children's
processes apart) over the same stretch, per action, says what the engine spends on each.

The floor is what the actions themselves cost at that concurrency: ``bash -c true`` run from
4 threads in this process, in the same run, as processes per second; no engine can get more
Commands actions through than that. Aim: 300 actions per second or more.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _shapes import commands, git_source
from api import client, endpoint, verdict
from engine import DATABASE_ENV, conveyor_server, make_repo, postgres_schema

PIPELINE = "bench-parallel"
ROLE = "arn:aws:iam::000000000000:role/conveyor-bench"
EXECUTIONS = 50
STEPS = 5  # Commands actions after the source, one after the other
WORKERS = 4  # the server's default
FLOOR_SPAWNS = 400
TIMEOUT = 300.0
AIM_RATE = 300.0


def declaration(repo: Path) -> dict[str, Any]:
    steps = [commands(f"Step{n}", "true", run_order=n) for n in range(1, STEPS + 1)]
    return {
        "name": PIPELINE,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "executionMode": "PARALLEL",
        "stages": [
            {"name": "Source", "actions": [git_source(str(repo))]},
            {"name": "Steps", "actions": steps},
        ],
    }


@dataclass(frozen=True)
class Result:
    name: str
    actions: int
    seconds: float  # first execution's start to the last one's end (server clock)
    cpu_ms: float  # the server process's CPU over the load

    @property
    def rate(self) -> float:
        return self.actions / self.seconds

    @property
    def cpu_per_action_ms(self) -> float:
        return self.cpu_ms / self.actions


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of the process itself (not of the children it waited for)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_pid(port: int) -> int:
    """The pid listening on ``port`` (the server subprocess)."""
    found = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return int(found.split("pid=")[1].split(",")[0])


def _wait_all(cp: Any, ids: list[str]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        summaries = []
        for page in cp.get_paginator("list_pipeline_executions").paginate(pipelineName=PIPELINE):
            summaries += [
                s for s in page["pipelineExecutionSummaries"] if s["pipelineExecutionId"] in ids
            ]
        if len(summaries) == len(ids) and all(s["status"] != "InProgress" for s in summaries):
            failed = [s for s in summaries if s["status"] != "Succeeded"]
            if failed:
                raise RuntimeError(f"{len(failed)} executions did not succeed: {failed[0]}")
            return summaries
        if time.monotonic() > deadline:
            raise RuntimeError("executions still running after the time limit")
        time.sleep(0.25)


def measure(name: str, folder: Path, repo: Path, database: str | None) -> Result:
    home = folder / f"home-{name}"
    home.mkdir()
    with conveyor_server(home, database) as port:
        cp = client("codepipeline", endpoint(port))
        cp.create_pipeline(pipeline=declaration(repo))
        first = cp.list_pipeline_executions(pipelineName=PIPELINE)["pipelineExecutionSummaries"]
        _wait_all(cp, [first[0]["pipelineExecutionId"]])  # the warm-up
        pid = _server_pid(port)
        clients = [client("codepipeline", endpoint(port)) for _ in range(EXECUTIONS)]
        start = threading.Barrier(EXECUTIONS)

        def started(index: int) -> str:
            start.wait()
            return str(
                clients[index].start_pipeline_execution(name=PIPELINE)["pipelineExecutionId"]
            )

        cpu_before = _cpu_seconds(pid)
        with ThreadPoolExecutor(EXECUTIONS) as pool:
            ids = list(pool.map(started, range(EXECUTIONS)))
        summaries = _wait_all(cp, ids)
        cpu = _cpu_seconds(pid) - cpu_before
    began = min(s["startTime"].timestamp() for s in summaries)
    ended = max(s["lastUpdateTime"].timestamp() for s in summaries)
    return Result(name, EXECUTIONS * (STEPS + 1), ended - began, cpu * 1000)


def spawn_floor() -> float:
    """``bash -c true`` per second from ``WORKERS`` threads."""
    bash = shutil.which("bash") or "/bin/bash"

    def spawn(_: int) -> None:
        subprocess.run([bash, "-c", "true"], check=True)

    return _rate(FLOOR_SPAWNS, spawn)


def _rate(count: int, once: Callable[[int], None]) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(once, range(count)))
    return count / (time.perf_counter() - began)


def main() -> None:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conveyor-bench-")))
        repo = folder / "repo"
        make_repo(repo)
        results = [measure("sqlite", folder, repo, None)]
        url = os.environ.get(DATABASE_ENV)
        database = stack.enter_context(postgres_schema(url)) if url else None
        if database is not None:
            results.append(measure("postgresql", folder, repo, database))
        floor = spawn_floor()
    print(
        f"{EXECUTIONS} executions of a PARALLEL pipeline started at once: a Git source, then "
        f"{STEPS} Commands actions in sequence ({EXECUTIONS * (STEPS + 1)} actions)"
    )
    print(f"floor: bash -c true from {WORKERS} threads, {floor:.0f} processes/s")
    print(f"{'':<12}{'actions/s':>10}{'seconds':>9}{'server CPU/action':>19}")
    for r in results:
        print(f"{r.name:<12}{r.rate:>10.0f}{r.seconds:>9.2f}{r.cpu_per_action_ms:>16.2f} ms")
    print(f"aim: \u2265 {AIM_RATE:.0f} actions/s")
    for r in results:
        print(f"  {verdict(r.rate >= AIM_RATE)}  {r.name}: {r.rate:.0f} actions/s")


if __name__ == "__main__":
    main()
