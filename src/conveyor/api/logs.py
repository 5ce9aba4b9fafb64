"""Serving action logs: ``GET /logs/<actionExecutionId>``, or followed with ``?follow=1``.

Each action execution's output is a file the worker appends to. Reading it returns what is
there; following it streams what is written until the action is no longer in progress,
so ``curl -N`` or ``conveyor logs`` can watch a build as it runs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from conveyor.api.offload import Offloader
from conveyor.engine.services import Services

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# How often a followed log is checked for more output, in seconds.
FOLLOW_INTERVAL = 0.2
CHUNK = 64 * 1024


def log_path(logs: Path, action_execution_id: str) -> Path:
    return logs / f"{action_execution_id}.log"


async def follow(path: Path, running: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
    """What is written to the log at ``path`` as it is written, until its action is no longer
    ``running``; then what the action wrote before it ended, so no last line is lost."""
    offset, ended = 0, False
    while True:
        chunk = b""
        if path.exists():
            with open(path, "rb") as log:
                log.seek(offset)
                chunk = log.read(CHUNK)
        if chunk:
            offset += len(chunk)
            yield chunk
        elif ended:
            return
        elif not await running():
            ended = True  # read once more: it may have written since the last read
        else:
            await asyncio.sleep(FOLLOW_INTERVAL)


def make_log_endpoint(
    services: Services, logs: Path, offload: Offloader
) -> Callable[[Request], Awaitable[Response]]:
    """The ``/logs/{id}`` endpoint for logs kept in the folder ``logs``."""

    def status(action_execution_id: str) -> str | None:
        with services.store.read() as tx:
            found = tx.actions.get(action_execution_id) or tx.rule_runs.get_rule(
                action_execution_id
            )
        if found is None:
            return services.builds.log_status(action_execution_id)
        return found.status

    async def running(action_execution_id: str) -> bool:
        return await offload(status, action_execution_id) == "InProgress"

    async def endpoint(request: Request) -> Response:
        action_execution_id = request.path_params["action_execution_id"]
        if not _ID.fullmatch(action_execution_id):
            return PlainTextResponse("Not a valid action execution id.\n", status_code=400)
        known = await offload(status, action_execution_id)
        if known is None:
            return PlainTextResponse(
                f"No action execution {action_execution_id}.\n", status_code=404
            )
        path = log_path(logs, action_execution_id)
        if request.query_params.get("follow") in ("1", "true", "yes"):
            return StreamingResponse(
                follow(path, partial(running, action_execution_id)),
                media_type="text/plain; charset=utf-8",
            )
        text = path.read_bytes() if path.exists() else b""
        return Response(text, media_type="text/plain; charset=utf-8")

    return endpoint
