"""A local HTTP receiver for notifications: records every POST, and answers the first
``failures`` of them with ``status``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    # The request's path as sent (percent-encoding kept).
    path: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    failures: int = 0
    status: int = 503
    got: list[Received] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    # While set, the receiver holds every request without answering (a target that hangs).
    hanging: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    # Cleared, the receiver answers nothing until it is set again (a slow target); ``arrived``
    # is set once a request has come.
    answering: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.answering.set()


@contextmanager
def receiving(failures: int = 0, status: int = 503) -> Iterator[Receiver]:
    lock = threading.Lock()
    receiver = Receiver("", failures, status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if receiver.hanging.is_set():
                receiver.got.append(Received(dict(self.headers.items()), body, self.path))
                receiver.answered.append(0)
                receiver.released.wait(120)
                return
            receiver.arrived.set()
            receiver.answering.wait(60)
            with lock:
                receiver.got.append(Received(dict(self.headers.items()), body, self.path))
                failing = receiver.failures > 0
                receiver.failures -= 1 if failing else 0
                code = receiver.status if failing else 200
                receiver.answered.append(code)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()
