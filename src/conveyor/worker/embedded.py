"""The embedded engine: what runs pipelines in a process, with or without an API in front.

`assemble` opens the store, builds the engine's services and the built-in providers, and
pairs them with an `Engine`, the background half: the worker pool and the sweeper.
``conveyor server`` puts the HTTP API in front of it; ``conveyor run`` drives the services
directly, so it never loads the HTTP stack (uvicorn, Starlette, botocore's model).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.actions.base import Provider, ProviderConfig
from conveyor.actions.registry import providers
from conveyor.artifacts import ArtifactStore
from conveyor.artifacts.local import LocalBuckets
from conveyor.auth.cipher import LazyCipher
from conveyor.config import Settings
from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.engine.services import Limits, Services
from conveyor.home import HomeLock, lock_home
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
        from conveyor.artifacts.s3 import S3Buckets  # here: it imports boto3

        return S3Buckets(settings.s3_endpoint, settings.region)
    return LocalBuckets(settings.home / "buckets")


def provider_config(settings: Settings, box: LazyCipher | None = None) -> ProviderConfig:
    box = box or LazyCipher(settings.home, settings.secret_key)
    return ProviderConfig(
        home=settings.home,
        region=settings.region,
        account=settings.account,
        repositories=settings.repositories,
        connections=settings.connections,
        secrets=settings.secrets_file or (settings.home / "secrets.yaml"),
        cache=settings.home / "cache",
        max_artifact_bytes=settings.max_artifact_bytes,
        open_sealed=box.open,
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
class Embedded:
    store: Store
    services: Services
    engine: Engine
    home_lock: HomeLock

    def close(self) -> None:
        """Close the store, then give up the home."""
        self.store.close()
        self.home_lock.release()


def assemble(settings: Settings, holder: str = "conveyor run") -> Embedded:
    """The store, services and (not yet started) engine that ``settings`` describe, once the
    home is this process's; ``holder`` says what this process is to another that finds the
    home taken (`conveyor.home.HomeInUse`)."""
    home_lock = lock_home(settings.home, holder)
    # The home's key, for secrets at rest: loaded the first time one is sealed or opened.
    box = LazyCipher(settings.home, settings.secret_key)
    try:
        built = providers(provider_config(settings, box))
        store = Store.open(settings.database)
    except BaseException:
        home_lock.release()
        raise
    store.box = box
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
    return Embedded(store, services, Engine(services, settings, built), home_lock)


def public_url(settings: Settings) -> str:
    """Where people reach this server: the setting, or the address it listens on."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"
