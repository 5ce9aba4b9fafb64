"""Loading what the decider needs to know about a pipeline, in a few queries.

Stage conditions' evaluations are read only for stages that have conditions.

Two statements in the common case: the pipeline's active executions, then the stage each is
in with the attempts of its actions. Transitions are read only when the pipeline row said
one is disabled. A PARALLEL pipeline never makes one execution wait for another, so when the
caller names the execution an event is about (``focus``), only that one is loaded: every
committed state is settled, so the others have nothing to do, and the cost of an event does
not grow with the number of executions running beside it. A job result has read those two
already, with its job and the pipeline's lock (``ahead``): the snapshot starts from them.
"""

from __future__ import annotations

from collections.abc import Iterable

from conveyor.domain.execution import (
    ActionRun,
    ConditionKind,
    ConditionRun,
    RuleRun,
    Run,
    Snapshot,
    StageRun,
    StopRequest,
)
from conveyor.domain.pipeline import ExecutionMode, Stage
from conveyor.domain.plan import Plan
from conveyor.domain.status import (
    ActionStatus,
    ConditionStatus,
    ExecutionStatus,
    RuleStatus,
    StageStatus,
)
from conveyor.engine.plans import Plans
from conveyor.store import ExecutionRecord, PipelineRecord, RuleRecord, Tx
from conveyor.store.executions import LiveRead, StageRows

_ACTIVE = (ExecutionStatus.IN_PROGRESS, ExecutionStatus.STOPPING)


def load_snapshot(
    tx: Tx,
    plans_cache: Plans,
    pipeline: PipelineRecord,
    extra: Iterable[ExecutionRecord] = (),
    focus: str | None = None,
    near: tuple[str, str] | None = None,
    ahead: LiveRead | None = None,
) -> tuple[Snapshot, dict[str, ExecutionRecord]]:
    """The pipeline's live state: its active executions (plus ``extra``) where they are, the
    latest attempts of the actions in their current stages, and which stages are closed.

    ``focus``: the execution the event is about; in PARALLEL mode, the only one loaded.
    ``near``: the (execution id, stage) the event is most likely about (a job result's
    attempt's), whose stage is read with the executions, in the same round trip.
    ``ahead``: those executions and that stage, read already under the pipeline's lock
    (with a job result's rows), in place of reading them here."""
    read: StageRows = {}
    if ahead is not None:
        active = [r for r in ahead.executions if r.status in _ACTIVE]
        read = ahead.stages
    elif focus is not None and pipeline.execution_mode == ExecutionMode.PARALLEL:
        if near is not None and near[0] == focus:
            both, read = tx.executions.live_with_stage(pipeline.id, *near, only=True)
            found = both[0] if both else None
        else:
            found = tx.executions.get(focus)
        active = [found] if found is not None and found.status in _ACTIVE else []
    elif near is not None:
        active, read = tx.executions.live_with_stage(pipeline.id, *near)
    else:
        active = tx.executions.active(pipeline.id)
    records = {r.id: r for r in active}
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
    stages = {
        (s.execution_id, s.stage): (s, briefs)
        for s, briefs in tx.executions.stages_with_actions(inside, read)
    }
    retrying = [
        (run_id, name)
        for run_id, name in inside
        if _stage_plan(plans[records[run_id].version], name).on_failure_result == "RETRY"
    ]
    retries = tx.stage_runs.retries(retrying) if retrying else {}
    conditional = [
        (run_id, name)
        for run_id, name in inside
        if _stage_plan(plans[records[run_id].version], name).has_conditions
    ]
    conditions = _conditions(tx, conditional) if conditional else {}
    runs = []
    for record in records.values():
        plan = plans[record.version]
        stage_run = None
        if not record.waiting and record.stage_index < len(plan.stages):
            name = plan.stages[record.stage_index].name
            found_stage = stages.get((record.id, name))
            if found_stage is not None:
                stage, briefs = found_stage
                actions: dict[str, ActionRun] = {}
                for b in briefs:
                    if b.attempt >= stage.base_attempt:
                        actions[b.action] = ActionRun(
                            b.id, b.action, ActionStatus(b.status), b.attempt, b.error_message
                        )
                retry = retries.get((record.id, name))
                stage_run = StageRun(
                    name,
                    StageStatus(stage.status),
                    stage.attempt,
                    stage.base_attempt,
                    actions,
                    auto_retried=retry is not None and retry.auto_attempt == stage.attempt,
                    conditions=conditions.get((record.id, name), ()),
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
                rollback=record.execution_type == "ROLLBACK",
            )
        )
    snapshot = Snapshot(
        version=pipeline.version,
        mode=ExecutionMode(pipeline.execution_mode),
        plans=plans,
        closed=_closed(tx, pipeline, current),
        runs=tuple(runs),
        rollback_targets=_rollback_targets(tx, pipeline, current, inside),
    )
    return snapshot, records


def _conditions(
    tx: Tx, pairs: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[ConditionRun, ...]]:
    """The latest evaluation of each condition of these stage executions, with the rule it
    is running (or ran last)."""
    found = tx.rule_runs.conditions_of(pairs)
    rules = tx.rule_runs.rules_of(sorted({run_id for run_id, _ in found}))
    latest_rule: dict[tuple[str, str, str, int, int], RuleRecord] = {}
    for rule in rules:  # oldest first: the last one kept is the latest
        latest_rule[
            (rule.execution_id, rule.stage, rule.kind, rule.condition_index, rule.attempt)
        ] = rule
    result: dict[tuple[str, str], tuple[ConditionRun, ...]] = {}
    for pair, records in found.items():
        latest: dict[tuple[str, int], ConditionRun] = {}
        for c in records:
            found_rule = latest_rule.get(
                (c.execution_id, c.stage, c.kind, c.condition_index, c.attempt)
            )
            current = (
                None
                if found_rule is None
                else RuleRun(found_rule.id, found_rule.rule, RuleStatus(found_rule.status))
            )
            latest.pop((c.kind, c.condition_index), None)
            latest[(c.kind, c.condition_index)] = ConditionRun(
                ConditionKind(c.kind),
                c.condition_index,
                ConditionStatus(c.status),
                c.attempt,
                current,
            )
        result[pair] = tuple(latest.values())
    return result


def _stage_plan(plan: Plan, name: str) -> Stage:
    found = plan.stage(name)
    assert found is not None
    return found.stage


def _rollback_targets(
    tx: Tx, pipeline: PipelineRecord, plan: Plan, inside: list[tuple[str, str]]
) -> dict[str, str]:
    """For the stages that roll back on failure (or on an unmet onSuccess condition) and
    have an execution in them: the
    execution an automatic rollback would go back to. Nothing is read otherwise."""
    rolling = {
        s.name
        for s in plan.stages
        if s.stage.on_failure_result == "ROLLBACK"
        or any(c.result == "ROLLBACK" for c in s.stage.on_success)
    }
    targets = {}
    for name in sorted({name for _, name in inside if name in rolling}):
        target = tx.stage_runs.last_good(pipeline.id, name, pipeline.version)
        if target is not None:
            targets[name] = target
    return targets


def _closed(tx: Tx, pipeline: PipelineRecord, plan: Plan) -> frozenset[str]:
    """Stages whose way in is disabled: their inbound, or the previous stage's outbound."""
    if pipeline.any_disabled is False:
        return frozenset()
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
