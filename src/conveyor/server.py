"""Assembling a running server: the embedded engine (store, services, workers and sweeper,
`conveyor.worker.embedded`) with the ASGI app in front, served by uvicorn."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from conveyor.api.protocol import create_app
from conveyor.config import Settings
from conveyor.engine.services import Services
from conveyor.store import Store
from conveyor.worker.embedded import Engine, assemble

log = logging.getLogger("conveyor.server")


@dataclass(frozen=True, slots=True)
class Application:
    store: Store
    services: Services
    app: ASGIApp
    engine: Engine


def build(settings: Settings) -> Application:
    local = assemble(settings)
    app = create_app(local.services, settings.home / "logs")
    return Application(local.store, local.services, app, local.engine)


class _Server(uvicorn.Server):
    """uvicorn's server, except that a stop signal ends the process with status 0.

    uvicorn re-raises SIGINT or SIGTERM once it has shut down gracefully, so the process
    reports it was killed; for Conveyor a signal is a request to stop, and a stop that finishes
    its work is a success. A second SIGINT still forces the exit.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def _config(app: ASGIApp, sock_host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=sock_host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
    )


def serve(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM, then finish the requests under way and close the store."""
    application = build(settings)
    log.info(
        "serving on http://%s:%d (database %s)",
        settings.host,
        settings.port,
        application.store.dialect,
    )
    application.engine.start()
    try:
        _Server(_config(application.app, settings.host, settings.port)).run()
    finally:
        application.engine.stop()
        application.store.close()


@dataclass(frozen=True, slots=True)
class Running:
    endpoint: str
    application: Application


@contextmanager
def running(settings: Settings) -> Iterator[Running]:
    """A server on a free loopback port in a background thread, for tests and benchmarks."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    application = build(replace(settings, host="127.0.0.1", port=port))
    server = uvicorn.Server(_config(application.app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, name="conveyor-server", daemon=True)
    application.engine.start()
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server did not start")
            threading.Event().wait(0.01)
        yield Running(f"http://127.0.0.1:{port}", application)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        application.engine.stop()
        application.store.close()
