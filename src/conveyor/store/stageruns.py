"""Queries on what V2 stages add to an execution: automatic retries and rollbacks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from conveyor.store.rows import upsert
from conveyor.store.tables import executions, rollbacks, stage_executions, stage_retries

AUTOMATED = "AutomatedStageRetry"
MANUAL = "ManualStageRetry"


@dataclass(frozen=True, slots=True)
class RetryRecord:
    execution_id: str
    stage: str
    auto_retries: int
    auto_attempt: int
    latest_trigger: str


@dataclass(frozen=True, slots=True)
class RollbackRecord:
    execution_id: str
    pipeline_id: int
    stage: str
    target_id: str


class StageRuns:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- automatic retries ------------------------------------------------------------------

    def retries(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], RetryRecord]:
        """The retry rows of these (execution id, stage) pairs, where there are some."""
        if not pairs:
            return {}
        query = sa.select(stage_retries).where(
            sa.tuple_(stage_retries.c.execution_id, stage_retries.c.stage).in_(list(pairs))
        )
        found = {}
        for row in self._conn.execute(query):
            record = RetryRecord(**row._asdict())
            found[(record.execution_id, record.stage)] = record
        return found

    def retried(self, execution_id: str, stage: str, attempt: int, *, automatic: bool) -> None:
        """Count a retry of the stage (only stages that retry automatically keep a row)."""
        key = {"execution_id": execution_id, "stage": stage}
        current = self.retries([(execution_id, stage)]).get((execution_id, stage))
        if automatic:
            count = (current.auto_retries if current else 0) + 1
            values = {"auto_retries": count, "auto_attempt": attempt, "latest_trigger": AUTOMATED}
        elif current is not None:
            values = {
                "auto_retries": current.auto_retries,
                "auto_attempt": current.auto_attempt,
                "latest_trigger": MANUAL,
            }
        else:
            return
        upsert(self._conn, stage_retries, key, values)

    # -- rollbacks --------------------------------------------------------------------------

    def add_rollback(self, record: RollbackRecord) -> None:
        self._conn.execute(
            sa.insert(rollbacks).values(
                execution_id=record.execution_id,
                pipeline_id=record.pipeline_id,
                stage=record.stage,
                target_id=record.target_id,
            )
        )

    def rollback(self, execution_id: str) -> RollbackRecord | None:
        row = self._conn.execute(
            sa.select(rollbacks).where(rollbacks.c.execution_id == execution_id)
        ).first()
        return None if row is None else RollbackRecord(**row._asdict())

    def rollback_in(self, pipeline_id: int, stage: str, active: Sequence[str]) -> str | None:
        """A rollback execution of ``stage`` among the ``active`` executions, if any."""
        if not active:
            return None
        row = self._conn.execute(
            sa.select(rollbacks.c.execution_id).where(
                rollbacks.c.pipeline_id == pipeline_id,
                rollbacks.c.stage == stage,
                rollbacks.c.execution_id.in_(list(active)),
            )
        ).first()
        return None if row is None else str(row[0])

    def succeeded_in(self, pipeline_id: int, stage: str) -> list[str]:
        """Executions that succeeded in ``stage``, newest first."""
        query = (
            sa.select(stage_executions.c.execution_id)
            .where(
                stage_executions.c.pipeline_id == pipeline_id,
                stage_executions.c.stage == stage,
                stage_executions.c.status == "Succeeded",
            )
            .order_by(stage_executions.c.entered.desc())
        )
        return [str(r[0]) for r in self._conn.execute(query)]

    def last_good(self, pipeline_id: int, stage: str, version: int) -> str | None:
        """The latest standard execution of pipeline ``version`` that succeeded in
        ``stage``: what an automatic rollback of the stage goes back to."""
        query = (
            sa.select(stage_executions.c.execution_id)
            .join(executions, executions.c.id == stage_executions.c.execution_id)
            .where(
                stage_executions.c.pipeline_id == pipeline_id,
                stage_executions.c.stage == stage,
                stage_executions.c.status == "Succeeded",
                executions.c.version == version,
                executions.c.execution_type == "STANDARD",
            )
            .order_by(stage_executions.c.entered.desc())
            .limit(1)
        )
        row = self._conn.execute(query).first()
        return None if row is None else str(row[0])
