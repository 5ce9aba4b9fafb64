"""AWS JSON 1.1 over HTTP: dispatch on ``X-Amz-Target``, validate, call, answer.

Every response carries ``x-amzn-RequestId``. Errors are ``{"__type", "message"}`` with the
code also in ``x-amzn-ErrorType``; HTTP 400, 409 for ``ConflictException``, and 500
``InternalFailure`` for anything unexpected, which is logged with its traceback and never
shown on the wire. ``Server-Timing: app;dur=<ms>`` tells how long the server itself took.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.api.body import parse
from conveyor.api.context import Context
from conveyor.api.delivery import webhook_routes
from conveyor.api.handlers import handlers
from conveyor.api.logs import make_log_endpoint
from conveyor.api.model import TARGET_PREFIX, operation, operation_names
from conveyor.api.offload import Offloader
from conveyor.api.pagination import PageTokens
from conveyor.api.validate import summarize, validate_input
from conveyor.api.wiretimes import in_milliseconds
from conveyor.console import console_routes
from conveyor.domain.errors import (
    ConveyorError,
    InternalFailure,
    UnknownOperationException,
    UnrecognizedClientException,
    UnsupportedOperationException,
    ValidationException,
)
from conveyor.engine.services import Services

log = logging.getLogger("conveyor.api")
CONTENT_TYPE = "application/x-amz-json-1.1"


def _headers(request_id: str, started: float) -> dict[str, str]:
    elapsed = (time.perf_counter() - started) * 1000
    return {"x-amzn-RequestId": request_id, "Server-Timing": f"app;dur={elapsed:.3f}"}


def _error_response(error: ConveyorError, request_id: str, started: float) -> Response:
    body = json.dumps({"__type": error.code, "message": error.message})
    headers = _headers(request_id, started)
    headers["x-amzn-ErrorType"] = error.code
    return Response(body, status_code=error.status, media_type=CONTENT_TYPE, headers=headers)


def _operation_of(target: str | None) -> str:
    prefix, _, name = (target or "").partition(".")
    if prefix != TARGET_PREFIX or name not in operation_names():
        raise UnknownOperationException(f"Operation '{target}' is not a CodePipeline operation.")
    return name


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
# The longest access key id AWS issues (IAM's AccessKeyId shape); the caller's ARN, and the
# owner of the jobs it claims, are stored in columns sized for it.
MAX_ACCESS_KEY = 128


def _caller(request: Request, services: Services) -> str:
    """The caller as an IAM user ARN named after the access key that signed the request."""
    match = _CREDENTIAL.search(request.headers.get("authorization", ""))
    user = match[1] if match else "anonymous"
    if len(user) > MAX_ACCESS_KEY:
        raise UnrecognizedClientException(
            "The security token included in the request is invalid: the access key in the"
            f" Credential of the Authorization header has {len(user)} characters, more than"
            f" the {MAX_ACCESS_KEY} an access key may have."
        )
    return f"arn:aws:iam::{services.scope.account}:user/{user}"


def check_input(name: str, params: dict[str, Any]) -> None:
    """Raise the API's `ValidationException` for ``params`` that the model of operation
    ``name`` refuses (the console checks its forms with it too)."""
    errors = validate_input(operation(name).input_shape, params)
    if errors:
        raise ValidationException(summarize(errors))


def _is_read(name: str) -> bool:
    return name.startswith(("Get", "List"))


def create_app(
    services: Services, logs: Path | None = None, extra_routes: Sequence[BaseRoute] = ()
) -> ASGIApp:
    """The ASGI app: the CodePipeline API on ``POST /``, ``/health``, action logs from the
    folder ``logs`` on ``/logs/<actionExecutionId>``, and ``extra_routes`` (git-host
    deliveries)."""
    table = handlers()
    tokens = PageTokens(services.token_key)
    # Every handler runs off the event loop, in a few threads (see `conveyor.api.offload`).
    offload = Offloader()

    async def dispatch(request: Request) -> Response:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        try:
            name = _operation_of(request.headers.get("x-amz-target"))
            params = parse(await request.body())
            check_input(name, params)
            handler = table.get(name)
            if handler is None:
                raise UnsupportedOperationException(f"Conveyor does not implement {name} yet.")
            context = Context(services, tokens, request_id, _caller(request, services))
            result = await offload(handler, context, params, write=not _is_read(name))
        except ConveyorError as error:
            return _error_response(error, request_id, started)
        except Exception:
            log.exception("request %s failed", request_id)
            return _error_response(
                InternalFailure("The server hit an unexpected error; see its log."),
                request_id,
                started,
            )
        return Response(
            json.dumps(in_milliseconds(operation(name).output_shape, result) or {}),
            media_type=CONTENT_TYPE,
            headers=_headers(request_id, started),
        )

    async def health(_: Request) -> Response:
        """The database's state as last seen, without waiting on it: 503 while it is away."""
        state = services.health.current
        return JSONResponse(state.body(), status_code=200 if state.ok else 503)

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        *webhook_routes(services, offload),
        *console_routes(services, logs, check_input),
    ]
    if logs is not None:
        routes.append(
            Route(
                "/logs/{action_execution_id}",
                make_log_endpoint(services, logs, offload),
                methods=["GET"],
            )
        )
    routes.extend(extra_routes)
    site = Starlette(routes=routes)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /`` straight to the dispatcher, which answers every error itself; the rest
        of the site through Starlette's routing and middleware."""
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/":
            response = await dispatch(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await site(scope, receive, send)

    return app
