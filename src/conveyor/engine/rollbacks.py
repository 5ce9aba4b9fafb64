"""Recording a rollback execution: a new execution of type ROLLBACK that waits in front of
the stage it rolls back, carrying the target execution's source revisions, variables, output
variables and artifacts, so the stage runs again exactly as the target ran it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from conveyor.domain.events import PIPELINE, pipeline_detail
from conveyor.domain.status import ExecutionStatus
from conveyor.store import ExecutionRecord, PipelineRecord, RollbackRecord, Tx

if TYPE_CHECKING:
    from conveyor.engine.runner import Runner

MANUAL = "ManualRollback"
AUTOMATED = "AutomatedRollback"


def record_rollback(
    tx: Tx,
    runner: Runner,
    pipeline: PipelineRecord,
    stage: str,
    stage_index: int,
    target: ExecutionRecord,
    trigger_type: str,
    trigger_detail: str,
) -> ExecutionRecord:
    now = runner.clock.now()
    record = ExecutionRecord(
        id=str(uuid.uuid4()),
        pipeline_id=pipeline.id,
        seq=tx.executions.next_seq(pipeline.id),
        version=pipeline.version,
        status=ExecutionStatus.IN_PROGRESS,
        summary=None,
        stage_index=stage_index,
        waiting=True,
        arrived=now,
        stop_abandon=None,
        stop_reason=None,
        trigger_type=trigger_type,
        trigger_detail=trigger_detail,
        execution_mode=pipeline.execution_mode,
        execution_type="ROLLBACK",
        client_token=None,
        variables=list(target.variables),
        source_revisions=list(target.source_revisions),
        outputs=dict(target.outputs),
        artifacts=dict(target.artifacts),
        started=now,
        updated=now,
    )
    tx.executions.insert(record)
    tx.stage_runs.add_rollback(RollbackRecord(record.id, pipeline.id, stage, target.id))
    trigger = {"trigger-type": trigger_type, "trigger-detail": trigger_detail}
    runner.event(
        tx,
        pipeline,
        PIPELINE,
        pipeline_detail(
            pipeline.name,
            record.id,
            "STARTED",
            pipeline.version,
            **{"execution-trigger": trigger},
        ),
    )
    return record
