"""Assembling a running server: settings → store → services → ASGI app, workers and sweeper."""

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
from conveyor.api.protocol import create_app
from conveyor.artifacts import ArtifactStore
from conveyor.artifacts.local import LocalBuckets
from conveyor.artifacts.s3 import S3Buckets
from conveyor.config import Settings
from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.engine.services import Limits, Services
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


def build(settings: Settings) -> Application:
    settings.home.mkdir(parents=True, exist_ok=True)
    built = providers(provider_config(settings))
    store = Store.open(settings.database)
    services = Services.build(
        store,
        Scope(settings.region, settings.account),
        Limits(
            max_pipelines=settings.max_pipelines,
            max_custom_action_types=settings.max_custom_action_types,
            max_tags=settings.max_tags,
            event_retention_days=settings.event_retention_days,
            job_retention_days=settings.job_retention_days,
        ),
        runnable=frozenset(built),
        log_base=public_url(settings),
    )
    app = create_app(services, settings.home / "logs")
    return Application(store, services, app, Engine(services, settings, built))


def public_url(settings: Settings) -> str:
    """Where people reach this server: the setting, or the address it listens on."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


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
