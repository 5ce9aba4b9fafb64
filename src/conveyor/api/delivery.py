"""The webhook delivery endpoint: ``POST /webhooks/<token>``, each webhook's ``url``.

A delivery is answered with JSON saying what became of it:

======  ===============================================================================
200     ``{"started": true, "pipelineExecutionId"}``, or ``{"started": false}`` when the
        body does not pass the webhook's filters (the message says which one)
400     the body is not a JSON object, or is nested too deeply to filter
401     ``GITHUB_HMAC``: no signature, or one that does not match the body
403     ``IP``: the sender's address is outside ``AllowedIPRange``
404     no webhook has this URL
409     the webhook's pipeline or action is gone (the webhook's ``errorMessage`` says so)
413     the body is over the server's limit (`conveyor.api.limits`)
======  ===============================================================================

Every answer but a 200 starts nothing. ``Server-Timing: app;dur=<ms>`` says how long the
server took, as on the API. Bodies are read whole, within the server's size and
time limits, before anything here runs; the checks run off the event loop.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conveyor.api.body import parse
from conveyor.api.offload import Offloader
from conveyor.domain.delivery import SIGNATURE_1, SIGNATURE_256, Refusal, authenticate
from conveyor.domain.errors import SerializationException
from conveyor.engine.services import Services
from conveyor.engine.webhooks import PATH

log = logging.getLogger("conveyor.api")
# What `secrets.token_urlsafe(32)` makes; anything else names no webhook.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def webhook_routes(services: Services, offload: Offloader) -> list[Route]:
    """The route that serves every webhook's URL."""

    def deliver(
        token: str, body: bytes, headers: dict[str, str], client: str | None
    ) -> tuple[int, dict[str, Any]]:
        found = services.webhooks.find(token) if _TOKEN.fullmatch(token) else None
        if found is None:
            return 404, {
                "message": "No webhook has this URL; a webhook deleted and put again gets "
                "a new one (see ListWebhooks)."
            }
        refusal = authenticate(found.definition, body, headers, client)
        if refusal is not None:
            return _refused(refusal)
        try:
            payload = parse(body)
        except SerializationException as error:
            return 400, {"message": error.message}
        result = services.webhooks.trigger(found, payload)
        if isinstance(result, Refusal):
            return _refused(result)
        if result.execution_id is None:
            return 200, {
                "started": False,
                "message": f"Not started: {result.ignored}.",
            }
        return 200, {
            "started": True,
            "pipelineExecutionId": result.execution_id,
            "message": f"Started pipeline '{found.definition.target_pipeline}'.",
        }

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        headers = {
            name: value
            for name in (SIGNATURE_256, SIGNATURE_1)
            if (value := request.headers.get(name)) is not None
        }
        client = request.client.host if request.client else None
        try:
            status, answer = await offload(
                deliver,
                request.path_params["token"],
                await request.body(),
                headers,
                client,
                write=True,
            )
        except Exception:
            log.exception("a webhook delivery failed")
            status, answer = 500, {"message": "The server hit an unexpected error; see its log."}
        elapsed = (time.perf_counter() - started) * 1000
        timing = {"Server-Timing": f"app;dur={elapsed:.3f}"}
        return JSONResponse(answer, status_code=status, headers=timing)

    return [Route(PATH + "{token}", endpoint, methods=["POST"])]


def _refused(refusal: Refusal) -> tuple[int, dict[str, Any]]:
    return refusal.status, {"started": False, "message": refusal.reason}
