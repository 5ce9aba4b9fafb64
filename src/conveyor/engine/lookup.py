"""Finding a pipeline or an execution by what the caller named, or the error that says why not."""

from __future__ import annotations

from conveyor.domain.arn import Scope
from conveyor.domain.errors import PipelineExecutionNotFoundException, PipelineNotFoundException
from conveyor.store import ExecutionRecord, PipelineRecord, Tx


def pipeline(tx: Tx, scope: Scope, name: str, *, lock: bool = False) -> PipelineRecord:
    record = tx.pipelines.get(name, lock=lock)
    if record is None:
        raise PipelineNotFoundException(
            f"Account '{scope.account}' does not have a pipeline with name '{name}'"
        )
    return record


def execution(tx: Tx, scope: Scope, pipeline: PipelineRecord, execution_id: str) -> ExecutionRecord:
    record = tx.executions.get(execution_id)
    if record is None or record.pipeline_id != pipeline.id:
        raise PipelineExecutionNotFoundException(
            f"Account '{scope.account}' does not have an execution with id "
            f"'{execution_id}' for pipeline '{pipeline.name}'"
        )
    return record
