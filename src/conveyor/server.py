"""Assembling a running server: settings → home lock → store → services → ASGI app, workers
and sweeper.

The order matters: a process takes its home's lock before it touches anything in it, and a
server binds its port before it recovers what an earlier run left; a second server on the
same home or port is refused without having ended anybody's actions.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from conveyor.actions.base import Provider, ProviderConfig
from conveyor.actions.registry import providers
from conveyor.api.limits import limit_bodies
from conveyor.api.protocol import create_app
from conveyor.artifacts import ArtifactStore
from conveyor.artifacts.local import LocalBuckets
from conveyor.artifacts.s3 import S3Buckets
from conveyor.config import Settings
from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.engine.services import Limits, Services
from conveyor.home import HomeLock, lock_home
from conveyor.listener import bind, config
from conveyor.store import Store
from conveyor.worker import leftovers
from conveyor.worker.pool import WorkerPool

log = logging.getLogger("conveyor.server")


def node_id(home: Path) -> str:
    """This installation's stable identity on this machine, kept in the home folder."""
    path = home / "node-id"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = uuid.uuid4().hex[:12]
        path.write_text(value + "\n", encoding="utf-8")
        return value


def buckets(settings: Settings) -> ArtifactStore:
    """Buckets are folders under the home, or real buckets when an S3 endpoint is set."""
    if settings.s3_endpoint:
        return S3Buckets(settings.s3_endpoint, settings.region)
    return LocalBuckets(settings.home / "buckets")


def provider_config(settings: Settings) -> ProviderConfig:
    return ProviderConfig(
        home=settings.home,
        region=settings.region,
        account=settings.account,
        repositories=settings.repositories,
        connections=settings.connections,
        secrets=settings.secrets_file or (settings.home / "secrets.yaml"),
        cache=settings.home / "cache",
        max_artifact_bytes=settings.max_artifact_bytes,
    )


@dataclass
class Engine:
    """The background half of a server: the worker pool and the sweeper."""

    services: Services
    settings: Settings
    providers: Mapping[ActionTypeId, Provider]
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _pool: WorkerPool | None = None

    def start(self) -> None:
        """End what an earlier run of this server left running, fail the actions it was
        running (their results are unknown), then start the workers and the sweeper."""
        node = node_id(self.settings.home)
        incarnation = uuid.uuid4().hex[:8]
        leftovers.clean(self.settings.home / "work")
        recovered = self.services.sweeper.recover(node, incarnation)
        if recovered:
            log.warning("failed %d actions that were running when Conveyor stopped", recovered)
        self._pool = WorkerPool(
            self.services.jobs,
            self.services.notifier,
            buckets(self.settings),
            self.providers,
            self.settings.home,
            size=self.settings.workers,
            owner=f"{node}/{incarnation}",
        )
        self._pool.start()
        sweeper = threading.Thread(
            target=self.services.sweeper.run,
            args=(self._stop,),
            name="conveyor-sweeper",
            daemon=True,
        )
        sweeper.start()
        self._threads.append(sweeper)
        watch = threading.Thread(
            target=self.services.health.run,
            args=(self._stop,),
            name="conveyor-health",
            daemon=True,
        )
        watch.start()
        self._threads.append(watch)

    def stop(self) -> None:
        self._stop.set()
        if self._pool is not None:
            self._pool.stop()
        for thread in self._threads:
            thread.join(5)


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


def build(settings: Settings, holder: str = "conveyor run") -> Application:
    """Everything a server or ``conveyor run`` needs, once the home is this process's;
    ``holder`` says what this process is to another that finds the home taken
    (`conveyor.home.HomeInUse`)."""
    home_lock = lock_home(settings.home, holder)
    try:
        built = providers(provider_config(settings))
        store = Store.open(settings.database)
    except BaseException:
        home_lock.release()
        raise
    services = Services.build(
        store,
        Scope(settings.region, settings.account),
        Limits(
            max_pipelines=settings.max_pipelines,
            max_custom_action_types=settings.max_custom_action_types,
            max_tags=settings.max_tags,
        ),
        runnable=frozenset(built),
        log_base=public_url(settings),
    )
    app = limit_bodies(create_app(services, settings.home / "logs"))
    return Application(store, services, app, Engine(services, settings, built), home_lock)


def public_url(settings: Settings) -> str:
    """Where people reach this server: the setting, or the address it listens on."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


class CannotServe(RuntimeError):
    """The server cannot listen where it was told to."""


class _Server(uvicorn.Server):
    """uvicorn's server, except that it says when it listens and a stop signal ends the
    process with status 0.

    uvicorn re-raises SIGINT or SIGTERM once it has shut down gracefully, so the process
    reports it was killed; for Conveyor a signal is a request to stop, and a stop that finishes
    its work is a success. A second SIGINT still forces the exit.
    """

    def __init__(self, config: uvicorn.Config, announce: str | None = None) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._announce:
            log.info("%s", self._announce)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


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
        server = _Server(config(application.app, settings.host, settings.port), announce)
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
        thread.join(timeout=15)
        application.engine.stop()
        application.close()
        sock.close()
