"""A `conveyor server` with browsers watching it still stops at once: its event streams end."""

from __future__ import annotations

import http.client
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.e2e.serverproc import server_process


def test_a_server_with_open_event_streams_stops_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with server_process(home) as (endpoint, process):
        parts = urlsplit(endpoint)
        streams = []
        for path in ("/console/events", "/console/events?pipeline=app"):
            connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
            connection.request("GET", path)
            response = connection.getresponse()
            assert response.status == 200
            assert b": open" in response.readline() + response.readline() + response.readline()
            streams.append((connection, response))
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        for _, response in streams:
            assert response.read() is not None  # the server ends each stream
        assert process.wait(timeout=15) == 0
        took = time.monotonic() - started
        for connection, _ in streams:
            connection.close()
    # uvicorn waits up to 10 s for responses under way; the streams must not make it wait.
    assert took < 5, f"the server took {took:.1f} s to stop"
