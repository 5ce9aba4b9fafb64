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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.actions.base import Provider, ProviderConfig
from conveyor.actions.registry import AWS_SERVICES, providers
from conveyor.artifacts import ArtifactStore
from conveyor.artifacts.local import LocalBuckets
from conveyor.auth.artifactkeys import ArtifactKeys
from conveyor.auth.cipher import LazyCipher
from conveyor.builds import BuildPool
from conveyor.config import Settings, SettingsError, connection_urls, read_connections
from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.domain.catalog import WORKER_SETTING, builtin_action_type
from conveyor.domain.labels import LabelError, parse_labels
from conveyor.domain.projects import BuildProject
from conveyor.engine.builds import BuildService
from conveyor.engine.clock import SystemClock
from conveyor.engine.projects import project_finder
from conveyor.engine.services import Limits, Services
from conveyor.home import HomeLock, lock_home
from conveyor.store import Store
from conveyor.worker import leftovers
from conveyor.worker.pool import WorkerPool

if TYPE_CHECKING:  # only servers detect changes, and detection imports watchfiles
    from conveyor.store.wakeups import CrossWakeups
    from conveyor.triggers.detector import Detector

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


def provider_config(
    settings: Settings,
    box: LazyCipher | None = None,
    projects: Callable[[str], BuildProject | None] | None = None,
    builds: BuildService | None = None,
) -> ProviderConfig:
    """``projects``: the installation's CodeBuild projects, for builds to run; ``builds``:
    where builds are recorded for the CodeBuild API."""
    box = box or LazyCipher(settings.home, settings.secret_key)
    return ProviderConfig(
        home=settings.home,
        region=settings.region,
        account=settings.account,
        repositories=settings.repositories,
        connections=connection_urls(settings.connections),
        secrets=settings.secrets_file or (settings.home / "secrets.yaml"),
        cache=settings.home / "cache",
        max_artifact_bytes=settings.max_artifact_bytes,
        aws_endpoints=settings.aws_endpoints,
        lambda_functions=settings.lambda_functions,
        api_url=public_url(settings),
        open_sealed=box.open,
        projects=projects,
        builds=builds,
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
    # Whether this process detects source changes (servers do; `conveyor run` does not).
    detect: bool = False
    detector: Detector | None = None
    # Runs StartBuild's builds (none when this process runs no actions).
    builds: BuildPool | None = None
    # Wake-ups to and from the other servers of a PostgreSQL database.
    wakeups: CrossWakeups | None = None
    # Told change detection's lags, for /metrics (a server's; none for `conveyor run`).
    on_detection_lag: Callable[[float], None] | None = None

    def worker_counts(self) -> tuple[int, int]:
        """Busy in-process workers, and how many there are."""
        return (0, 0) if self._pool is None else self._pool.counts()

    def start(self) -> None:
        """End what an earlier run of this server left running, fail the actions it was
        running (their results are unknown), then start the workers and the sweeper."""
        node = node_id(self.settings.home)
        incarnation = uuid.uuid4().hex[:8]
        leftovers.clean(self.settings.home / "work")
        recovered = self.services.sweeper.recover(node, incarnation)
        if recovered:
            log.warning("failed %d actions that were running when Conveyor stopped", recovered)
        self._start_wakeups()
        self._pool = WorkerPool(
            self.services.jobs,
            self.services.notifier,
            buckets(self.settings),
            self.providers,
            self.settings.home,
            size=self.settings.workers,
            owner=f"{node}/{incarnation}",
            labels=parse_labels(",".join(self.settings.worker_labels)),
        )
        self._pool.start()
        if self.settings.workers > 0:
            config = provider_config(
                self.settings,
                projects=project_finder(self.services.store),
                builds=self.services.builds,
            )
            self.builds = BuildPool(
                self.services.builds,
                config,
                buckets(self.settings),
                self.settings.home,
                size=self.settings.workers,
                node=node,
            )
            self.builds.start()
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
        if self.detect and self.settings.detect_changes:
            self._start_detector()

    def _start_wakeups(self) -> None:
        store, notifier = self.services.store, self.services.notifier
        if store.dialect != "postgresql":
            return
        from conveyor.store.wakeups import CrossWakeups  # here: it imports psycopg

        self.wakeups = CrossWakeups(store.engine.url, notifier.wake, notifier.cancel_here)
        self.wakeups.start()
        notifier.forward = self.wakeups.queued
        notifier.forward_cancelled = self.wakeups.cancelled

    def _start_detector(self) -> None:
        from conveyor.triggers.detector import Detector

        self.detector = Detector(
            self.services,
            provider_config(self.settings),
            read_connections(self.settings.connections),
            buckets(self.settings),
            poll_interval=self.settings.poll_interval,
            on_lag=self.on_detection_lag,
        )
        thread = threading.Thread(
            target=self.detector.run, args=(self._stop,), name="conveyor-detector", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        if self.wakeups is not None:
            self.services.notifier.forward = None
            self.services.notifier.forward_cancelled = None
            self.wakeups.stop()
        if self._pool is not None:
            self._pool.stop()
        if self.builds is not None:
            self.builds.close()
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


def assemble(settings: Settings, holder: str = "conveyor run", *, detect: bool = False) -> Embedded:
    """The store, services and (not yet started) engine that ``settings`` describe, once the
    home is this process's; ``holder`` says what this process is to another that finds the
    home taken (`conveyor.home.HomeInUse`)."""
    home_lock = lock_home(settings.home, holder)
    # The home's key, for secrets at rest: loaded the first time one is sealed or opened.
    box = LazyCipher(settings.home, settings.secret_key)
    try:
        check_aws_settings(settings)
        check_labels(settings)
        store = Store.open(settings.database)
    except BaseException:
        home_lock.release()
        raise
    try:
        scope = Scope(settings.region, settings.account)
        recorder = BuildService(store, scope, SystemClock(), public_url(settings))
        built = providers(provider_config(settings, box, project_finder(store), recorder))
        left_to_workers = worker_types(settings, frozenset(built))
    except BaseException:
        store.close()
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
            lease_seconds=settings.job_lease_seconds,
        ),
        runnable=frozenset(built),
        log_base=public_url(settings),
        worker_types=left_to_workers,
    )
    services.jobs.credentials = ArtifactKeys(box.secret).for_job
    engine = Engine(services, settings, built, detect=detect)
    return Embedded(store, services, engine, home_lock)


def check_aws_settings(settings: Settings) -> None:
    """``aws_endpoints`` names services some action type calls, each with a URL or ``aws``;
    ``lambda_functions`` gives each function a ``module:function`` handler."""
    known = sorted(AWS_SERVICES)
    for service, endpoint in settings.aws_endpoints.items():
        if service not in known:
            raise SettingsError(
                f"setting 'aws_endpoints': Conveyor calls no service {service!r} "
                f"(services: {', '.join(known)})"
            )
        if not (endpoint == "aws" or str(endpoint).startswith(("http://", "https://"))):
            raise SettingsError(
                f"setting 'aws_endpoints': {service} must be an http(s) URL or aws, "
                f"not {endpoint!r}"
            )
    for name, function in settings.lambda_functions.items():
        handler = function.get("handler", "") if isinstance(function, Mapping) else ""
        module, sep, attribute = str(handler).partition(":")
        if not (module and sep and attribute):
            raise SettingsError(
                f"setting 'lambda_functions': {name} needs a handler written module:function"
            )


def check_labels(settings: Settings) -> None:
    """``worker_labels``: the labels of the in-process workers, written as labels are."""
    try:
        parse_labels(",".join(settings.worker_labels))
    except LabelError as exc:
        raise SettingsError(f"setting 'worker_labels': {exc}") from exc


def worker_types(settings: Settings, runnable: frozenset[ActionTypeId]) -> frozenset[ActionTypeId]:
    """The built-in types the settings leave to job workers, each checked: a built-in type
    (``Owner/Category/Provider/Version``) that this process does not run itself."""
    found = set()
    for text in settings.worker_action_types:
        parts = text.strip().split("/")
        type_id = ActionTypeId(parts[1], parts[0], parts[2], parts[3]) if len(parts) == 4 else None
        if type_id is None or builtin_action_type(type_id) is None:
            raise SettingsError(
                f"setting {WORKER_SETTING!r}: {text!r} is not a built-in action type "
                "(write it as Owner/Category/Provider/Version, such as AWS/Deploy/ECS/1)"
            )
        if type_id in runnable:
            raise SettingsError(
                f"setting {WORKER_SETTING!r}: Conveyor runs {type_id} itself here; "
                "job workers cannot take it"
            )
        found.add(type_id)
    return frozenset(found)


def public_url(settings: Settings) -> str:
    """Where people reach this server: the setting, or the address it listens on."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"
