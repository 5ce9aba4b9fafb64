"""Rows for the store's contract tests: a pipeline, an execution, an attempt and its jobs.

Each is the least the schema's keys and columns accept, built through the store's own
repositories, so the tests speak the store's interface and nothing below it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

from conveyor.domain.actiontype import ActionTypeId
from conveyor.store import ActionRecord, ExecutionRecord, JobRecord, Store, Tx
from conveyor.store.database import create_engine

DECLARATION = {"name": "app", "stages": [{"name": "Deploy", "actions": []}]}
ROLLOUT = ActionTypeId("Deploy", "Custom", "Rollout", "1")
OTHER = ActionTypeId("Build", "Custom", "Jenkins", "1")

T = TypeVar("T")


def execution(pipeline_id: int, seq: int = 1, status: str = "InProgress") -> ExecutionRecord:
    return ExecutionRecord(
        id=str(uuid.uuid4()),
        pipeline_id=pipeline_id,
        seq=seq,
        version=1,
        status=status,
        summary=None,
        stage_index=0,
        waiting=False,
        arrived=1.0,
        stop_abandon=None,
        stop_reason=None,
        trigger_type="StartPipelineExecution",
        trigger_detail=None,
        execution_mode="SUPERSEDED",
        execution_type="STANDARD",
        client_token=None,
        variables=[],
        source_revisions=[],
        outputs={},
        artifacts={},
        started=1.0,
        updated=1.0,
    )


def action(execution: ExecutionRecord, status: str = "InProgress") -> ActionRecord:
    return ActionRecord(
        id=str(uuid.uuid4()),
        execution_id=execution.id,
        pipeline_id=execution.pipeline_id,
        pipeline_version=1,
        stage="Deploy",
        action="Rollout",
        attempt=1,
        status=status,
        started=1.0,
        updated=1.0,
        deadline=None,
        summary=None,
        external_id=None,
        external_url=None,
        error_code=None,
        error_message=None,
        percent_complete=None,
        token=None,
        updated_by=None,
        input={},
        output_artifacts=[],
        output_variables=None,
        revision=None,
    )


def job(
    attempt: ActionRecord,
    created: float = 1.0,
    type_id: ActionTypeId = ROLLOUT,
    query_value: str | None = None,
) -> JobRecord:
    return JobRecord(
        id=str(uuid.uuid4()),
        action_execution_id=attempt.id,
        pipeline_id=attempt.pipeline_id,
        type_id=type_id,
        status="Queued",
        nonce=uuid.uuid4().hex,
        owner=None,
        lease_until=None,
        query_value=query_value,
        data={},
        created=created,
        updated=created,
    )


def running_action(tx: Tx) -> tuple[ExecutionRecord, ActionRecord]:
    """A pipeline with one execution in progress in stage Deploy, and its action's attempt."""
    pipeline = tx.pipelines.insert("app", DECLARATION, "V2", "SUPERSEDED", 1.0)
    run = execution(pipeline.id)
    tx.executions.insert(run)
    tx.executions.enter_stage(run.id, pipeline.id, "Deploy", 1.0)
    attempt = action(run)
    tx.actions.insert(attempt)
    return run, attempt


def queued_jobs(store: Store, count: int) -> list[JobRecord]:
    """``count`` queued jobs of ``ROLLOUT`` for one attempt, oldest first."""
    with store.write() as tx:
        _, attempt = running_action(tx)
        made = [job(attempt, created=float(n)) for n in range(count)]
        for record in made:
            tx.jobs.insert(record)
    return made


def stores(url: str, count: int) -> list[Store]:
    """``count`` stores on one database, each with connections of its own, as several
    servers have; the first brings the schema up to date."""
    first = Store.open(url)
    return [first, *(Store(create_engine(url)) for _ in range(count - 1))]


def read(store: Store, query: Callable[[Tx], T]) -> T:
    with store.read() as tx:
        return query(tx)
