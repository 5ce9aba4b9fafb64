"""Persistence: the only package that speaks SQL.

`Store.read()` and `Store.write()` open a transaction and hand out a `Tx` whose attributes
are the repositories of each concept. The store knows no business rules: it reads and writes
rows, guards updates with the value it expects, and translates driver errors at one seam.

The repositories only servers and the identity commands use (identities, the audit trail,
notifications) are imported the first time a transaction asks for one, and their records
the first time they are imported from here: `conveyor run` never loads them.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from conveyor.store import fast
from conveyor.store.actions import ActionBrief, ActionRecord, Actions
from conveyor.store.actiontypes import ActionTypeRecord, ActionTypes
from conveyor.store.builds import (
    BuildRecord,
    Builds,
    CaseRecord,
    ReportGroupRecord,
    ReportRecord,
)
from conveyor.store.database import WRITE, checkpoint, create_engine, describe_url, migrate
from conveyor.store.errors import DuplicateKey, StoreError, StoreUnavailable
from conveyor.store.events import EventRecord, Events
from conveyor.store.executions import ExecutionRecord, Executions, StageRecord
from conveyor.store.heads import Heads, Leadership, PipelineBrief
from conveyor.store.jobs import JobRecord, Jobs
from conveyor.store.meta import Meta
from conveyor.store.pipelines import DeclarationCache, PipelineRecord, Pipelines, SecretBox
from conveyor.store.projects import ProjectRecord, Projects
from conveyor.store.results import JobResultRows, Results
from conveyor.store.revisions import ActionRevisions
from conveyor.store.ruleruns import ConditionRecord, RuleJobRows, RuleRecord, RuleRuns
from conveyor.store.stageruns import RetryRecord, RollbackRecord, StageRuns
from conveyor.store.tags import Tags
from conveyor.store.transitions import TransitionRecord, Transitions
from conveyor.store.webhooks import WebhookRecord, Webhooks

if TYPE_CHECKING:
    from conveyor.store.audit import Audit, AuditRecord
    from conveyor.store.deliveries import Deliveries
    from conveyor.store.identities import Identities, KeyOwner, KeyRecord, PrincipalRecord
    from conveyor.store.notifications import NotificationRules

# Names this package gives from modules it imports only when asked (see above).
_LATER = {
    "AuditRecord": "conveyor.store.audit",
    "KeyOwner": "conveyor.store.identities",
    "KeyRecord": "conveyor.store.identities",
    "PrincipalRecord": "conveyor.store.identities",
}


def __getattr__(name: str) -> Any:
    module = _LATER.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "ActionBrief",
    "ActionRecord",
    "ActionTypeRecord",
    "AuditRecord",
    "BuildRecord",
    "CaseRecord",
    "ConditionRecord",
    "DuplicateKey",
    "EventRecord",
    "ExecutionRecord",
    "JobRecord",
    "JobResultRows",
    "KeyOwner",
    "KeyRecord",
    "Leadership",
    "PipelineBrief",
    "PipelineRecord",
    "PrincipalRecord",
    "ProjectRecord",
    "ReportGroupRecord",
    "ReportRecord",
    "RetryRecord",
    "RollbackRecord",
    "RuleJobRows",
    "RuleRecord",
    "RuleRuns",
    "SecretBox",
    "StageRecord",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TransitionRecord",
    "Tx",
    "WebhookRecord",
]


class Tx:
    """One transaction's view of the repositories."""

    def __init__(
        self,
        conn: sa.Connection,
        declarations: DeclarationCache | None,
        box: SecretBox | None = None,
    ) -> None:
        self.pipelines = Pipelines(conn, declarations, box)
        self.executions = Executions(conn)
        self.actions = Actions(conn)
        self.jobs = Jobs(conn, box)
        self.transitions = Transitions(conn)
        self.events = Events(conn)
        self.tags = Tags(conn)
        self.action_types = ActionTypes(conn)
        self.meta = Meta(conn)
        self.results = Results(conn)
        self.webhooks = Webhooks(conn, box)
        self.action_revisions = ActionRevisions(conn)
        self.heads = Heads(conn)
        self.projects = Projects(conn)
        self.builds = Builds(conn)
        self.stage_runs = StageRuns(conn)
        self.rule_runs = RuleRuns(conn)
        self._conn, self._box = conn, box

    @cached_property
    def identities(self) -> Identities:
        from conveyor.store.identities import Identities

        return Identities(self._conn)

    @cached_property
    def audit(self) -> Audit:
        from conveyor.store.audit import Audit

        return Audit(self._conn)

    @cached_property
    def notifications(self) -> NotificationRules:
        from conveyor.store.notifications import NotificationRules

        return NotificationRules(self._conn, self._box)

    @cached_property
    def deliveries(self) -> Deliveries:
        from conveyor.store.deliveries import Deliveries

        return Deliveries(self._conn)


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._declarations = DeclarationCache()
        # SQLite takes one writer at a time, and a writer that finds the database locked
        # sleeps in steps of 1, 2, 5, 10 ms before trying again. Writers of this process
        # queue here instead and go the moment the previous one commits; other processes
        # on the same file still meet SQLite's own lock.
        self._writer = threading.Lock() if engine.dialect.name == "sqlite" else None
        # The driver's own error for a broken constraint, as `fast` statements raise it.
        self._integrity_error: type[Exception] = engine.dialect.loaded_dbapi.IntegrityError
        # Seals secret values at rest; stored declarations' sealed values are opened with it.
        self.box: SecretBox | None = None
        # Called with a transaction's events once it has committed (the server logs them).
        self.on_events: Callable[[list[tuple[str, dict[str, Any]]]], None] | None = None
        # Given up when the store closes, with their connections.
        self._leaderships: list[Leadership] = []

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and bring the schema up to date, or raise `StoreUnavailable` saying why."""
        try:
            engine = create_engine(url)
            migrate(engine)
        except (sa.exc.SQLAlchemyError, ImportError, OSError) as exc:
            shown = describe_url(url)
            reason = getattr(exc, "orig", None) or exc
            raise StoreUnavailable(f"cannot open the database {shown}: {reason}") from exc
        return cls(engine)

    def leadership(self, name: str | None = None) -> Leadership:
        r"""A lock that one process of those sharing the database holds at a time; locks of
        other ``name``\ s are held apart (change detection's has none)."""
        made = Leadership(self.engine) if name is None else Leadership(self.engine, name)
        self._leaderships.append(made)
        return made

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._transaction(write=False) as tx:
            yield tx

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self._transaction(write=True) as tx:
            yield tx

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Tx]:
        if write and self._writer is not None:
            with self._writer, self._open(write=True) as tx:
                yield tx
        else:
            with self._open(write=write) as tx:
                yield tx

    @contextmanager
    def _open(self, *, write: bool) -> Iterator[Tx]:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITE: write})
                try:
                    with conn.begin():
                        tx = Tx(conn, None if write else self._declarations, self.box)
                        yield tx
                        tx.events.flush()
                        fast.flush(conn)
                finally:
                    fast.forget(conn)
            if tx.events.appended and self.on_events is not None:
                self.on_events(tx.events.appended)
        except sa.exc.IntegrityError as exc:
            raise DuplicateKey(str(exc.orig)) from exc
        except self._integrity_error as exc:  # from a statement on the driver's cursor (`fast`)
            raise DuplicateKey(str(exc)) from exc

    def checkpoint(self) -> None:
        """Fold SQLite's write-ahead log into the database off the writers' path (see
        `database.checkpoint`); the engine's sweeper calls it every pass."""
        checkpoint(self.engine)

    def close(self) -> None:
        for leadership in self._leaderships:
            leadership.release()
        self.engine.dispose()
