"""A remote worker's calls keep their connections open between calls, and a connection the
server closed while it was idle is replaced without the call failing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conveyor.worker.link import Link


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Connections the server has accepted; with `drop`, each closes after one answer
    # without saying so, as a server does with a connection idle too long.
    connections: list[int] = []
    drop = False

    def setup(self) -> None:
        super().setup()
        self.connections.append(1)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200 if body != b"refuse" else 503)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = self.drop

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def origin() -> Iterator[str]:
    Handler.connections, Handler.drop = [], False
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_calls_share_a_kept_connection(origin: str) -> None:
    link = Link(origin)
    try:
        for n in range(3):
            answer = link.post("/x", f"call {n}".encode(), {}, 5)
            assert (answer.status, answer.body) == (200, f"call {n}".encode())
        refused = link.post("/x", b"refuse", {}, 5)
        assert refused.status == 503
        assert len(Handler.connections) == 1
    finally:
        link.close()


def test_a_connection_the_server_closed_is_replaced(origin: str) -> None:
    Handler.drop = True
    link = Link(origin)
    try:
        assert link.post("/x", b"one", {}, 5).body == b"one"
        assert link.post("/x", b"two", {}, 5).body == b"two"
        assert len(Handler.connections) == 2
    finally:
        link.close()


def test_an_endpoint_nobody_serves_raises_os_error() -> None:
    link = Link("http://127.0.0.1:9")
    with pytest.raises(OSError):
        link.post("/x", b"", {}, 2)
    link.close()
