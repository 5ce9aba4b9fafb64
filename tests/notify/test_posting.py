"""A POST on a kept connection, against a receiver that answers exactly the bytes each test
gives: every way an answer's body may end, interim answers, a closed connection, a request
made in one write."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conveyor.notify import posting
from conveyor.notify.posting import Closed, Connection
from conveyor.notify.targets import Destination, Sender, SendFailed, close_connections


@contextmanager
def answering(*answers: bytes | None) -> Iterator[tuple[str, list[bytes]]]:
    """A receiver on one connection: reads each request whole (by its Content-Length) and
    sends the next of ``answers`` (None: closes instead); then closes. The URL, and the
    requests."""
    listener = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            buffer = b""
            for answer in answers:
                while b"\r\n\r\n" not in buffer:
                    buffer += conn.recv(65536)
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                while len(rest) < length:
                    rest += conn.recv(65536)
                got.append(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]
                if answer is None:
                    return
                conn.sendall(answer)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook?x=1", got
    finally:
        thread.join(10)
        listener.close()


def _post(connection: Connection, body: bytes = b'{"n":1}') -> tuple[int, bool]:
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    return connection.post("/hook?x=1", headers, body)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"


def test_answers_of_every_length_keep_the_connection_for_the_next_post() -> None:
    interim = (
        b"HTTP/1.1 100 Continue\r\n\r\n" + b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
    )
    with answering(OK, CHUNKED, interim) as (url, got):
        connection = Connection(urlsplit(url), 5.0)
        try:
            assert _post(connection) == (200, False)
            assert _post(connection) == (201, False)
            assert _post(connection) == (204, False)
        finally:
            connection.close()
    assert len(got) == 3  # on one connection: the receiver accepts only one
    assert got[0].startswith(b"POST /hook?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert got[0].endswith(b'\r\n\r\n{"n":1}')


def test_an_answer_that_closes_says_the_connection_is_over() -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    untold = b"HTTP/1.0 500 Oops\r\n\r\nwhatever follows, up to the close"
    for answer, expected in ((closing, (200, True)), (untold, (500, True))):
        with answering(answer) as (url, _):
            connection = Connection(urlsplit(url), 5.0)
            try:
                assert _post(connection) == expected
            finally:
                connection.close()


def test_a_receiver_that_closes_before_answering_is_told() -> None:
    with answering(None) as (url, _):
        connection = Connection(urlsplit(url), 5.0)
        try:
            with pytest.raises(Closed):
                _post(connection)
        finally:
            connection.close()


def test_a_url_with_spaces_or_controls_is_refused_before_any_write() -> None:
    with pytest.raises(ValueError, match="path"):
        Connection(urlsplit("http://127.0.0.1:9/"), 5.0).post("/a b", {}, b"")
    with pytest.raises(ValueError, match="host"):
        Connection(urlsplit("http://bad\x7fhost/"), 5.0)


def test_the_sender_posts_the_kept_text_and_fails_on_garbage() -> None:
    sender = Sender("http://localhost", {}, "us-east-1", timeout=5)
    with answering(OK, b"SMTP ready\r\n\r\n") as (url, got):
        try:
            sender.send(Destination("Webhook", url), '{"kept":true}')
            with pytest.raises(SendFailed, match="not an HTTP answer"):
                sender.send(Destination("Webhook", url), {"n": 2})
        finally:
            close_connections()
    assert got[0].endswith(b'\r\n\r\n{"kept":true}')
    assert got[1].endswith(b'\r\n\r\n{"n":2}')


def test_a_receiver_that_never_answers_times_out_in_the_kernel() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]))
    thread.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook?x=1"
        connection = Connection(urlsplit(url), timeout=0.2)
        with pytest.raises(TimeoutError, match="timed out"):
            _post(connection)
        thread.join(10)
        # The socket waits in the kernel: no time-out of Python's, which polls first.
        assert connection._sock is not None and connection._sock.gettimeout() is None
        connection.close()
    finally:
        for conn in accepted:
            conn.close()
        listener.close()


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, private


@pytest.mark.parametrize("answer", [OK, None], ids=["answered", "silent"])
def test_a_post_over_tls_is_answered_or_times_out(
    answer: bytes | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _certificate(tmp_path)
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(posting, "_tls", lambda: trusting)
    listener = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []
    done = threading.Event()

    def serve() -> None:
        raw, _ = listener.accept()
        with served.wrap_socket(raw, server_side=True) as conn:
            buffer = b""
            while b'{"n":1}' not in buffer:
                buffer += conn.recv(65536)
            got.append(buffer)
            if answer is not None:
                conn.sendall(answer)
            done.wait(10)  # silent: holds the connection open, answering nothing

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/hook?x=1"
        connection = Connection(urlsplit(url), timeout=0.3)
        if answer is None:
            with pytest.raises(TimeoutError, match="timed out"):
                _post(connection)
        else:
            assert _post(connection) == (200, False)
        assert got and got[0].startswith(b"POST /hook?x=1 HTTP/1.1\r\n")
        connection.close()
    finally:
        done.set()
        thread.join(10)
        listener.close()
