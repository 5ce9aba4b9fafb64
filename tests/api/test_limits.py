"""The server against clients that send too much, too slowly, or nothing at all."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from conveyor import listener
from conveyor.api.limits import MAX_BODY_BYTES
from conveyor.server import Running
from conveyor.store import Tx
from tests.support.engine import wait_for

TARGET = "CodePipeline_20150709.ListPipelines"


def address(server: Running) -> tuple[str, int]:
    parts = urlsplit(server.endpoint)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def post(server: Running, body: bytes | Iterator[bytes], **headers: str) -> Any:
    connection = http.client.HTTPConnection(*address(server), timeout=30)
    try:
        connection.request(
            "POST",
            "/",
            body=body,
            headers={
                "X-Amz-Target": TARGET,
                "Content-Type": "application/x-amz-json-1.1",
                **headers,
            },
        )
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    return response, json.loads(payload)


def test_a_body_over_the_limit_is_refused_with_413(server: Running) -> None:
    declared, error = post(server, b"{}", **{"Content-Length": str(MAX_BODY_BYTES + 1)})
    assert declared.status == 413
    assert declared.headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
    assert error["__type"] == "RequestEntityTooLargeException"
    assert str(MAX_BODY_BYTES) in error["message"]
    # Without a length given: the body is counted as it arrives.
    # The server answers and closes as soon as the limit is passed; a client still sending
    # may then see the connection reset before it reads the answer, which refuses it too.
    chunk = b" " * (1024 * 1024)
    try:
        streamed, error = post(server, iter([chunk] * 11))
    except (ConnectionResetError, BrokenPipeError):
        pass
    else:
        assert streamed.status == 413
        assert error["__type"] == "RequestEntityTooLargeException"
    # A body within the limit is served.
    ok, answer = post(server, b"{}" + b" " * (MAX_BODY_BYTES - 2))
    assert ok.status == 200 and answer == {"pipelines": []}


def test_a_client_that_disconnects_mid_upload_leaves_no_traceback(
    server: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with socket.create_connection(address(server)) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            b"X-Amz-Target: " + TARGET.encode() + b'\r\n\r\n{"pipe'
        )
    wait_for(
        lambda: any("disconnected before" in r.getMessage() for r in caplog.records),
        what="the server to notice the disconnect",
    )
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize("sent", [b"", b"GET /health HTTP/1.1\r\nHost: x\r\n"])
def test_a_silent_connection_is_closed(
    server: Running, monkeypatch: pytest.MonkeyPatch, sent: bytes
) -> None:
    """A connection that sends no request, or stops halfway through its headers, is closed
    by the server (here after a short deadline) instead of being held open for ever."""
    monkeypatch.setattr(listener._Protocol, "header_seconds", 0.2)
    with socket.create_connection(address(server)) as sock:
        sock.sendall(sent)
        sock.settimeout(20)
        assert sock.recv(1024) == b""  # closed; a socket left open times out here


def test_health_answers_while_a_handler_waits_on_the_database(
    server: Running, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read held inside the store (by the test's gate) must not hold up other requests."""
    store = server.application.store
    entered, gate = threading.Event(), threading.Event()
    original = store.read

    def held_read() -> AbstractContextManager[Tx]:
        if threading.current_thread().name != "conveyor-health":
            entered.set()
            gate.wait(30)
        return original()

    monkeypatch.setattr(store, "read", held_read)
    errors: list[ClientError] = []

    def read() -> None:
        try:
            client.get_pipeline(name="missing")
        except ClientError as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert entered.wait(20), "the read never reached the store"
        with urllib.request.urlopen(f"{server.endpoint}/health", timeout=20) as response:
            assert json.loads(response.read()) == {"status": "ok"}
        assert reader.is_alive(), "the held read finished before /health answered"
    finally:
        gate.set()
        reader.join(30)
    assert [e.response["Error"]["Code"] for e in errors] == ["PipelineNotFoundException"]


def test_endless_headers_are_cut_off(server: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers past the limit close the connection at once, well before the header deadline
    (here longer than the socket's timeout, so only the limit can close it)."""
    monkeypatch.setattr(listener._Protocol, "header_seconds", 120.0)
    closed = False
    with socket.create_connection(address(server)) as sock:
        sock.settimeout(20)
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            for _ in range(1000):
                sock.sendall(b"X-Padding: " + b"x" * 1000 + b"\r\n")
            closed = sock.recv(1024) == b""
        except (ConnectionResetError, BrokenPipeError):
            closed = True
    assert closed
