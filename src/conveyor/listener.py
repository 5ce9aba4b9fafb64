"""The HTTP listener: the bound socket, and uvicorn configured so no client can exhaust it.

uvicorn closes a connection that stays idle after a response (``timeout_keep_alive``) and
answers 503 past ``limit_concurrency``, but it waits forever for the headers of a request
that a client started and never finished, or never started at all: 22,000 silent connections
then take every file descriptor. The protocol here gives each request's headers a deadline
from the moment the connection opens or the previous response ends, closes a connection
whose headers grow past ``MAX_HEADER_BYTES`` (httptools sets no limit), and refuses connections
beyond the limit at once instead of holding them open. The request body's size is the
dispatcher's concern (a 413 in the API's own error format).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Seconds a connection may stay idle between requests.
KEEP_ALIVE_SECONDS = 5
# Seconds a client has to send a request's headers, from connecting or the last response.
HEADER_SECONDS = 10.0
# Connections at once; requests beyond it are answered 503, connections far beyond it closed.
MAX_CONNECTIONS = 1000
# The most a request line and headers may take (h11's default limit too).
MAX_HEADER_BYTES = 16 * 1024


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header-read deadline and a hard connection cap."""

    header_seconds = HEADER_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        # Bytes received while waiting for the current request's headers.
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limit = self.limit_concurrency
        if limit is not None and len(self.connections) > 2 * limit:
            # Far past the limit: not even a 503, the descriptor is what is short.
            transport.close()
            return
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        waiting = self._header_deadline is not None
        super().data_received(data)
        if waiting and self._header_deadline is not None:  # the headers are still incomplete
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES:
                self._cancel_deadline()
                self.transport.close()

    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._cancel_deadline()
        self._header_bytes = 0
        self._header_deadline = self.loop.call_later(self.header_seconds, self._too_slow)

    def _cancel_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()


def config(app: Any, host: str, port: int, *, max_connections: int = MAX_CONNECTIONS) -> Any:
    """uvicorn's settings for Conveyor: quiet (Conveyor logs for itself), limited."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_Protocol,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=max_connections,
    )


def bind(host: str, port: int) -> socket.socket:
    """The listening address, taken before the server touches anything else: a port in use
    is an ``OSError`` here, before any recovery has run."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock
