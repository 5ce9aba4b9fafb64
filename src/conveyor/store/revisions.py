"""Queries on the revisions given to source actions with PutActionRevision."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from conveyor.store.tables import action_revisions


def _hash(revision_id: str) -> str:
    return hashlib.sha256(revision_id.encode("utf-8", "surrogatepass")).hexdigest()


class ActionRevisions:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def execution_of(
        self, pipeline_id: int, stage: str, action: str, revision_id: str
    ) -> str | None:
        """The execution the revision started, when it was given to this action before."""
        query = sa.select(action_revisions.c.execution_id).where(
            action_revisions.c.pipeline_id == pipeline_id,
            action_revisions.c.stage == stage,
            action_revisions.c.action == action,
            action_revisions.c.revision_hash == _hash(revision_id),
        )
        found: str | None = self._conn.execute(query).scalar()
        return found

    def record(
        self,
        pipeline_id: int,
        stage: str,
        action: str,
        revision_id: str,
        execution_id: str,
        now: float,
    ) -> None:
        self._conn.execute(
            sa.insert(action_revisions).values(
                pipeline_id=pipeline_id,
                stage=stage,
                action=action,
                revision_hash=_hash(revision_id),
                execution_id=execution_id,
                created=now,
            )
        )
