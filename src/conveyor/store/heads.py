"""Queries for change detection: the heads it has seen, the problems it meets, the pipelines
it follows, and the one lock that makes a single server of a fleet the detecting one."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from conveyor.store.tables import meta, pipelines, source_heads, source_problems

# Heads by (pipeline id, action, ref) → revision.
HeadMap = dict[tuple[int, str, str], str]
_LOCK_KEY = "detector_lock_key"


@dataclass(frozen=True, slots=True)
class PipelineBrief:
    id: int
    name: str
    version: int


class Heads:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def pipelines(self) -> list[PipelineBrief]:
        rows = self._conn.execute(
            sa.select(pipelines.c.id, pipelines.c.name, pipelines.c.version)
        ).all()
        return [PipelineBrief(r.id, r.name, r.version) for r in rows]

    def all(self) -> HeadMap:
        rows = self._conn.execute(
            sa.select(
                source_heads.c.pipeline_id,
                source_heads.c.action,
                source_heads.c.ref,
                source_heads.c.revision,
            )
        ).all()
        return {(r.pipeline_id, r.action, r.ref): r.revision for r in rows}

    def of(self, pipeline_id: int) -> dict[tuple[str, str], str]:
        rows = self._conn.execute(
            sa.select(source_heads.c.action, source_heads.c.ref, source_heads.c.revision).where(
                source_heads.c.pipeline_id == pipeline_id
            )
        ).all()
        return {(r.action, r.ref): r.revision for r in rows}

    def _upsert(self, table: sa.Table, values: dict[str, object], keys: list[str]) -> None:
        changed = {k: v for k, v in values.items() if k not in keys}
        # Imported here: the PostgreSQL dialect takes a while to load, and `conveyor run`
        # never needs it.
        if self._conn.dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql

            pg = postgresql.insert(table).values(**values)
            self._conn.execute(pg.on_conflict_do_update(index_elements=keys, set_=changed))
            return
        from sqlalchemy.dialects import sqlite

        lite = sqlite.insert(table).values(**values)
        self._conn.execute(lite.on_conflict_do_update(index_elements=keys, set_=changed))

    def put(self, pipeline_id: int, action: str, ref: str, revision: str, now: float) -> None:
        values = {
            "pipeline_id": pipeline_id,
            "action": action,
            "ref": ref,
            "revision": revision,
            "seen": now,
        }
        self._upsert(source_heads, values, ["pipeline_id", "action", "ref"])

    def problems(self, pipeline_id: int) -> dict[str, str]:
        rows = self._conn.execute(
            sa.select(source_problems.c.action, source_problems.c.message).where(
                source_problems.c.pipeline_id == pipeline_id
            )
        ).all()
        return {r.action: r.message for r in rows}

    def all_problems(self) -> dict[tuple[int, str], str]:
        rows = self._conn.execute(
            sa.select(
                source_problems.c.pipeline_id, source_problems.c.action, source_problems.c.message
            )
        ).all()
        return {(r.pipeline_id, r.action): r.message for r in rows}

    def set_problem(self, pipeline_id: int, action: str, message: str | None, now: float) -> None:
        """Record why detection fails for the action, or (None) that it works again."""
        if message is None:
            self._conn.execute(
                sa.delete(source_problems).where(
                    source_problems.c.pipeline_id == pipeline_id,
                    source_problems.c.action == action,
                )
            )
            return
        values = {"pipeline_id": pipeline_id, "action": action, "message": message, "since": now}
        self._upsert(source_problems, values, ["pipeline_id", "action"])


class Leadership:
    """A session-level PostgreSQL advisory lock held on a connection of its own: whoever holds
    it detects changes; it goes with the connection when the process dies. SQLite belongs to
    one process (the home lock), which therefore always holds it."""

    def __init__(self, engine: Engine, name: str = _LOCK_KEY) -> None:
        self._engine = engine
        self._name = name
        self._conn: sa.Connection | None = None
        self._key: int | None = None
        # One caller at a time: the lock's connection is not shared between threads.
        self._mutex = threading.Lock()

    @property
    def shared(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    def _lock_key(self) -> int:
        # Per installation (several may share one PostgreSQL server), made by the first server.
        if self._key is None:
            with self._engine.begin() as conn:
                value = conn.execute(sa.select(meta.c.value).where(meta.c.key == self._name))
                found = value.scalar()
                if found is None:
                    found = str(secrets.randbits(62))
                    from sqlalchemy.dialects import postgresql

                    insert = postgresql.insert(meta).values(key=self._name, value=found)
                    conn.execute(insert.on_conflict_do_nothing())
                    found = conn.execute(
                        sa.select(meta.c.value).where(meta.c.key == self._name)
                    ).scalar_one()
            self._key = int(found)
        return self._key

    def hold(self) -> bool:
        """Whether this process holds the lock, taking it when it is free; checks that a lock
        already held is still held (its connection may have been lost)."""
        if not self.shared:
            return True
        with self._mutex:
            return self._hold()

    def _hold(self) -> bool:
        try:
            if self._conn is not None:
                self._conn.execute(sa.text("SELECT 1"))
                self._conn.commit()  # never left idle in a transaction
                return True
            key = self._lock_key()
            conn = self._engine.connect()
            try:
                got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
                held = bool(got.scalar())
                conn.commit()
            except BaseException:
                conn.close()
                raise
            if held:
                self._conn = conn
                return True
            conn.close()
            return False
        except sa.exc.SQLAlchemyError:
            self._drop()
            return False

    def release(self) -> None:
        with self._mutex:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                # Never back to the pool: the session holds the lock.
                conn.invalidate()
                conn.close()
            except sa.exc.SQLAlchemyError:
                pass
