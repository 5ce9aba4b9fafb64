"""Live updates: the server's committed events pushed to browsers and to the CLI as
Server-Sent Events, on one stream, ``GET /console/events``.

The stream reads the event log (the EventBridge-shaped events each change records in its
own transaction), so what it says is exactly what committed, in order, and a client that
reconnects with ``Last-Event-ID`` misses nothing. It is woken by the engine's notifier the
moment a change commits in this process, and reads the log anyway every `BACKSTOP` seconds
for changes made by another server on the same database. ``?pipeline=NAME`` keeps one
pipeline's events.

Each message is ``id: <seq>`` and ``data: <json>`` with ``type`` (``pipeline``, ``stage``,
``action``), ``pipeline``, ``execution``, ``stage``, ``action`` and ``state``; a change that
records no event (a transition) is said as ``{"type": "change"}`` without an id. A stream ends
after `LIFETIME` seconds (the browser reconnects on its own) and when the server stops.

Starlette's `StreamingResponse` carries it; the format is small enough not to need a library.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from conveyor.domain.events import ACTION, PIPELINE, STAGE
from conveyor.engine.notify import Notifier
from conveyor.store import EventRecord, Store

BACKSTOP = 5.0  # seconds between two reads of the log when nothing woke the stream
LIFETIME = 300.0  # seconds a stream stays open before the client is asked to reconnect
RETRY_MS = 1000  # how soon a browser reconnects
BATCH = 500
# Said when a change committed without an event (a transition enabled or disabled): which
# pipeline is not known, so every page refreshes.
CHANGED = 'data: {"type":"change"}\n\n'
_TYPES = {PIPELINE: "pipeline", STAGE: "stage", ACTION: "action"}


class Hub:
    """Wakes every open stream of one process when a change commits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.closed = False

    def changed(self) -> None:
        """Runs on the committing thread: only schedules the wake-ups."""
        with self._lock:
            waiters = list(self._waiters)
        for waiter in waiters:
            loop, event = waiter
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # its loop is closed: the stream can never be read again
                self.unsubscribe(waiter)

    def subscribe(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        return waiter

    def unsubscribe(self, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            self._waiters.discard(waiter)

    def close(self) -> None:
        """End every stream now (the server is stopping)."""
        self.closed = True
        self.changed()


_HUBS: weakref.WeakKeyDictionary[Notifier, Hub] = weakref.WeakKeyDictionary()


def hub_of(notifier: Notifier) -> Hub:
    """The one hub of a process's notifier, made (and subscribed) on first use."""
    hub = _HUBS.get(notifier)
    if hub is None:
        hub = _HUBS[notifier] = Hub()
        notifier.on_change(hub.changed)
    return hub


def close_streams(notifier: Notifier) -> None:
    """End the open event streams of the server whose engine notifies ``notifier``."""
    hub = _HUBS.get(notifier)
    if hub is not None:
        hub.close()


def message(record: EventRecord) -> str:
    detail: dict[str, Any] = record.body.get("detail", {})
    data = {
        "type": _TYPES.get(record.detail_type, record.detail_type),
        "pipeline": record.pipeline_name,
        "execution": detail.get("execution-id"),
        "stage": detail.get("stage"),
        "action": detail.get("action"),
        "state": detail.get("state"),
        "time": record.time,
    }
    return f"id: {record.seq}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _start(request: Request) -> int | None:
    given = request.headers.get("last-event-id") or request.query_params.get("after")
    if given is None:
        return None
    return int(given) if given.isdigit() else None


def make_stream(
    store: Store,
    notifier: Notifier,
    visible: Callable[[Request], Callable[[str], bool]] | None = None,
) -> Any:
    """The stream's endpoint; ``visible`` says, for a request, which pipelines' events its
    reader may see (all when None)."""
    hub = hub_of(notifier)

    def last() -> int:
        with store.read() as tx:
            return tx.events.last_seq()

    def read(after: int, pipeline: str | None) -> tuple[list[EventRecord], int]:
        with store.read() as tx:
            return tx.events.after(after, BATCH, pipeline), tx.events.last_seq()

    async def events(
        seen: int, pipeline: str | None, shows: Callable[[str], bool] | None
    ) -> AsyncIterator[str]:
        allowed: dict[str, bool] = {}
        waiter = hub.subscribe()
        loop, woken = waiter
        deadline = loop.time() + LIFETIME
        try:
            # The id says where the stream starts, so a client that reconnects before any
            # event came misses none either.
            yield f"retry: {RETRY_MS}\nid: {seen}\n: open\n\n"
            newest = None  # the log's newest event when last read
            woke = False
            while not hub.closed:
                records, last = await run_in_threadpool(read, seen, pipeline)
                for record in records:
                    seen = record.seq
                    if shows is not None and record.pipeline_name not in allowed:
                        name = record.pipeline_name
                        allowed[name] = await run_in_threadpool(shows, name)
                    if shows is None or allowed[record.pipeline_name]:
                        yield message(record)
                if len(records) == BATCH:
                    continue
                if woke and last == newest:
                    yield CHANGED  # a commit that recorded no event: a transition changed
                newest = last
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    await asyncio.wait_for(woken.wait(), min(BACKSTOP, remaining))
                    woke = True
                except TimeoutError:
                    woke = False
                    yield ": ping\n\n"
                woken.clear()
        finally:
            hub.unsubscribe(waiter)

    async def stream(request: Request) -> Response:
        pipeline = request.query_params.get("pipeline") or None
        seen = _start(request)
        if seen is None:
            seen = await run_in_threadpool(last)
        return StreamingResponse(
            events(seen, pipeline, visible(request) if visible is not None else None),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return stream
