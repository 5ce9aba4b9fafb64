"""The event stream: committed changes pushed as Server-Sent Events, on both databases."""

from __future__ import annotations

import asyncio
import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conveyor.console.live import Hub
from conveyor.server import Running
from tests.conftest import make_client
from tests.support.engine import (
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_status,
)


@contextmanager
def listening(url: str, **headers: str) -> Iterator[queue.Queue[tuple[float, dict[str, Any]]]]:
    """Messages of the stream as (arrival time, data), read on a thread."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    connection.request("GET", f"{parts.path}?{parts.query}", headers=headers)
    response = connection.getresponse()
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    messages: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
    opened = threading.Event()

    def read() -> None:
        seq = None
        try:
            while line := response.readline().decode():
                line = line.rstrip("\n")
                if line == ": open":
                    opened.set()
                elif line.startswith("id: "):
                    seq = int(line[4:])
                elif line.startswith("data: "):
                    messages.put((time.perf_counter(), {**json.loads(line[6:]), "seq": seq}))
        except (OSError, ValueError):
            return  # the test closed the stream

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(10), "the stream did not open"
    try:
        yield messages
    finally:
        assert connection.sock is not None
        connection.sock.shutdown(socket.SHUT_RDWR)
        reader.join(timeout=5)
        connection.close()


def until(
    messages: queue.Queue[tuple[float, dict[str, Any]]], **wanted: Any
) -> tuple[float, dict[str, Any]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        arrived, data = messages.get(timeout=max(0.01, deadline - time.monotonic()))
        if all(data.get(k) == v for k, v in wanted.items()):
            return arrived, data
    raise AssertionError(f"no message with {wanted}")


def test_a_change_reaches_the_stream_at_once(server: Running, tmp_path: Path) -> None:
    api = make_client(server.endpoint)
    repo = tmp_path / "repo"
    make_repo(repo)
    api.create_pipeline(pipeline=declaration("app", repo, stage("Build", commands("Make", "true"))))
    assert wait_status(api, "app", latest_execution_id(api, "app"), "Succeeded") == "Succeeded"
    api.create_pipeline(
        pipeline=declaration("other", repo, stage("Build", commands("Make", "true")))
    )
    with listening(f"{server.endpoint}/console/events?pipeline=app") as messages:
        before = time.perf_counter()
        execution_id = api.start_pipeline_execution(name="app")["pipelineExecutionId"]
        answered = time.perf_counter()
        arrived, data = until(messages, type="pipeline", state="STARTED")
        assert data["execution"] == execution_id and data["pipeline"] == "app"
        print(
            f"\nstart to event: {(arrived - before) * 1000:.1f} ms (API answered in {(answered - before) * 1000:.1f} ms)"
        )
        # 100 ms is the aim (bench/console.py measures it); a test does not time the machine.
        _, done = until(messages, type="pipeline", state="SUCCEEDED")
        assert done["execution"] == execution_id
    seen_pipelines = set()
    with listening(f"{server.endpoint}/console/events?after=0&pipeline=app") as replayed:
        # From the start: every event of the pipeline again, and none of the other's.
        until(replayed, type="pipeline", execution=execution_id, state="SUCCEEDED")
        while not replayed.empty():
            seen_pipelines.add(replayed.get()[1]["pipeline"])
    assert seen_pipelines <= {"app"}


def test_a_stream_resumes_after_last_event_id(server: Running, tmp_path: Path) -> None:
    api = make_client(server.endpoint)
    repo = tmp_path / "repo"
    make_repo(repo)
    api.create_pipeline(pipeline=declaration("app", repo, stage("Build", commands("Make", "true"))))
    first = latest_execution_id(api, "app")
    wait_status(api, "app", first, "Succeeded")
    with listening(f"{server.endpoint}/console/events?after=0") as messages:
        _, ended = until(messages, type="pipeline", execution=first, state="SUCCEEDED")
    with listening(
        f"{server.endpoint}/console/events", **{"Last-Event-ID": str(ended["seq"])}
    ) as resumed:
        second = api.start_pipeline_execution(name="app")["pipelineExecutionId"]
        _, data = resumed.get(timeout=20)
        assert data["execution"] == second  # nothing of the first execution again
        assert data["seq"] > ended["seq"]


def test_a_stream_whose_loop_closed_does_not_trouble_the_committing_thread() -> None:
    hub = Hub()
    loop = asyncio.new_event_loop()
    waiter = loop.run_until_complete(_subscribe(hub))
    loop.close()
    hub.changed()  # would raise "Event loop is closed" into the engine's commit
    hub.changed()
    assert waiter not in hub._waiters


async def _subscribe(hub: Hub) -> tuple[object, object]:
    return hub.subscribe()
