"""A running action's log, followed by the log page: Server-Sent Events whose data is the
log's new text already turned into HTML (colours kept, the rest escaped).

The log is a file the worker appends to (with secrets already masked, as the API serves
it). The stream starts at ``?offset=`` (what the page already shows), sends each complete
line as it appears, checks the file every `INTERVAL` seconds, and ends with an ``end``
event once the action is no longer in progress and everything written was sent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from conveyor.console.ansi import Ansi
from conveyor.console.live import Hub
from conveyor.store import Store

INTERVAL = 0.2
CHUNK = 64 * 1024


def _data(kind: str, text: str) -> str:
    return f"event: {kind}\ndata: {json.dumps(text)}\n\n"


def make_log_stream(store: Store, logs: Path, hub: Hub) -> Any:
    """The endpoint; its streams end early when ``hub`` closes (the server stops)."""

    def status(action_execution_id: str) -> str | None:
        with store.read() as tx:
            found = tx.actions.get(action_execution_id)
        return None if found is None else found.status

    def read(path: Path, offset: int) -> bytes:
        if not path.exists():
            return b""
        with open(path, "rb") as log:
            log.seek(offset)
            return log.read(CHUNK)

    async def follow(path: Path, action_execution_id: str, offset: int) -> AsyncIterator[str]:
        ansi = Ansi()
        pending = b""
        yield "retry: 1000\n: open\n\n"
        while not hub.closed:
            chunk = await run_in_threadpool(read, path, offset)
            if chunk:
                offset += len(chunk)
                pending += chunk
                complete, newline, rest = pending.rpartition(b"\n")
                if newline:
                    pending = rest
                    text = (complete + newline).decode("utf-8", "replace")
                    yield _data("log", ansi.convert(text))
                continue
            if await run_in_threadpool(status, action_execution_id) != "InProgress":
                if pending:
                    yield _data("log", ansi.convert(pending.decode("utf-8", "replace")))
                yield _data("end", str(offset))
                return
            await asyncio.sleep(INTERVAL)

    async def stream(request: Request) -> Response:
        action_execution_id = request.path_params["action_execution_id"]
        if await run_in_threadpool(status, action_execution_id) is None:
            return PlainTextResponse(f"No action execution {action_execution_id}.\n", 404)
        given = request.query_params.get("offset", "0")
        offset = int(given) if given.isdigit() else 0
        return StreamingResponse(
            follow(logs / f"{action_execution_id}.log", action_execution_id, offset),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
        )

    return stream
