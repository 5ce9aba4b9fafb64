"""A remote worker's calls to its server over connections kept open between calls.

Every action costs a worker at least one call (its result, which also claims its next job),
and a new connection for each costs a connect, and the server a new connection to set up,
every time. `Link` keeps connections open between calls, as HTTP/1.1 allows (one per call
under way, the idle ones kept for the next calls), and opens another when the server has
closed one (as uvicorn does with a connection idle for a few seconds): a call that finds its
kept connection closed before any answer is sent again once on a new one, which the server
cannot have answered. When the environment sends the endpoint's requests through a proxy
(``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``), each call goes through urllib as before, which
honours it.
"""

from __future__ import annotations

import http.client
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

# What a kept connection that the server closed meanwhile raises as it is used again.
_CLOSED = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str
    body: bytes


class Link:
    """POSTs to one origin (``http://host:port`` or ``https://…``) over kept connections;
    `close` closes them. Raises `OSError` when the server cannot be reached or the connection
    breaks."""

    def __init__(self, origin: str) -> None:
        parts = urlsplit(origin)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._origin = f"{parts.scheme}://{parts.netloc}"
        proxies = urllib.request.getproxies()
        self._proxied = parts.scheme in proxies and not urllib.request.proxy_bypass(parts.netloc)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def post(self, path: str, data: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        if self._proxied:
            return self._through_urllib(path, data, headers, timeout)
        with self._lock:
            kept = self._idle.pop() if self._idle else None
        if kept is not None:
            try:
                return self._send(kept, path, data, headers, timeout)
            except _CLOSED:
                kept.close()  # closed by the server while idle: once more, on a new one
            except BaseException:
                kept.close()
                raise
        connection = self._open(timeout)
        try:
            return self._send(connection, path, data, headers, timeout)
        except BaseException:
            connection.close()
            raise

    def close(self) -> None:
        """Close the idle connections, and each call's as it ends from now on."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _keep(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(connection)
                return
        connection.close()

    def _open(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _send(
        self,
        connection: http.client.HTTPConnection,
        path: str,
        data: bytes,
        headers: Mapping[str, str],
        timeout: float,
    ) -> Answer:
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        try:
            connection.request("POST", path, data, dict(headers))
            response = connection.getresponse()
            body = response.read()
        except http.client.HTTPException as error:
            if isinstance(error, _CLOSED):
                raise
            raise ConnectionError(f"a broken answer from {self._origin}: {error!r}") from error
        if response.will_close:
            connection.close()
        else:
            self._keep(connection)
        return Answer(response.status, response.reason, body)

    def _through_urllib(
        self, path: str, data: bytes, headers: Mapping[str, str], timeout: float
    ) -> Answer:
        request = urllib.request.Request(self._origin + path, data, dict(headers), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return Answer(answer.status, answer.reason, answer.read())
        except urllib.error.HTTPError as error:
            with error:
                return Answer(error.code, str(error.reason), error.read())
