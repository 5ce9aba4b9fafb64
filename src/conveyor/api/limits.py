"""The limits on a request's body: its size and the time it takes to arrive.

A body is read whole before the dispatcher sees it, so a body over ``MAX_BODY_BYTES`` is
answered 413 (``RequestEntityTooLargeException``) as soon as its size is known, one that
trickles in past ``BODY_SECONDS`` is answered 408, and a client that disconnects while
uploading is simply gone: there is nobody to answer and nothing to log. Errors have the shape
the protocol layer gives every error: ``{"__type", "message"}`` and ``x-amzn-ErrorType``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.domain.errors import (
    ConveyorError,
    RequestEntityTooLargeException,
    RequestTimeoutException,
)

log = logging.getLogger("conveyor.api")
# The largest request the model allows in practice is an UpdatePipeline of a large pipeline:
# 50 stages of up to 50 actions whose configuration values take up to 1,000 characters each
# is about 3 MB of JSON. 10 MiB leaves room for that and turns away anything larger.
MAX_BODY_BYTES = 10 * 1024 * 1024
# Seconds a client has to send a whole body once its headers arrived.
BODY_SECONDS = 60.0
CONTENT_TYPE = "application/x-amz-json-1.1"
# Told of each refusal (the request's scope, the error, its request id): the audit trail.
Refused = Callable[[Scope, ConveyorError, str], None]


class _Disconnected(Exception):
    pass


def limit_bodies(
    app: ASGIApp,
    *,
    max_bytes: int = MAX_BODY_BYTES,
    seconds: float = BODY_SECONDS,
    streamed: tuple[str, ...] = (),
    refused: Refused | None = None,
) -> ASGIApp:
    """``app``, seeing only bodies within the limits, read whole before it runs; except the
    requests to paths under ``streamed`` (artifact uploads), which stream their bodies.
    ``refused`` is told of every request refused here, before its body is read further."""

    async def refuse(scope: Scope, send: Send, error: ConveyorError) -> None:
        request_id = str(uuid.uuid4())
        if refused is not None:
            refused(scope, error, request_id)
        await _refuse(send, error, request_id)

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD")
            or (streamed and str(scope.get("path", "")).startswith(streamed))
        ):
            await app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > max_bytes:
            await refuse(scope, send, _too_large(max_bytes))
            return
        try:
            async with asyncio.timeout(seconds):
                body = await _read(receive, max_bytes)
        except _Disconnected:
            log.info("a client disconnected before it sent its whole request")
            return
        except TimeoutError:
            await refuse(
                scope,
                send,
                RequestTimeoutException(f"The request body did not arrive in {seconds} s."),
            )
            return
        if body is None:
            await refuse(scope, send, _too_large(max_bytes))
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return limited


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read(receive: Receive, max_bytes: int) -> bytes | None:
    """The whole body, or None once it is larger than ``max_bytes``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(max_bytes: int) -> ConveyorError:
    return RequestEntityTooLargeException(
        f"The request body is larger than the {max_bytes} bytes this server accepts."
    )


async def _refuse(send: Send, error: ConveyorError, request_id: str) -> None:
    """Answer ``error`` and close the connection: the rest of the body is not read."""
    body = json.dumps({"__type": error.code, "message": error.message}).encode()
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-amzn-requestid", request_id.encode()),
        (b"x-amzn-errortype", error.code.encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
