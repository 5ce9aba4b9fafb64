"""Assembling a running server: the embedded engine (home lock, store, services, workers and
sweeper: `conveyor.worker.embedded`) with the ASGI app in front, served by uvicorn.

The order matters: a process takes its home's lock before it touches anything in it, and a
server binds its port before it recovers what an earlier run left; a second server on the
same home or port is refused without having ended anybody's actions.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from types import FrameType

import uvicorn
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from conveyor.api.guard import Guard
from conveyor.api.limits import limit_bodies
from conveyor.api.metrics import Metered
from conveyor.api.protocol import create_app
from conveyor.api.s3serve import PREFIX as S3_PREFIX
from conveyor.api.s3serve import BucketRoutes
from conveyor.api.workerjobs import worker_routes
from conveyor.artifacts.local import LocalBuckets
from conveyor.auth.artifactkeys import ArtifactKeys
from conveyor.auth.audit import LOCK as AUDIT_LOCK
from conveyor.auth.audit import AuditTrail
from conveyor.auth.cipher import CipherError, LazyCipher
from conveyor.auth.gate import Access, is_loopback
from conveyor.auth.identities import IdentityService
from conveyor.config import Settings, read_connections
from conveyor.console.live import close_streams
from conveyor.domain.arn import Scope
from conveyor.domain.errors import JobNotFoundException
from conveyor.domain.status import JobStatus
from conveyor.engine.services import Services
from conveyor.engine.sharing import NotShared, check_shared_buckets, check_shared_key
from conveyor.home import HomeLock
from conveyor.listener import bind, config
from conveyor.metrics import Recorder, chained
from conveyor.store import Store
from conveyor.triggers.hooks import hook_routes
from conveyor.worker.embedded import Engine, assemble, buckets, provider_config

log = logging.getLogger("conveyor.server")


@dataclass(frozen=True, slots=True)
class Application:
    store: Store
    services: Services
    app: ASGIApp
    engine: Engine
    home_lock: HomeLock
    access: Access
    # Set when the server stops: remote workers' long polls answer at once.
    closing: threading.Event = field(default_factory=threading.Event)
    # What /metrics reports that is counted in memory.
    recorder: Recorder = field(default_factory=Recorder)

    def stop_polls(self) -> None:
        self.closing.set()
        self.services.notifier.jobs_queued()
        close_streams(self.services.notifier)

    def close(self) -> None:
        """Write the audit trail's last records, close the store, then give up the home."""
        self.access.audit.close()
        self.store.close()
        self.home_lock.release()


def refuse_unsafe(settings: Settings) -> None:
    """Refuse to serve without authentication anywhere but on loopback, unless told to."""
    if settings.auth_required or is_loopback(settings.host):
        return
    if not settings.insecure:
        raise CannotServe(
            f"refusing to serve on {settings.host} without authentication: anyone who reaches"
            " the port could run commands as this server's user. Turn it on with"
            " `conveyor server --auth` (or CONVEYOR_AUTH=required) and give users keys with"
            " `conveyor user create` and `conveyor key create`; or pass --insecure to serve"
            " unauthenticated anyway."
        )
    log.warning(
        "serving on %s WITHOUT authentication (--insecure): anyone who reaches this port"
        " can run commands as this server's user",
        settings.host,
    )


def build_access(settings: Settings, store: Store) -> Access:
    """The request gate; with authentication required, its key is checked at once."""
    scope = Scope(settings.region, settings.account)
    cipher = (
        store.box
        if isinstance(store.box, LazyCipher)
        else LazyCipher(settings.home, settings.secret_key)
    )
    if settings.auth_required:
        cipher.load()
    identities = IdentityService(store, cipher, scope)
    audit = AuditTrail(
        store,
        settings.region,
        settings.account,
        settings.audit_retention_days,
        leadership=store.leadership(AUDIT_LOCK),
    )
    audit.start()
    return Access(
        store,
        identities,
        audit,
        scope,
        required=settings.auth_required,
        host=settings.host,
        public_url=settings.public_url,
    )


def build(settings: Settings, holder: str = "a server") -> Application:
    """Everything a server needs, once the home is this process's; ``holder`` says what this
    process is to another that finds the home taken (`conveyor.home.HomeInUse`)."""
    local = assemble(settings, holder, detect=True)
    recorder = Recorder()
    local.store.on_events = chained(local.store.on_events, recorder.committed)
    local.engine.on_detection_lag = recorder.detected
    try:
        shared_buckets(settings, local.store, holder)
        access = build_access(settings, local.store)
    except (CipherError, NotShared) as exc:
        local.close()
        raise CannotServe(str(exc)) from exc
    connections = read_connections(settings.connections)
    routes = list(hook_routes(local.services, connections, provider_config(settings)))
    closing = threading.Event()
    artifacts = artifact_routes(local.services, settings)
    if settings.remote_workers:
        local_buckets = buckets(settings)
        stat = local_buckets.stat if isinstance(local_buckets, LocalBuckets) else None
        routes += worker_routes(
            local.services, settings.home / "logs", closing, access, stat, recorder
        )
    app = limit_bodies(
        create_app(
            local.services,
            settings.home / "logs",
            [*routes, *artifacts],
            access,
            Metered(recorder, local.engine.worker_counts, settings.metrics_token),
        ),
        streamed=(f"{S3_PREFIX}/",) if artifacts else (),
        refused=Guard(local.services, access).refused,
    )
    return Application(
        local.store, local.services, app, local.engine, local.home_lock, access, closing, recorder
    )


def shared_buckets(settings: Settings, store: Store, holder: str) -> None:
    """On PostgreSQL, every server of the database must have the same secret key, and local
    buckets must be the folder they all use (`conveyor.engine.sharing`)."""
    key = LazyCipher(settings.home, settings.secret_key).secret()
    check_shared_key(store, key, f"{holder} with home {settings.home}")
    local = buckets(settings)
    if isinstance(local, LocalBuckets):
        check_shared_buckets(store, local.root, f"{holder} with home {settings.home}")


def artifact_routes(services: Services, settings: Settings) -> list[BaseRoute]:
    """With local buckets, the artifacts over S3 for job workers and ``conveyor worker``,
    signed with each job's artifactCredentials (`conveyor.api.s3serve`)."""
    store = buckets(settings)
    if not isinstance(store, LocalBuckets):
        return []
    keys = ArtifactKeys(LazyCipher(settings.home, settings.secret_key).secret)

    def active(job_id: str) -> bool:
        try:
            return services.jobs.get(job_id).status in (JobStatus.DISPATCHED, JobStatus.IN_PROGRESS)
        except JobNotFoundException:
            return False

    return BucketRoutes(store, settings.home / "uploads", keys, settings.region, active).routes()


def start_delivery(
    settings: Settings, store: Store, services: Services, recorder: Recorder | None = None
) -> Callable[[], None]:
    """Deliver notifications from a process of the server's own (`conveyor.notify.supervisor`),
    woken by the events this server commits; the function that stops it."""
    from conveyor.logformat import JsonFormatter
    from conveyor.notify import supervisor
    from conveyor.notify.deliverer import Setup
    from conveyor.notify.statuses import status_hosts

    json_log = any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)
    setup = Setup(
        database=settings.database,
        home=str(settings.home),
        secret_key=settings.secret_key,
        console=settings.public_url or f"http://{settings.host}:{settings.port}",
        region=settings.region,
        timeout=settings.notification_timeout,
        retry_for=settings.notification_retry_hours * 3600,
        aws_endpoints=dict(settings.aws_endpoints),
        connections=dict(settings.connections),
        log_format="json" if json_log else "text",
    )
    statuses = bool(status_hosts(read_connections(settings.connections)))
    return supervisor.start(store, setup, recorder, statuses).stop


class CannotServe(RuntimeError):
    """The server cannot listen where it was told to."""


class _Server(uvicorn.Server):
    """uvicorn's server, except that it says when it listens, stops at once when asked, and
    a stop signal ends the process with status 0.

    uvicorn looks for a stop request every 100 ms and then pauses another 100 ms before it
    waits for connections to close; here a stop request wakes the loop, and connections and
    requests under way are waited for in steps of a few milliseconds.

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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._announce:
            log.info("%s", self._announce)

    async def main_loop(self) -> None:
        self._loop, self._woken = asyncio.get_running_loop(), asyncio.Event()
        ticks = 0
        while not await self.on_tick(ticks):
            ticks = (ticks + 1) % 864_000
            with suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), 0.1)

    def request_exit(self) -> None:
        """Stop serving, from any thread."""
        self.should_exit = True
        loop, woken = self._loop, self._woken
        if loop is not None and woken is not None and not loop.is_closed():
            loop.call_soon_threadsafe(woken.set)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for listening in self.servers:
            listening.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        grace = self.config.timeout_graceful_shutdown
        deadline = None if grace is None else loop.time() + grace
        state = self.server_state
        while (state.connections or state.tasks) and not self.force_exit:
            if deadline is not None and loop.time() >= deadline:
                log.error("cancelling %d request(s) still running at the stop", len(state.tasks))
                for task in state.tasks:
                    task.cancel()
                break
            await asyncio.sleep(0.005)
        for listening in self.servers:
            await listening.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.request_exit()
        if self._on_exit is not None:
            self._on_exit()  # end the console's event streams, which never end by themselves


def serve(settings: Settings, version: str = "") -> None:
    """Serve until SIGINT or SIGTERM, then finish the requests under way and close the store.

    Raises `HomeInUse` when another process has the home, `CannotServe` when the port is
    taken, `StoreUnavailable` when the database cannot be opened: each before anything in
    the home was touched.
    """
    refuse_unsafe(settings)
    address = f"http://{settings.host}:{settings.port}"
    application = build(settings, holder=f"conveyor server on {address}")
    try:
        try:
            sock = bind(settings.host, settings.port)
        except OSError as exc:
            raise CannotServe(f"cannot listen on {address}: {exc.strerror or exc}") from exc
        application.engine.start()
        stop_delivery = start_delivery(
            settings, application.store, application.services, application.recorder
        )
        announce = (
            f"conveyor {version} listening on {address} (database {application.store.dialect})"
        )
        server = _Server(
            config(application.app, settings.host, settings.port),
            announce,
            on_exit=application.stop_polls,
        )
        try:
            server.run(sockets=[sock])
        finally:
            stop_delivery()
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
    server = _Server(config(application.app, "127.0.0.1", port))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="conveyor-server", daemon=True
    )
    application.engine.start()
    stop_delivery = start_delivery(
        replace(settings, host="127.0.0.1", port=port),
        application.store,
        application.services,
        application.recorder,
    )
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the server did not start")
            threading.Event().wait(0.01)
        yield Running(f"http://127.0.0.1:{port}", application)
    finally:
        server.request_exit()
        application.stop_polls()
        thread.join(timeout=15)
        stop_delivery()
        application.engine.stop()
        application.close()
        sock.close()
