"""The engine's services, assembled once per process from the store and the settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.engine.actiontypes import ActionTypeService
from conveyor.engine.builds import BuildService
from conveyor.engine.clock import Clock, SystemClock
from conveyor.engine.eventlog import log_events
from conveyor.engine.executions import ExecutionService
from conveyor.engine.health import DatabaseWatch
from conveyor.engine.jobs import LEASE_SECONDS, JobService
from conveyor.engine.notify import Notifier
from conveyor.engine.pipelines import PipelineService
from conveyor.engine.plans import Plans
from conveyor.engine.projects import ProjectService
from conveyor.engine.reports import ReportService
from conveyor.engine.revisions import RevisionService
from conveyor.engine.runner import Runner
from conveyor.engine.sweeper import Retention, Sweeper
from conveyor.engine.tags import TagService
from conveyor.engine.views import Views
from conveyor.engine.webhooks import WebhookService
from conveyor.store import DuplicateKey, Store

_TOKEN_KEY = "page_token_key"
# The meta key naming the advisory lock its holder sweeps under (`Sweeper`).
SWEEPER_LOCK = "sweeper_lock_key"


@dataclass(frozen=True, slots=True)
class Limits:
    max_pipelines: int | None = None
    max_custom_action_types: int | None = None
    max_tags: int = 50
    lease_seconds: float = LEASE_SECONDS
    # Days to keep events and finished jobs; None keeps them for ever.
    event_retention_days: float | None = None
    job_retention_days: float | None = None


@dataclass(frozen=True, slots=True)
class Services:
    store: Store
    scope: Scope
    clock: Clock
    notifier: Notifier
    pipelines: PipelineService
    action_types: ActionTypeService
    tags: TagService
    executions: ExecutionService
    jobs: JobService
    views: Views
    webhooks: WebhookService
    revisions: RevisionService
    # CodeBuild projects, served by the CodeBuild API on the same endpoint.
    projects: ProjectService
    # CodeBuild builds, whoever runs them.
    builds: BuildService
    # CodeBuild report groups and the reports builds leave in them.
    reports: ReportService
    sweeper: Sweeper
    # Whether the database answers, for /health.
    health: DatabaseWatch
    # Signs page tokens; shared through the database by every server of one installation.
    token_key: bytes
    # Built-in action types left to job workers, which may poll for them (an extension).
    worker_types: frozenset[ActionTypeId] = frozenset()
    # Built-in action types this installation has providers for (ListActionTypes says so).
    runnable: frozenset[ActionTypeId] = frozenset()

    @classmethod
    def build(
        cls,
        store: Store,
        scope: Scope,
        limits: Limits,
        clock: Clock | None = None,
        runnable: frozenset[ActionTypeId] = frozenset(),
        log_base: str | None = None,
        worker_types: frozenset[ActionTypeId] = frozenset(),
    ) -> Services:
        """``runnable``: the built-in action types this process has providers for;
        ``log_base``: the server's URL, under which ``/logs/<id>`` serves action logs;
        ``worker_types``: the built-in types that job workers run instead."""
        clock = clock or SystemClock()
        store.on_events = log_events
        notifier = Notifier()
        plans = Plans()
        runner = Runner(scope, clock, plans, runnable | worker_types, log_base)
        executions = ExecutionService(store, scope, clock, runner, notifier)
        return cls(
            store=store,
            scope=scope,
            clock=clock,
            notifier=notifier,
            pipelines=PipelineService(
                store,
                scope,
                clock,
                max_pipelines=limits.max_pipelines,
                max_tags=limits.max_tags,
                executions=executions,
            ),
            action_types=ActionTypeService(
                store,
                scope,
                clock,
                max_custom=limits.max_custom_action_types,
                max_tags=limits.max_tags,
            ),
            tags=TagService(store, scope, clock, max_tags=limits.max_tags),
            executions=executions,
            jobs=JobService(store, clock, runner, executions, limits.lease_seconds),
            views=Views(store, scope, plans),
            webhooks=WebhookService(
                store,
                scope,
                clock,
                plans,
                executions,
                max_tags=limits.max_tags,
                base_url=log_base,
            ),
            revisions=RevisionService(scope, clock, plans, executions),
            projects=ProjectService(store, scope, clock),
            builds=BuildService(store, scope, clock, log_base),
            reports=ReportService(store, scope, clock),
            sweeper=Sweeper(
                store,
                clock,
                runner,
                executions,
                notifier,
                retention=Retention.of_days(limits.event_retention_days, limits.job_retention_days),
                leadership=store.leadership(SWEEPER_LOCK)
                if store.dialect == "postgresql"
                else None,
            ),
            health=DatabaseWatch(store),
            token_key=_token_key(store),
            worker_types=worker_types,
            runnable=runnable,
        )


def _token_key(store: Store) -> bytes:
    """The installation's page-token key, made by whichever server starts first."""
    try:
        with store.write() as tx:
            key = tx.meta.setdefault(_TOKEN_KEY, secrets.token_hex(32))
    except DuplicateKey:
        with store.read() as tx:
            key = tx.meta.get(_TOKEN_KEY) or ""
    return bytes.fromhex(key)
