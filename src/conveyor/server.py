"""Assembling a running server: the embedded engine (home lock, store, services, workers and
sweeper: `conveyor.worker.embedded`) with the ASGI app in front, served by uvicorn.

The order matters: a process takes its home's lock before it touches anything in it, and a
server binds its port before it recovers what an earlier run left; a second server on the
same home or port is refused without having ended anybody's actions.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from conveyor.api.limits import limit_bodies
from conveyor.api.protocol import create_app
from conveyor.config import Settings, read_connections
from conveyor.console.live import close_streams
from conveyor.engine.services import Services
from conveyor.home import HomeLock
from conveyor.listener import bind, config
from conveyor.store import Store
from conveyor.triggers.hooks import hook_routes
from conveyor.worker.embedded import Engine, assemble, provider_config

log = logging.getLogger("conveyor.server")


@dataclass(frozen=True, slots=True)
class Application:
    store: Store
    services: Services
    app: ASGIApp
    engine: Engine
    home_lock: HomeLock

    def close(self) -> None:
        """Close the store, then give up the home."""
        self.store.close()
        self.home_lock.release()


def build(settings: Settings, holder: str = "a server") -> Application:
    """Everything a server needs, once the home is this process's; ``holder`` says what this
    process is to another that finds the home taken (`conveyor.home.HomeInUse`)."""
    local = assemble(settings, holder, detect=True)
    connections = read_connections(settings.connections)
    hooks = hook_routes(local.services, connections, provider_config(settings))
    app = limit_bodies(create_app(local.services, settings.home / "logs", hooks))
    return Application(local.store, local.services, app, local.engine, local.home_lock)


class CannotServe(RuntimeError):
    """The server cannot listen where it was told to."""


class _Server(uvicorn.Server):
    """uvicorn's server, except that it says when it listens and a stop signal ends the
    process with status 0.

    uvicorn re-raises SIGINT or SIGTERM once it has shut down gracefully, so the process
    reports it was killed; for Conveyor a signal is a request to stop, and a stop that finishes
    its work is a success. A second SIGINT still forces the exit.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        announce: str | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._announce = announce
        self._on_exit = on_exit

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._announce:
            log.info("%s", self._announce)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True
        if self._on_exit is not None:
            self._on_exit()  # end the console's event streams, which never end by themselves


def serve(settings: Settings, version: str = "") -> None:
    """Serve until SIGINT or SIGTERM, then finish the requests under way and close the store.

    Raises `HomeInUse` when another process has the home, `CannotServe` when the port is
    taken, `StoreUnavailable` when the database cannot be opened: each before anything in
    the home was touched.
    """
    address = f"http://{settings.host}:{settings.port}"
    application = build(settings, holder=f"conveyor server on {address}")
    try:
        try:
            sock = bind(settings.host, settings.port)
        except OSError as exc:
            raise CannotServe(f"cannot listen on {address}: {exc.strerror or exc}") from exc
        application.engine.start()
        announce = (
            f"conveyor {version} listening on {address} (database {application.store.dialect})"
        )
        server = _Server(
            config(application.app, settings.host, settings.port),
            announce,
            on_exit=lambda: close_streams(application.services.notifier),
        )
        server.run(sockets=[sock])
    finally:
        application.engine.stop()
        application.close()


@dataclass(frozen=True, slots=True)
class Running:
    endpoint: str
    application: Application


@contextmanager
def running(settings: Settings) -> Iterator[Running]:
    """A server on a free loopback port in a background thread, for tests and benchmarks."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    try:
        application = build(replace(settings, host="127.0.0.1", port=port), "a test server")
    except BaseException:
        sock.close()
        raise
    server = uvicorn.Server(config(application.app, "127.0.0.1", port))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="conveyor-server", daemon=True
    )
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
        close_streams(application.services.notifier)
        thread.join(timeout=15)
        application.engine.stop()
        application.close()
        sock.close()
