"""The fleet: dispatch on PostgreSQL with 2 servers and 8 remote workers, against one server.

Everything runs on one PostgreSQL database of the benchmark's own (made on the server
``CONVEYOR_BENCH_DATABASE_URL``, else ``CONVEYOR_TEST_DATABASE_URL``, else a local one, and
dropped at the end). The floor is one `conveyor server` with 8 in-process workers. The fleet
is two servers with no workers of their own, their homes' buckets one shared folder, and a
`conveyor worker --concurrency 4` polling each of them (8 at once). Executions are started
on the first server only, so every job the second server's workers take was woken across
servers (LISTEN/NOTIFY).

Two figures each: the median time per action of a pipeline of a Git source and `STEPS`
Commands actions running ``true`` one after the other (the per-action overhead of the fleet
over the floor; aim: at most 2 ms more), and jobs per second with `FAN` such actions side by
side in `RUNS` executions started at once (PARALLEL mode). For the artifact round trips
through the S3 endpoint against local disk, see ``bench/remote.py``.
"""

from __future__ import annotations

import base64
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from _shapes import commands, git_source
from api import HOST, client, endpoint, free_port, subprocess_server
from remote import _healthy, worker
from server import make_repo

STEPS = 10
ROUNDS = 5
FAN = 8
RUNS = 6
AIM_MS = 2.0
ROLE = "arn:aws:iam::000000000000:role/conveyor-bench"

# The servers of one database share a secret key (`conveyor.engine.sharing`).
KEY = base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _base_url() -> str:
    return (
        os.environ.get("CONVEYOR_BENCH_DATABASE_URL")
        or os.environ.get("CONVEYOR_TEST_DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres"
    )


@contextmanager
def database() -> Iterator[str]:
    """A database of the benchmark's own, dropped afterwards."""
    import psycopg

    base = _base_url()
    name = f"conveyor_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def server(home: Path, url: str, settings: str, buckets: Path | None = None) -> Iterator[str]:
    home.mkdir(parents=True)
    if buckets is not None:
        buckets.mkdir(exist_ok=True)
        (home / "buckets").symlink_to(buckets, target_is_directory=True)
    (home / "settings.yaml").write_text(
        f"detect_changes: false\ndatabase_url: {url}\nsecret_key: {KEY}\n{settings}"
    )
    port = free_port()
    args = [sys.executable, "-m", "conveyor", "server", "--host", HOST, "--port", str(port)]
    log = home.parent / f"{home.name}.log"
    with subprocess_server("conveyor", [*args, "--home", str(home)], port, log, _healthy):
        yield endpoint(port)


def sequential(name: str, repo: Path) -> dict[str, Any]:
    steps = [commands(f"Step{i}", "true", run_order=i + 1) for i in range(STEPS)]
    return _pipeline(name, repo, steps, "SUPERSEDED")


def fan(name: str, repo: Path) -> dict[str, Any]:
    return _pipeline(name, repo, [commands(f"Fan{i}", "true") for i in range(FAN)], "PARALLEL")


def _pipeline(name: str, repo: Path, actions: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    return {
        "name": name,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "executionMode": mode,
        "stages": [
            {"name": "Source", "actions": [git_source(str(repo))]},
            {"name": "Work", "actions": actions},
        ],
    }


def _first(pipelines: Any, name: str) -> str:
    while not (
        found := pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]
    ):
        time.sleep(0.01)
    return str(found[0]["pipelineExecutionId"])


def _finish(pipelines: Any, name: str, execution: str) -> None:
    while True:
        status = pipelines.get_pipeline_execution(pipelineName=name, pipelineExecutionId=execution)[
            "pipelineExecution"
        ]["status"]
        if status not in ("InProgress", "Stopping"):
            break
        time.sleep(0.005)
    if status != "Succeeded":
        details = pipelines.list_action_executions(
            pipelineName=name, filter={"pipelineExecutionId": execution}
        )["actionExecutionDetails"]
        failed = [
            f"{d['actionName']}: {d.get('output', {}).get('executionResult', {})}"
            for d in details
            if d["status"] == "Failed"
        ]
        raise RuntimeError(f"{name}: the execution ended {status}: {failed}")


def measure(url: str, repo: Path, label: str) -> tuple[float, float]:
    """(median ms per action of the sequential pipeline, jobs per second side by side)."""
    pipelines = client("codepipeline", url)
    name = f"seq-{label}"
    pipelines.create_pipeline(pipeline=sequential(name, repo))
    _finish(pipelines, name, _first(pipelines, name))  # warms up; not measured
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        _finish(
            pipelines, name, pipelines.start_pipeline_execution(name=name)["pipelineExecutionId"]
        )
        times.append((time.perf_counter() - started) * 1000 / (STEPS + 1))
    wide = f"fan-{label}"
    pipelines.create_pipeline(pipeline=fan(wide, repo))
    _finish(pipelines, wide, _first(pipelines, wide))
    started = time.perf_counter()
    ids = [
        pipelines.start_pipeline_execution(name=wide)["pipelineExecutionId"] for _ in range(RUNS)
    ]
    for execution in ids:
        _finish(pipelines, wide, execution)
    rate = RUNS * (FAN + 1) / (time.perf_counter() - started)
    return statistics.median(times), rate


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-fleet-") as tmp:
        root = Path(tmp)
        repo = root / "repo"
        make_repo(repo)
        with database() as url, server(root / "single", url, "workers: 8\n") as single:
            floor, floor_rate = measure(single, repo, "single")
        settings = "workers: 0\nremote_workers: true\n"
        shared = root / "buckets"
        with database() as url, ExitStack() as stack:
            first = stack.enter_context(server(root / "one", url, settings, shared))
            second = stack.enter_context(server(root / "two", url, settings, shared))
            stack.enter_context(worker(first, root / "worker-one"))
            stack.enter_context(worker(second, root / "worker-two"))
            fleet, fleet_rate = measure(first, repo, "fleet")
    extra = fleet - floor
    print("PostgreSQL for both")
    print(f"per action, 1 server, 8 in-process workers (floor): {floor:.1f} ms")
    print(f"per action, 2 servers, 8 remote workers:          {fleet:.1f} ms ({extra:+.1f} ms)")
    print(f"aim: at most {AIM_MS:.0f} ms more: {'met' if extra <= AIM_MS else 'missed'}")
    print(f"throughput, 1 server, 8 in-process workers: {floor_rate:.0f} jobs/s")
    print(f"throughput, 2 servers, 8 remote workers:    {fleet_rate:.0f} jobs/s")


if __name__ == "__main__":
    main()
