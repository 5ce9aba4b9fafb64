"""AWS JSON 1.1 over HTTP: dispatch on ``X-Amz-Target``, validate, call, answer.

Every response carries ``x-amzn-RequestId``. Errors are ``{"__type", "message"}`` with the
code also in ``x-amzn-ErrorType``; HTTP 400, 409 for ``ConflictException``, and 500
``InternalFailure`` for anything unexpected, which is logged with its traceback and never
shown on the wire. ``Server-Timing: app;dur=<ms>`` tells how long the server itself took.
The same operations also answer in Smithy's RPC v2 CBOR protocol (`conveyor.api.cbor`) on
``/service/<target prefix>/operation/<name>``, as recent SDKs call CodeBuild, and
CodeStar Notifications' in REST-JSON, by method and path (`conveyor.api.restjson`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.api import cbor, restjson
from conveyor.api.body import parse
from conveyor.api.context import Context
from conveyor.api.delivery import webhook_routes
from conveyor.api.guard import Guard
from conveyor.api.handlers import (
    codebuild_handlers,
    handlers,
    notification_handlers,
    trail_handlers,
)
from conveyor.api.logs import make_log_endpoint
from conveyor.api.metrics import Metered, metrics_route
from conveyor.api.model import (
    CLOUDTRAIL,
    CODEBUILD,
    NOTIFICATIONS,
    SERVICE,
    SERVICES,
    operation,
    operation_names,
)
from conveyor.api.offload import Offloader
from conveyor.api.pagination import PageTokens
from conveyor.api.validate import summarize, validate_input
from conveyor.api.wiretimes import in_milliseconds
from conveyor.auth.gate import Access
from conveyor.console import console_routes
from conveyor.domain.errors import (
    ConveyorError,
    InternalFailure,
    UnknownOperationException,
    UnsupportedOperationException,
    ValidationException,
)
from conveyor.domain.ids import unique_id
from conveyor.engine.services import Services

log = logging.getLogger("conveyor.api")
CONTENT_TYPE = "application/x-amz-json-1.1"


def _headers(request_id: str, started: float) -> dict[str, str]:
    elapsed = (time.perf_counter() - started) * 1000
    return {"x-amzn-RequestId": request_id, "Server-Timing": f"app;dur={elapsed:.3f}"}


def _error_response(
    error: ConveyorError,
    request_id: str,
    started: float,
    in_cbor: bool = False,
    rest: Rest | None = None,
) -> Response:
    fields = {"__type": error.code, "message": error.message}
    headers = _headers(request_id, started)
    headers["x-amzn-ErrorType"] = error.code
    if rest is not None:
        status = restjson.status_of(error, rest[0].service)
        text = json.dumps(fields)
        return Response(text, status, media_type=restjson.CONTENT_TYPE, headers=headers)
    if in_cbor:
        headers["smithy-protocol"] = cbor.PROTOCOL
        body = cbor.encode(None, fields)
        return Response(body, error.status, media_type=cbor.CONTENT_TYPE, headers=headers)
    return Response(json.dumps(fields), error.status, media_type=CONTENT_TYPE, headers=headers)


def _answer(
    shape: Any, result: Any, request_id: str, started: float, in_cbor: bool, rest: bool = False
) -> Response:
    answer = in_milliseconds(shape, result) or {}
    headers = _headers(request_id, started)
    if rest:
        return Response(json.dumps(answer), media_type=restjson.CONTENT_TYPE, headers=headers)
    if in_cbor:
        headers["smithy-protocol"] = cbor.PROTOCOL
        return Response(cbor.encode(shape, answer), media_type=cbor.CONTENT_TYPE, headers=headers)
    return Response(json.dumps(answer), media_type=CONTENT_TYPE, headers=headers)


def _answered(
    handler: Callable[[Context, Any], Any],
    context: Context,
    params: Any,
    answer: tuple[Any, str, float, bool, bool],
) -> tuple[Any, Response]:
    """Run the handler and encode its answer (``answer``: `_answer`'s other arguments), both
    off the event loop: a large answer's encoding would hold up every other connection."""
    result = handler(context, params)
    shape, request_id, started, in_cbor, rest = answer
    return result, _answer(shape, result, request_id, started, in_cbor, rest)


def _is_api(path: str) -> bool:
    return path == "/" or path.startswith("/service/")


Rest = tuple[restjson.Route, dict[str, str]]


def _api_request(scope: Scope) -> tuple[bool, Rest | None] | None:
    """Whether a request is the API's, and how it names its operation: (in CBOR, None) for
    ``POST /`` and ``POST /service/…``, (False, the route and path labels) in REST-JSON."""
    if scope["type"] != "http":
        return None
    if scope["method"] == "POST" and _is_api(scope["path"]):
        return scope["path"] != "/", None
    # The path as sent: a label may hold an escaped '/' (an ARN's), which decoding would lose.
    raw = scope.get("raw_path")
    path = raw.decode("latin-1").split("?", 1)[0] if raw else scope["path"]
    rest = restjson.route(scope["method"], path)
    return None if rest is None else (False, rest)


def _target(request: Request, in_cbor: bool) -> str | None:
    """The operation a request names: by its path in CBOR, else by its X-Amz-Target."""
    if in_cbor:
        return cbor.path_target(request.url.path)
    return request.headers.get("x-amz-target")


def _operation_of(target: str | None) -> tuple[str, str]:
    """The service whose model the target's prefix names, and the operation."""
    prefix, _, name = (target or "").rpartition(".")
    service = SERVICES.get(prefix)
    if service is None or name not in operation_names(service):
        raise UnknownOperationException(f"Operation '{target}' is not an operation served here.")
    return service, name


def _named(request: Request, in_cbor: bool, rest: Rest | None) -> tuple[str | None, str, str]:
    """The request's target (None in REST-JSON), and its service and operation as far as
    they are known before the target is checked."""
    if rest is not None:
        return None, rest[0].service, rest[0].name
    target = _target(request, in_cbor)
    return target, SERVICE, target or ""


def _params(
    request: Request,
    body: bytes,
    in_cbor: bool,
    rest: Rest | None,
    service: str,
    name: str,
) -> dict[str, Any]:
    """The operation's input: from the body, and in REST-JSON from the path and query too."""
    if rest is not None:
        query = {k: request.query_params.getlist(k) for k in request.query_params}
        return restjson.params_of(operation(name, service), rest[1], query, parse(body))
    return cbor.decode(body) if in_cbor else parse(body)


def check_input(name: str, params: dict[str, Any], service: str = SERVICE) -> None:
    """Raise the API's `ValidationException` for ``params`` that the model of operation
    ``name`` refuses (the console checks its forms with it too)."""
    errors = validate_input(operation(name, service).input_shape, params)
    if errors:
        raise ValidationException(summarize(errors))


def _is_read(name: str) -> bool:
    return name.startswith(("Get", "List", "BatchGet"))


def _metered_routes(
    services: Services, metered: Metered | None, guard: Guard, offload: Offloader
) -> list[BaseRoute]:
    if metered is None:
        return []
    recorder, workers, token = metered.recorder, metered.workers, metered.token
    return [metrics_route(services.store, recorder, workers, guard, offload, token)]


def create_app(
    services: Services,
    logs: Path | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    access: Access | None = None,
    metered: Metered | None = None,
) -> ASGIApp:
    """The ASGI app: the CodePipeline API on ``POST /``, ``/health``, the web console, action
    logs from the folder ``logs`` on ``/logs/<actionExecutionId>``, and ``extra_routes``
    (git-host deliveries); ``access`` checks who calls, what they may do, and keeps the
    audit trail (`conveyor.auth`); with ``metered``, requests are counted and ``/metrics``
    serves the counts (`conveyor.api.metrics`)."""
    tables = {
        SERVICE: handlers(),
        CLOUDTRAIL: trail_handlers(),
        CODEBUILD: codebuild_handlers(),
        NOTIFICATIONS: notification_handlers(),
    }
    guard = Guard(services, access, metered.recorder if metered is not None else None)
    tokens = PageTokens(services.token_key)
    # Every handler runs off the event loop, in a few threads (see `conveyor.api.offload`).
    offload = Offloader()

    async def dispatch(
        request: Request,
        in_cbor: bool = False,
        rest: Rest | None = None,
    ) -> Response:
        started = time.perf_counter()
        request_id = unique_id()
        target, service, name = _named(request, in_cbor, rest)
        caller = params = resource = None
        try:
            service, name = (service, name) if rest else _operation_of(target)
            body = await request.body()
            caller = await guard.caller(request, body, service, offload)
            params = _params(request, body, in_cbor, rest, service, name)
            check_input(name, params, service)
            resource = guard.resource(service, name, params)
            await guard.authorize(caller, service, name, resource, offload)
            handler = tables[service].get(name)
            if handler is None:
                raise UnsupportedOperationException(f"Conveyor does not implement {name} yet.")
            context = Context(services, tokens, request_id, caller.arn, caller, access)
            result, response = await offload(
                _answered,
                handler,
                context,
                params,
                (
                    operation(name, service).output_shape,
                    request_id,
                    started,
                    in_cbor,
                    rest is not None,
                ),
                write=not _is_read(name),
            )
        except Exception as exc:
            if isinstance(exc, ConveyorError):
                error = exc
            else:
                log.exception("request %s failed", request_id)
                error = InternalFailure("The server hit an unexpected error; see its log.")
            guard.record(
                request,
                request_id,
                service,
                name,
                caller,
                params,
                resource,
                error=error,
                started=started,
            )
            return _error_response(error, request_id, started, in_cbor, rest)
        guard.record(
            request, request_id, service, name, caller, params, resource, result, started=started
        )
        return response

    async def health(_: Request) -> Response:
        """The database's state as last seen, without waiting on it: 503 while it is away."""
        state = services.health.current
        return JSONResponse(state.body(), status_code=200 if state.ok else 503)

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        *webhook_routes(services, offload),
        *console_routes(services, logs, check_input, access),
    ]
    if logs is not None:
        routes.append(
            Route(
                "/logs/{action_execution_id}",
                guard.protect_logs(make_log_endpoint(services, logs, offload), offload),
                methods=["GET"],
            )
        )
    routes.extend([*_metered_routes(services, metered, guard, offload), *extra_routes])
    site = Starlette(routes=routes)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /`` straight to the dispatcher, which answers every error itself; the rest
        of the site through Starlette's routing and middleware."""
        refusal = guard.misdirected(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
        elif (api := _api_request(scope)) is not None:
            response = await dispatch(Request(scope, receive), *api)
            await response(scope, receive, send)
        else:
            await site(scope, receive, send)

    return app
