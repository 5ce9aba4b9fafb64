"""A POST on a kept-alive HTTP/1.1 connection, made by hand: the request in one write, the
answer's status line and headers read from the socket's bytes.

A server delivering thousands of notifications a second does it in the engine's process, so
the CPU of a POST is the engine's: `http.client` takes about four times what this does (it
writes the headers and the body apart, and reads the answer's headers with the email parser).
Only what a notification needs: a POST with a body, an answer whose body is read (by its
length, chunked, or up to the close) and dropped.

Once connected, a plain socket waits in the kernel (``SO_RCVTIMEO``, ``SO_SNDTIMEO``)
rather than in Python, whose time-out polls before every read and write: a POST is then two
system calls, a write and a read (a TLS socket keeps Python's). The request's first lines,
the same for every POST to one path, are made once.
"""

from __future__ import annotations

import socket
import ssl
import struct
from functools import cache
from urllib.parse import SplitResult

# Bytes of an answer's status line and headers, at most.
MAX_HEAD = 65536
# Bytes of an answer's body read to keep the connection; a longer body closes it instead.
MAX_BODY = 1 << 20


class Closed(ConnectionResetError):
    """The receiver closed the connection before it answered."""


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def _checked(text: str, what: str) -> str:
    if not text or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError(f"the URL's {what} has spaces or control characters")
    return text


class Connection:
    """One receiver's connection, opened at the first POST and kept while it answers."""

    def __init__(self, parts: SplitResult, timeout: float) -> None:
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = parts.scheme == "https"
        self._netloc = _checked(parts.netloc.rpartition("@")[2], "host")
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""
        # The request's lines before its own headers, by path.
        self._starts: dict[str, str] = {}

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer = b""

    def post(self, target: str, headers: dict[str, str], body: bytes) -> tuple[int, bool]:
        """POST ``body``; the answer's status, and whether the connection is over."""
        start = self._starts.get(target)
        if start is None:
            start = f"POST {_checked(target, 'path')} HTTP/1.1\r\nHost: {self._netloc}\r\n"
            self._starts[target] = start
        head = start + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if self._sock is None:
            self._sock = self._connect()
        try:
            self._sock.sendall(head.encode("latin-1") + b"\r\n" + body)
            return self._answer()
        except BlockingIOError:
            raise TimeoutError("timed out") from None  # the kernel's time-out

    def _answer(self) -> tuple[int, bool]:
        status, fields = self._head()
        while 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            status, fields = self._head()
        over = "close" in fields.get("connection", "").lower()
        if "chunked" in fields.get("transfer-encoding", "").lower():
            self._chunked()
        elif "content-length" in fields:
            length = int(fields["content-length"])
            if length > MAX_BODY:
                return status, True
            self._take(length)
        else:  # a body that ends with the connection
            return status, True
        return status, over

    def _connect(self) -> socket.socket:
        made = socket.create_connection((self._host, self._port), timeout=self._timeout)
        made.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._tls:
            # Python's time-out: a read that the kernel's would end looks like the end of
            # the connection to the TLS layer (an empty read).
            return _tls().wrap_socket(made, server_hostname=self._host)
        seconds = max(self._timeout, 0.001)
        waited = struct.pack("ll", int(seconds), int(seconds % 1 * 1_000_000))
        made.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, waited)
        made.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, waited)
        made.settimeout(None)
        return made

    def _fill(self) -> None:
        assert self._sock is not None
        got = self._sock.recv(65536)
        if not got:
            raise Closed("the receiver closed the connection")
        self._buffer += got

    def _line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD:
                raise ValueError("the answer's line is too long")
            self._fill()
        line, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
        return line

    def _head(self) -> tuple[int, dict[str, str]]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD:
                raise ValueError("the answer's headers are too long")
            self._fill()
        head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/") or not rest[:3].isdigit():
            raise ValueError(f"not an HTTP answer: {status_line[:80]!r}")
        fields = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        return int(rest[:3]), fields

    def _take(self, length: int) -> None:
        while len(self._buffer) < length:
            self._fill()
        self._buffer = self._buffer[length:]

    def _chunked(self) -> None:
        read = 0
        while True:
            size = int(self._line().split(b";")[0].strip() or b"x", 16)
            if size == 0:
                while self._line():  # trailers, up to the empty line
                    pass
                return
            read += size
            if read > MAX_BODY:
                raise ValueError("the answer's body is too long")
            self._take(size)
            self._line()
