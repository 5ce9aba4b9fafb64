"""What a job result needs, read in one statement: the pipeline (locked), the job, its attempt.

A job worker's result runs on the hot path of every action, and on PostgreSQL each statement
is a round trip: locking the pipeline, then reading the job, then the action execution took
three. Here one join does it. On PostgreSQL the lock covers the pipeline row only, and a
statement that waited for it sees the job and attempt rows as they were when it began; the
writes that follow are all guarded by the status they expect, so a row that changed in the
meantime makes its guard fail rather than go unnoticed.

What the result's snapshot reads first (the pipeline's live executions, the stage the
attempt is in) goes with the join, keyed on the job: on PostgreSQL those statements run
once the join holds the lock, each seeing what is committed then, so they read what they
would have read later in the transaction, one round trip sooner.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from conveyor.store import fast
from conveyor.store.actions import ActionRecord
from conveyor.store.actions import _record as action_record
from conveyor.store.executions import LIVE_FOR_JOB, STAGE_FOR_JOB, LiveRead, live_read
from conveyor.store.jobs import JobRecord
from conveyor.store.jobs import _record as job_record
from conveyor.store.pipelines import ANY_DISABLED, PipelineRecord, pipeline_record
from conveyor.store.tables import action_executions, jobs, pipelines

_TABLES = (pipelines, jobs, action_executions)
_FOR_RESULT = (
    sa.select(
        *(column.label(f"{table.name}.{column.name}") for table in _TABLES for column in table.c),
        ANY_DISABLED.label("pipelines.any_disabled"),
    )
    .select_from(pipelines)
    .join(jobs, jobs.c.pipeline_id == pipelines.c.id)
    .join(action_executions, action_executions.c.id == jobs.c.action_execution_id)
    .where(jobs.c.id == sa.bindparam("job_id"))
    .with_for_update(of=pipelines)
)


@dataclass(frozen=True, slots=True)
class JobResultRows:
    pipeline: PipelineRecord
    job: JobRecord
    action: ActionRecord
    # What the snapshot of the result reads first, read with the lock (see `lock_for`).
    live: LiveRead


class Results:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def lock_for(self, job_id: str) -> JobResultRows | None:
        """The job, its action execution and its pipeline, whose row stays locked until the
        transaction ends, with what the result's snapshot reads first; None when there is no
        such job."""
        key = {"job_id": job_id}
        queries: list[tuple[sa.Executable, dict[str, str]]] = [
            (_FOR_RESULT, key),
            (LIVE_FOR_JOB, key),
            (STAGE_FOR_JOB, key),
        ]
        rows, live, stage = fast.fetch_together(self._conn, queries)
        if not rows:
            return None
        parts: dict[str, dict[str, object]] = {table.name: {} for table in _TABLES}
        for label, value in rows[0].items():
            table, _, column = label.partition(".")
            parts[table][column] = value
        action = action_record(parts["action_executions"])
        return JobResultRows(
            pipeline_record(parts["pipelines"]),
            job_record(parts["jobs"]),
            action,
            live_read(live, (action.execution_id, action.stage), stage),
        )
