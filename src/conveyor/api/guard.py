"""The API's side of access control: each request's caller, its permission, its audit record.

`conveyor.auth.gate` decides; this module hands it the request as it arrived and the
operation as the model names it, and records the outcome in the audit trail. Without a gate
(an app built for a test) every request is allowed and nothing is recorded.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope

from conveyor.api.model import CODEBUILD, NOTIFICATIONS, SERVICE, SERVICES
from conveyor.api.offload import Offloader
from conveyor.auth.audit import HIDDEN
from conveyor.auth.gate import Access, Caller, unsigned_caller
from conveyor.auth.sigv4 import Received
from conveyor.domain.access import DEFERRED, codebuild_resource_of, is_read_only, resource_of
from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope as ArnScope
from conveyor.domain.declaration import masked
from conveyor.domain.errors import ConveyorError, MisdirectedRequestException
from conveyor.engine.services import Services
from conveyor.metrics import Recorder

log = logging.getLogger("conveyor.audit")
Endpoint = Callable[[Request], Awaitable[Response]]
_DECLARING = frozenset({"CreatePipeline", "UpdatePipeline"})
_SOURCES = {
    SERVICE: "codepipeline.amazonaws.com",
    CODEBUILD: "codebuild.amazonaws.com",
    "cloudtrail": "cloudtrail.amazonaws.com",
    "codestar-notifications": "codestar-notifications.amazonaws.com",
}


def _source_ip(request: Request) -> str:
    return request.client.host if request.client else "0.0.0.0"


async def _permit(
    access: Access, caller: Caller, action: str, resource: str, offload: Offloader
) -> None:
    if access.reads_tags(caller, resource):
        await offload(access.authorize, caller, action, resource)
    else:
        access.authorize(caller, action, resource)


class Guard:
    def __init__(
        self, services: Services, access: Access | None, recorder: Recorder | None = None
    ) -> None:
        self.services = services
        self.scope: ArnScope = services.scope
        self.access = access
        # Counts each request for /metrics, by operation and error code, with its latency.
        self.recorder = recorder

    def _secret_names(self, type_id: ActionTypeId) -> frozenset[str]:
        try:
            return self.services.action_types.get(type_id).secret_names
        except ConveyorError:
            return frozenset()

    def _recorded(self, name: str, params: Any) -> Any:
        """The parameters as the trail keeps them: a declaration's secret configuration
        values (the properties its action types mark secret) masked."""
        declaration = params.get("pipeline") if isinstance(params, dict) else None
        if name in _DECLARING and isinstance(declaration, dict):
            try:
                return {**params, "pipeline": masked(declaration, self._secret_names)}
            except (KeyError, TypeError, AttributeError):
                return {**params, "pipeline": HIDDEN}
        return params

    def misdirected(self, scope: Scope) -> Response | None:
        """The refusal of a request whose Host header is not this server's (DNS rebinding)."""
        if self.access is None or scope["type"] != "http":
            return None
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        problem = self.access.host_problem(host)
        if problem is None:
            return None
        request_id = str(uuid.uuid4())
        self.refused(scope, MisdirectedRequestException(problem), request_id)
        return Response(
            problem,
            status_code=421,
            media_type="text/plain",
            headers={"x-amzn-RequestId": request_id},
        )

    async def caller(
        self, request: Request, body: bytes, service: str, offload: Offloader
    ) -> Caller:
        """The request's caller; checked off the event loop when its key must be looked up
        in the store (once in a while per key), on it otherwise."""
        if self.access is None:
            authorization = request.headers.getlist("authorization")
            return unsigned_caller(authorization, self.scope.account, _source_ip(request))
        # The path as sent, as the client signed it: escapes (an ARN's '/' in a REST path)
        # kept.
        raw = request.scope.get("raw_path")
        received = Received(
            request.method,
            raw.decode("latin-1").split("?", 1)[0] if raw else request.url.path,
            request.url.query,
            [
                (k.decode("latin-1").lower(), v.decode("latin-1"))
                for k, v in request.scope["headers"]
            ],
            body,
        )
        if self.access.looks_up(received):
            return await offload(self.access.authenticate, received, service, _source_ip(request))
        return self.access.authenticate(received, service, _source_ip(request))

    def protect_logs(self, endpoint: Endpoint, offload: Offloader) -> Endpoint:
        """With authentication required, ``/logs/<id>`` answers signed requests only, from
        callers who may ListActionExecutions on the action's pipeline."""
        access = self.access
        if access is None or not access.required:
            return endpoint

        async def guarded(request: Request) -> Response:
            try:
                caller = await self.caller(request, b"", SERVICE, offload)
                arn = await offload(self._pipeline_of, request.path_params["action_execution_id"])
                if arn is not None:
                    await _permit(access, caller, "codepipeline:ListActionExecutions", arn, offload)
            except ConveyorError as error:
                body = {"__type": error.code, "message": error.message}
                return JSONResponse(body, status_code=error.status)
            return await endpoint(request)

        return guarded

    def protect_metrics(
        self, endpoint: Endpoint, offload: Offloader, token: str | None = None
    ) -> Endpoint:
        """With authentication required, ``/metrics`` answers a scraper that sends
        ``Authorization: Bearer <token>`` (the ``metrics_token`` setting), and signed
        requests from callers who may ListPipelines; no one else."""
        access = self.access
        if access is None or not access.required:
            return endpoint
        bearer = f"Bearer {token}".encode() if token else None

        async def guarded(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode()
            if bearer is None or not hmac.compare_digest(given, bearer):
                try:
                    caller = await self.caller(request, b"", SERVICE, offload)
                    await _permit(access, caller, "codepipeline:ListPipelines", "*", offload)
                except ConveyorError as error:
                    body = {"__type": error.code, "message": error.message}
                    return JSONResponse(body, status_code=error.status)
            return await endpoint(request)

        return guarded

    def _pipeline_of(self, action_execution_id: str) -> str | None:
        with self.services.store.read() as tx:
            action = tx.actions.get(action_execution_id) or tx.rule_runs.get_rule(
                action_execution_id
            )
            pipeline = tx.pipelines.get_by_id(action.pipeline_id) if action else None
        return self.scope.pipeline(pipeline.name) if pipeline else None

    def resource(self, service: str, name: str, params: dict[str, Any]) -> str:
        """The ARN the operation acts on, as IAM names it."""
        if service == CODEBUILD:
            return codebuild_resource_of(self.scope, name, params)
        if service == NOTIFICATIONS:
            arn = params.get("Arn")  # the rule, for every operation on one
            return arn if isinstance(arn, str) else "*"
        return resource_of(self.scope, name, params) if service == SERVICE else "*"

    async def authorize(
        self, caller: Caller, service: str, name: str, resource: str, offload: Offloader
    ) -> None:
        """Refuse unless the caller may run the operation on the resource; decided off the
        event loop when the decision reads the resource's tags from the store."""
        if self.access is not None and resource != DEFERRED:
            await _permit(self.access, caller, f"{service}:{name}", resource, offload)

    def record(
        self,
        request: Request,
        request_id: str,
        service: str,
        name: str,
        caller: Caller | None,
        params: Any,
        resource: str | None,
        result: Any = None,
        error: ConveyorError | None = None,
        started: float | None = None,
    ) -> None:
        """Count the call (it began at ``started``, on the performance counter) and queue
        its audit record; a record that cannot be made is logged, and the answer goes out
        all the same."""
        if self.recorder is not None and started is not None:
            code = error.code if error is not None else "none"
            self.recorder.api_request(service, name, code, time.perf_counter() - started)
        if self.access is None:
            return
        try:
            self._record(
                request, request_id, service, name, caller, params, resource, result, error
            )
        except Exception:
            log.exception("the audit record of request %s could not be made", request_id)

    def _record(
        self,
        request: Request,
        request_id: str,
        service: str,
        name: str,
        caller: Caller | None,
        params: Any,
        resource: str | None,
        result: Any,
        error: ConveyorError | None,
    ) -> None:
        if caller is None:
            # Refused before its signature was accepted: only the key it claims is known.
            source_ip = _source_ip(request)
            identity = self._claimed(request.headers.getlist("authorization"), source_ip)
        else:
            source_ip = caller.source_ip
            identity = caller.identity(self.scope.account)
        self._write(
            name,
            service,
            identity,
            source_ip,
            request.headers.get("user-agent", ""),
            request_id,
            resource,
            self._recorded(name, params),
            result,
            (error.code, error.message) if error is not None else None,
        )

    def refused(self, scope: Scope, error: ConveyorError, request_id: str) -> None:
        """Record a request refused before the dispatcher read it (a Host that is not this
        server's, a body too large or too slow), from its headers alone: the operation its
        X-Amz-Target names (else its path) and the access key its Authorization claims."""
        if self.access is None or scope["type"] != "http":
            return
        try:
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            target = next((v for k, v in headers if k == "x-amz-target"), "")
            prefix, _, operation = target.rpartition(".")
            service = SERVICES.get(prefix)
            name = operation if service and operation else str(scope.get("path", "/"))
            client = scope.get("client")
            source_ip = client[0] if client else "0.0.0.0"
            authorization = [v for k, v in headers if k == "authorization"]
            self._write(
                name,
                service or SERVICE,
                self._claimed(authorization, source_ip),
                source_ip,
                next((v for k, v in headers if k == "user-agent"), ""),
                request_id,
                None,
                None,
                None,
                (error.code, error.message),
            )
        except Exception:
            log.exception("the audit record of refused request %s could not be made", request_id)

    def _claimed(self, authorization: list[str], source_ip: str) -> dict[str, Any]:
        """The userIdentity of a caller whose signature was not accepted."""
        assert self.access is not None
        try:
            caller = unsigned_caller(authorization, self.scope.account, source_ip)
        except ConveyorError:
            caller = Caller("anonymous", "", source_ip)
        if self.access.required:
            return {
                "type": "Unknown",
                "accountId": self.scope.account,
                "accessKeyId": caller.access_key,
            }
        return caller.identity(self.scope.account)

    def _write(
        self,
        name: str,
        service: str,
        identity: dict[str, Any],
        source_ip: str,
        user_agent: str,
        request_id: str,
        resource: str | None,
        params: Any,
        result: Any,
        error: tuple[str, str] | None,
    ) -> None:
        assert self.access is not None
        self.access.audit.record(
            event_name=name,
            event_source=_SOURCES.get(service, service),
            caller=identity,
            source_ip=source_ip,
            user_agent=user_agent,
            request_id=request_id,
            read_only=is_read_only(name),
            resource=resource,
            params=params,
            response=result,
            error=error,
        )
