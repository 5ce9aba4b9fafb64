"""Reading executions back: pipeline state, executions, and action executions.

Each read is one read transaction and returns records; the API layer shapes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conveyor.domain.actiontype import render_url
from conveyor.domain.arn import Scope
from conveyor.domain.conditiondecider import declared_conditions, rule_names
from conveyor.domain.execution import ConditionKind
from conveyor.domain.plan import Plan, StagePlan
from conveyor.engine import lookup
from conveyor.engine.actiontypes import resolver
from conveyor.engine.plans import Plans
from conveyor.store import (
    ActionRecord,
    ConditionRecord,
    ExecutionRecord,
    PipelineRecord,
    RetryRecord,
    RollbackRecord,
    RuleRecord,
    StageRecord,
    Store,
    TransitionRecord,
    Tx,
)


@dataclass(frozen=True, slots=True)
class ActionView:
    name: str
    latest: ActionRecord | None
    revision: dict[str, Any] | None
    is_approval: bool
    # Why change detection cannot follow this source action, when it cannot.
    detection_problem: str | None = None
    # The action type's entityUrlTemplate with the action's configuration.
    entity_url: str | None = None


@dataclass(frozen=True, slots=True)
class StageView:
    name: str
    index: int
    inbound: list[ExecutionRecord]
    transition: TransitionRecord | None
    latest: StageRecord | None
    actions: list[ActionView]
    # Automatic retries of the latest execution in the stage (stages that retry on failure).
    retry: RetryRecord | None = None
    # The latest execution in the stage is a rollback.
    latest_rollback: bool = False
    # Per kind of condition (BEFORE_ENTRY, ON_SUCCESS, ON_FAILURE) the stage declares: each
    # condition's latest evaluation in the latest execution, with each rule's latest run.
    conditions: dict[str, list[ConditionView]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConditionView:
    latest: ConditionRecord | None
    rules: list[tuple[str, RuleRecord | None]]


@dataclass(frozen=True, slots=True)
class StateView:
    pipeline: PipelineRecord
    stages: list[StageView]


class Views:
    def __init__(self, store: Store, scope: Scope, plans: Plans) -> None:
        self._store = store
        self._scope = scope
        self._plans = plans

    def _pipeline(self, tx: Tx, name: str) -> PipelineRecord:
        return lookup.pipeline(tx, self._scope, name)

    def _execution(self, tx: Tx, pipeline: PipelineRecord, execution_id: str) -> ExecutionRecord:
        return lookup.execution(tx, self._scope, pipeline, execution_id)

    def state(self, name: str) -> StateView:
        """A handful of statements whatever the pipeline's size or history: the latest
        attempt of every action, and the latest execution of every stage, are one each."""
        with self._store.read() as tx:
            pipeline = self._pipeline(tx, name)
            plan: Plan = self._plans.get(tx, pipeline.id, pipeline.version)
            active = tx.executions.active(pipeline.id)
            transitions = (
                tx.transitions.of(pipeline.id) if pipeline.any_disabled is not False else []
            )
            latest = tx.actions.latest_of_each(pipeline.id)
            entered = tx.executions.latest_in_stages(pipeline.id)
            problems = tx.heads.problems(pipeline.id)
            resolve = resolver(tx)
            retrying = [
                (entered[s.name].execution_id, s.name)
                for s in plan.stages
                if s.stage.on_failure_result == "RETRY" and s.name in entered
            ]
            retries = tx.stage_runs.retries(retrying) if retrying else {}
            rolled = {r.execution_id for r in entered.values() if r.execution_type == "ROLLBACK"}
            stages = []
            for stage in plan.stages:
                inbound = sorted(
                    (r for r in active if r.waiting and r.stage_index == stage.index),
                    key=lambda r: (r.arrived, r.seq),
                )
                actions = []
                for action in stage.stage.actions:
                    revision = (
                        tx.actions.latest_revision(pipeline.id, stage.name, action.name)
                        if action.is_source
                        else None
                    )
                    action_type = resolve(action.type_id)
                    entity_url = (
                        render_url(
                            action_type.urls.entity_url_template,
                            action_type.public_configuration(action.config),
                        )
                        if action_type is not None
                        else None
                    )
                    actions.append(
                        ActionView(
                            action.name,
                            latest.get((stage.name, action.name)),
                            revision,
                            action.type_id.category == "Approval",
                            problems.get(action.name) if action.is_source else None,
                            entity_url,
                        )
                    )
                stages.append(
                    StageView(
                        stage.name,
                        stage.index,
                        inbound,
                        _transition(transitions, plan, stage.index),
                        entered.get(stage.name),
                        actions,
                        retries.get((entered[stage.name].execution_id, stage.name))
                        if stage.name in entered
                        else None,
                        stage.name in entered and entered[stage.name].execution_id in rolled,
                        _conditions(tx, stage, entered[stage.name].execution_id)
                        if stage.stage.has_conditions and stage.name in entered
                        else {},
                    )
                )
            return StateView(pipeline, stages)

    def execution(self, name: str, execution_id: str) -> tuple[PipelineRecord, ExecutionRecord]:
        with self._store.read() as tx:
            pipeline = self._pipeline(tx, name)
            return pipeline, self._execution(tx, pipeline, execution_id)

    def rollback(self, execution_id: str) -> RollbackRecord | None:
        """What a rollback execution rolls back, and to which execution."""
        with self._store.read() as tx:
            return tx.stage_runs.rollback(execution_id)

    def executions(
        self, name: str, before_seq: int | None, limit: int, succeeded_in: str | None
    ) -> tuple[list[ExecutionRecord], int | None]:
        with self._store.read() as tx:
            pipeline = self._pipeline(tx, name)
            rows = tx.executions.page(pipeline.id, before_seq, limit + 1, succeeded_in)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].seq if more else None)

    def action_executions(
        self,
        name: str,
        execution_id: str | None,
        latest_only: bool,
        before: tuple[float, str] | None,
        limit: int,
    ) -> tuple[PipelineRecord, list[ActionRecord], tuple[float, str] | None]:
        with self._store.read() as tx:
            pipeline = self._pipeline(tx, name)
            if execution_id is not None:
                self._execution(tx, pipeline, execution_id)
            if latest_only and execution_id is not None:
                every = tx.actions.of_execution(execution_id)
                newest: dict[tuple[str, str], ActionRecord] = {}
                for row in every:
                    newest[(row.stage, row.action)] = row
                rows = sorted(newest.values(), key=lambda r: (r.started, r.id), reverse=True)
                if before is not None:
                    rows = [r for r in rows if (r.started, r.id) < before]
                rows = rows[: limit + 1]
            else:
                rows = tx.actions.page(pipeline.id, execution_id, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return pipeline, rows, ((rows[-1].started, rows[-1].id) if more else None)

    def rule_executions(
        self,
        name: str,
        execution_id: str | None,
        before: tuple[float, str] | None,
        limit: int,
    ) -> tuple[list[RuleRecord], tuple[float, str] | None]:
        """A page of the pipeline's rule executions (of one execution), newest first."""
        with self._store.read() as tx:
            pipeline = self._pipeline(tx, name)
            if execution_id is not None:
                self._execution(tx, pipeline, execution_id)
            rows = tx.rule_runs.page(pipeline.id, execution_id, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, ((rows[-1].started, rows[-1].id) if more else None)


def _conditions(tx: Tx, stage: StagePlan, execution_id: str) -> dict[str, list[ConditionView]]:
    """The stage's conditions as the latest execution in it evaluated them."""
    records = tx.rule_runs.conditions_of([(execution_id, stage.name)]).get(
        (execution_id, stage.name), []
    )
    rules = [r for r in tx.rule_runs.rules_of([execution_id]) if r.stage == stage.name]
    latest_condition = {(c.kind, c.condition_index): c for c in records}  # oldest first
    latest_rule = {(r.kind, r.condition_index, r.rule): r for r in rules}
    found: dict[str, list[ConditionView]] = {}
    for kind in ConditionKind:
        declared = declared_conditions(stage, kind)
        if not declared:
            continue
        found[kind] = [
            ConditionView(
                latest_condition.get((kind, index)),
                [(name, latest_rule.get((kind, index, name))) for name in rule_names(condition)],
            )
            for index, condition in enumerate(declared)
        ]
    return found


def _transition(
    transitions: list[TransitionRecord], plan: Plan, index: int
) -> TransitionRecord | None:
    """The state of the way into a stage: its inbound transition, or the previous stage's
    outbound one, whichever is disabled (the inbound one when both are enabled)."""
    name = plan.stages[index].name
    previous = plan.stages[index - 1].name if index > 0 else None
    inbound = next((t for t in transitions if t.stage == name and t.direction == "Inbound"), None)
    outbound = next(
        (t for t in transitions if t.stage == previous and t.direction == "Outbound"), None
    )
    if outbound is not None and not outbound.enabled:
        return outbound
    return inbound
