"""Loading what the decider needs to know about a pipeline, in a few queries."""

from __future__ import annotations

from collections.abc import Iterable

from conveyor.domain.execution import ActionRun, Run, Snapshot, StageRun, StopRequest
from conveyor.domain.pipeline import ExecutionMode
from conveyor.domain.plan import Plan
from conveyor.domain.status import ActionStatus, ExecutionStatus, StageStatus
from conveyor.engine.plans import Plans
from conveyor.store import ExecutionRecord, PipelineRecord, Tx


def load_snapshot(
    tx: Tx, plans_cache: Plans, pipeline: PipelineRecord, extra: Iterable[ExecutionRecord] = ()
) -> tuple[Snapshot, dict[str, ExecutionRecord]]:
    """The pipeline's live state: its active executions (plus ``extra``) where they are, the
    latest attempts of the actions in their current stages, and which stages are closed."""
    records = {r.id: r for r in tx.executions.active(pipeline.id)}
    for record in extra:
        records[record.id] = record
    current = plans_cache.get(tx, pipeline.id, pipeline.version)
    plans = {pipeline.version: current}
    for record in records.values():
        if record.version not in plans:
            plans[record.version] = plans_cache.get(tx, pipeline.id, record.version)
    inside = [
        (r.id, plans[r.version].stages[r.stage_index].name)
        for r in records.values()
        if not r.waiting and r.stage_index < len(plans[r.version].stages)
    ]
    stages = {(s.execution_id, s.stage): s for s in tx.executions.stages_at(inside)}
    briefs = tx.actions.briefs(inside)
    runs = []
    for record in records.values():
        plan = plans[record.version]
        stage_run = None
        if not record.waiting and record.stage_index < len(plan.stages):
            name = plan.stages[record.stage_index].name
            stage = stages.get((record.id, name))
            if stage is not None:
                actions: dict[str, ActionRun] = {}
                for b in briefs:
                    if (
                        b.execution_id == record.id
                        and b.stage == name
                        and (b.attempt >= stage.base_attempt)
                    ):
                        actions[b.action] = ActionRun(
                            b.id, b.action, ActionStatus(b.status), b.attempt, b.error_message
                        )
                stage_run = StageRun(
                    name, StageStatus(stage.status), stage.attempt, stage.base_attempt, actions
                )
        stop = None
        if record.stop_abandon is not None:
            stop = StopRequest(record.stop_abandon, record.stop_reason)
        runs.append(
            Run(
                record.id,
                record.seq,
                record.version,
                ExecutionStatus(record.status),
                record.stage_index,
                record.waiting,
                record.arrived,
                stop,
                stage_run,
            )
        )
    snapshot = Snapshot(
        version=pipeline.version,
        mode=ExecutionMode(pipeline.execution_mode),
        plans=plans,
        closed=_closed(tx, pipeline, current),
        runs=tuple(runs),
    )
    return snapshot, records


def _closed(tx: Tx, pipeline: PipelineRecord, plan: Plan) -> frozenset[str]:
    """Stages whose way in is disabled: their inbound, or the previous stage's outbound."""
    disabled = {(t.stage, t.direction) for t in tx.transitions.of(pipeline.id) if not t.enabled}
    if not disabled:
        return frozenset()
    closed = set()
    for stage in plan.stages:
        if (stage.name, "Inbound") in disabled:
            closed.add(stage.name)
        if stage.index > 0 and (plan.stages[stage.index - 1].name, "Outbound") in disabled:
            closed.add(stage.name)
    return frozenset(closed)
