"""Signing in to the console, and deciding what a signed-in user may see and do there.

Without authentication (the default) the console is open, as the API is, and every page says
so. With the server's `auth` setting `required`, every console page, form and event stream
asks for a signed-in user: the sign-in form takes one of the user's access keys (its id and
secret, as `conveyor key create` printed them), checked against the store in constant time;
the browser then keeps a session cookie (the key id and an expiry, signed with the
installation's key, ``HttpOnly`` and ``SameSite=Strict``) for `LIFETIME` seconds, or until
the key is deleted or the user signs out. Each page is decided on the user's policies exactly
as the API operation that reads the same thing (the pipeline page as GetPipelineState, a log
as ListActionExecutions, ...), each form as the operation it performs, and each form is
recorded in the audit trail as that operation, with the console's user agent.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from conveyor.auth.gate import Access, Caller
from conveyor.console.csrf import COOKIE, FIELD
from conveyor.console.formdata import CSRF_REFUSED, read_form
from conveyor.console.render import HEADERS, Renderer
from conveyor.domain.access import resource_of
from conveyor.domain.errors import ConveyorError, UnrecognizedClientException
from conveyor.domain.policy import Decision
from conveyor.engine.services import Services

SESSION = "conveyor_session"
LIFETIME = 12 * 3600  # seconds a sign-in lasts
Endpoint = Callable[[Request], Awaitable[Response]]
# What a page needs: the API operation that reads the same thing, and its resource ARN.
Need = Callable[[Request], tuple[str, str]]


@dataclass
class Call:
    """One form's change as the audit trail records it: who, which operation, on what."""

    caller: Caller | None
    operation: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    resource: str = "*"


class Gate:
    def __init__(self, services: Services, access: Access | None) -> None:
        self.services = services
        self.access = access
        self._key = services.token_key

    @property
    def required(self) -> bool:
        return self.access is not None and self.access.required

    # -- sessions -----------------------------------------------------------------------------

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, f"session:{payload}".encode(), hashlib.sha256).hexdigest()

    def session_for(self, key_id: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + LIFETIME)
        payload = f"{key_id}.{expires}"
        return f"{payload}.{self._sign(payload)}"

    def caller(self, request: Request) -> Caller | None:
        """The signed-in user of ``request`` (reads the store: call it off the event loop);
        None without a valid, unexpired session whose key still exists."""
        if self.access is None:
            return None
        key_id, _, rest = (request.cookies.get(SESSION) or "").partition(".")
        expires, _, signature = rest.partition(".")
        if not key_id or not expires.isdigit():
            return None
        if not hmac.compare_digest(signature, self._sign(f"{key_id}.{expires}")):
            return None
        if int(expires) < time.time():
            return None
        principal = self.access.identities.principal(key_id)
        if principal is None:
            return None
        return Caller(principal.arn, key_id, _source_ip(request), principal)

    def sign_in(self, key_id: str, secret: str, source_ip: str) -> Caller:
        """The user whose access key this is; `UnrecognizedClientException` otherwise."""
        assert self.access is not None
        principal = self.access.identities.principal(key_id) if key_id else None
        # Compared whatever the key, so that a wrong key id takes as long as a wrong secret.
        expected = principal.secret if principal is not None else "-" * 40
        if not hmac.compare_digest(secret.encode(), expected.encode()) or principal is None:
            raise UnrecognizedClientException(
                "The access key id or the secret access key is not right."
            )
        return Caller(principal.arn, key_id, source_ip, principal)

    # -- decisions ----------------------------------------------------------------------------

    def permits(self, caller: Caller | None, operation: str, resource: str) -> bool:
        """Whether the user may (anyone may when sign-in is not required)."""
        if not self.required or self.access is None:
            return True
        if caller is None:
            return False
        decision = self.access.decide(caller, f"codepipeline:{operation}", resource)
        return decision is Decision.ALLOWED

    def authorize(self, caller: Caller | None, operation: str, resource: str) -> None:
        if self.required and self.access is not None and caller is not None:
            self.access.authorize(caller, f"codepipeline:{operation}", resource)

    def form_call(self, call: Call, operation: str, params: dict[str, Any]) -> None:
        """Note the form's operation and authorize it (raises `AccessDeniedException`)."""
        call.operation, call.params = operation, params
        call.resource = resource_of(self.services.scope, operation, params)
        self.authorize(call.caller, operation, call.resource)

    def record(self, request: Request, call: Call, error: ConveyorError | None) -> None:
        """The form's audit record, as the API records the operation."""
        if not self.required or self.access is None or call.caller is None or not call.operation:
            return
        self.access.audit.record(
            event_name=call.operation,
            event_source="codepipeline.amazonaws.com",
            caller=call.caller.identity(self.services.scope.account),
            source_ip=call.caller.source_ip,
            user_agent=f"conveyor-console ({request.headers.get('user-agent', '')})",
            request_id=str(uuid.uuid4()),
            read_only=False,
            resource=call.resource,
            params=call.params,
            response=None,
            error=(error.code, error.message) if error is not None else None,
        )

    def _needed(self, need: Need, request: Request, caller: Caller) -> None:
        operation, resource = need(request)
        self.authorize(caller, operation, resource)

    # -- endpoints ----------------------------------------------------------------------------

    def guard(self, endpoint: Endpoint, need: Need | None = None, *, page: bool = True) -> Endpoint:
        """``endpoint`` for signed-in users only (when sign-in is required), who may perform
        ``need``'s operation on its resource; the user is ``request.state.caller``."""
        if not self.required:
            return endpoint

        async def guarded(request: Request) -> Response:
            caller = await run_in_threadpool(self.caller, request)
            if caller is None:
                if page and request.method == "GET":
                    target = f"{request.url.path}?{request.url.query}".rstrip("?")
                    query = urlencode({"next": target})
                    return RedirectResponse(f"/console/sign-in?{query}", status_code=303)
                return Response("Sign in to the console first.", status_code=401)
            request.state.caller = caller
            if need is not None:
                try:
                    # Off the event loop: the page's resource, and a decision that may read
                    # the resource's tags.
                    await run_in_threadpool(self._needed, need, request, caller)
                except ConveyorError as error:
                    return Response(
                        f"{error.code}: {error.message}",
                        status_code=403 if error.code == "AccessDeniedException" else 404,
                        media_type="text/plain",
                    )
            return await endpoint(request)

        return guarded


def caller_of(request: Request) -> Caller | None:
    """The signed-in user a guarded endpoint was called by, if any."""
    found: Caller | None = getattr(request.state, "caller", None)
    return found


def _source_ip(request: Request) -> str:
    return request.client.host if request.client else "0.0.0.0"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this server, never another site."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def signin_routes(gate: Gate, renderer: Renderer) -> list[Route]:
    """``/console/sign-in`` (the form, and its POST) and ``/console/sign-out`` (a POST)."""

    async def form(request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        return renderer.page(request, "signin.html", {"title": "Sign in", "next": target})

    async def sign_in(request: Request) -> Response:
        try:
            fields = await read_form(request)
        except ConveyorError as error:
            return renderer.failure(request, error)
        target = safe_next(fields.get("next"))
        if not renderer.tokens.accepts(request.cookies.get(COOKIE), fields.get(FIELD)):
            return HTMLResponse(CSRF_REFUSED, status_code=403, headers=HEADERS)
        try:
            caller = await run_in_threadpool(
                gate.sign_in,
                fields.get("accessKeyId", "").strip(),
                fields.get("secretAccessKey", "").strip(),
                _source_ip(request),
            )
        except ConveyorError as error:
            values = {"title": "Sign in", "next": target}
            return renderer.page(request, "signin.html", values, status=401, error=error)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION,
            gate.session_for(caller.access_key),
            max_age=LIFETIME,
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response

    async def sign_out(request: Request) -> Response:
        fields = await read_form(request)
        if not renderer.tokens.accepts(request.cookies.get(COOKIE), fields.get(FIELD)):
            return HTMLResponse(CSRF_REFUSED, status_code=403, headers=HEADERS)
        response = RedirectResponse("/console/sign-in", status_code=303)
        response.delete_cookie(SESSION, path="/")
        return response

    return [
        Route("/console/sign-in", form, methods=["GET"]),
        Route("/console/sign-in", sign_in, methods=["POST"]),
        Route("/console/sign-out", sign_out, methods=["POST"]),
    ]
