"""What each page shows, built from the engine's views (the same `Views.state` that
GetPipelineState answers from) and the pipeline's declaration.

These are plain dataclasses for the templates; nothing here reads the database or the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.console.present import (
    CONDITION_KINDS,
    Bar,
    run_order_groups,
    timeline,
)
from conveyor.domain.status import conditions_status
from conveyor.engine.views import ActionView, ConditionView, StageView, StateView
from conveyor.store import ActionRecord, ExecutionRecord

_ACTIVE = ("InProgress", "Stopping")


@dataclass(frozen=True, slots=True)
class ActionModel:
    name: str
    category: str
    provider: str
    status: str | None
    seconds: float | None
    summary: str | None
    error: str | None
    action_execution_id: str | None
    execution_id: str | None
    external_url: str | None
    revision_id: str | None
    revision_summary: str | None
    token: str | None  # a manual approval waiting for an answer
    custom_data: str | None
    external_link: str | None


@dataclass(frozen=True, slots=True)
class TransitionModel:
    stage: str  # the stage and direction to enable or disable
    direction: str
    enabled: bool
    reason: str | None
    changed_by: str | None


@dataclass(frozen=True, slots=True)
class RuleModel:
    name: str
    status: str | None
    summary: str | None  # what the rule said when it failed


@dataclass(frozen=True, slots=True)
class ConditionModel:
    label: str  # Before entry, On success, On failure
    status: str | None
    rules: list[RuleModel]


@dataclass(frozen=True, slots=True)
class StageModel:
    name: str
    status: str | None
    execution_id: str | None
    retries: int
    transition: TransitionModel | None  # the way into this stage; None for the first
    inbound: list[str]
    groups: list[tuple[int, list[ActionModel]]]
    conditions: list[ConditionModel] = field(default_factory=list)
    # The latest execution in the stage is a rollback: the execution it rolled back to.
    rolled_back_to: str | None = None
    # Executions the stage can be rolled back to (RollbackStage's targets), newest first;
    # None when the stage cannot be rolled back at all (the source stage, V1, PARALLEL).
    rollback_targets: list[ExecutionRecord] | None = None


@dataclass(frozen=True, slots=True)
class PipelineModel:
    name: str
    version: int
    execution_mode: str
    stages: list[StageModel]
    active: list[str] = field(default_factory=list)  # executions that can be stopped
    variables: list[dict[str, Any]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # source action names


def _seconds(record: ActionRecord | None, now: float) -> float | None:
    if record is None:
        return None
    end = now if record.status == "InProgress" else record.updated
    return max(0.0, end - record.started)


def _action(
    view: ActionView, declared: Mapping[str, Any], parallel: bool, now: float
) -> ActionModel:
    latest = view.latest
    type_id = declared.get("actionTypeId", {})
    configuration = declared.get("configuration") or {}
    waiting = (
        view.is_approval and latest is not None and latest.status == "InProgress" and not parallel
    )
    revision = view.revision or {}
    return ActionModel(
        name=view.name,
        category=type_id.get("category", ""),
        provider=type_id.get("provider", ""),
        status=latest.status if latest else None,
        seconds=_seconds(latest, now),
        summary=latest.summary if latest else None,
        error=latest.error_message if latest else None,
        action_execution_id=latest.id if latest else None,
        execution_id=latest.execution_id if latest else None,
        external_url=latest.external_url if latest else None,
        revision_id=revision.get("revisionId"),
        revision_summary=revision.get("revisionSummary"),
        token=latest.token if waiting and latest else None,
        custom_data=configuration.get("CustomData") if view.is_approval else None,
        external_link=configuration.get("ExternalEntityLink") if view.is_approval else None,
    )


def _transition(stage: StageView) -> TransitionModel | None:
    if stage.index == 0:
        return None
    record = stage.transition
    if record is None:
        return TransitionModel(stage.name, "Inbound", True, None, None)
    return TransitionModel(
        record.stage, record.direction, record.enabled, record.reason, record.changed_by
    )


def _conditions(found: Mapping[str, list[ConditionView]]) -> list[ConditionModel]:
    models = []
    for kind, label in CONDITION_KINDS:
        if kind not in found:
            continue
        views = found[kind]
        rules = [
            RuleModel(
                name,
                record.status if record else None,
                (record.summary or record.error_message)
                if record and record.status == "Failed"
                else None,
            )
            for view in views
            for name, record in view.rules
        ]
        status = conditions_status(v.latest.status if v.latest else None for v in views)
        models.append(ConditionModel(label, status, rules))
    return models


def rollback_targets(found: list[ExecutionRecord], version: int) -> list[ExecutionRecord]:
    """Of the executions that succeeded in a stage, those RollbackStage takes as a target:
    of the pipeline's current ``version`` and not themselves rollbacks."""
    return [r for r in found if r.version == version and r.execution_type != "ROLLBACK"]


def can_roll_back(state: StateView, index: int) -> bool:
    """Whether a stage can be rolled back at all: not the source stage, of a V2 pipeline not
    in PARALLEL mode."""
    pipeline = state.pipeline
    return index > 0 and pipeline.pipeline_type == "V2" and pipeline.execution_mode != "PARALLEL"


def pipeline_model(
    state: StateView,
    declaration: Mapping[str, Any],
    now: float,
    rolled_back_to: Mapping[str, str] | None = None,
    targets: Mapping[str, list[ExecutionRecord]] | None = None,
) -> PipelineModel:
    """The pipeline page: ``state`` from `Views.state`, ``declaration`` of its version;
    ``rolled_back_to`` by stage, the target of the rollback that is the stage's latest
    execution; ``targets`` by stage, what it can be rolled back to (stages absent cannot)."""
    parallel = state.pipeline.execution_mode == "PARALLEL"
    declared_stages = {s["name"]: s for s in declaration.get("stages", [])}
    stages = []
    active: list[str] = []
    sources: list[str] = []
    for stage in state.stages:
        declared_actions = {
            a["name"]: a for a in declared_stages.get(stage.name, {}).get("actions", [])
        }
        views = {a.name: a for a in stage.actions}
        groups = [
            (
                order,
                [
                    _action(views[n], declared_actions[n], parallel, now)
                    for n in names
                    if n in views
                ],
            )
            for order, names in run_order_groups(declared_actions.values())
        ]
        for _, actions in groups:
            sources.extend(a.name for a in actions if a.category == "Source")
        latest = stage.latest
        if latest is not None and latest.status in _ACTIVE and latest.execution_id not in active:
            active.append(latest.execution_id)
        active.extend(r.id for r in stage.inbound if r.id not in active)
        stages.append(
            StageModel(
                name=stage.name,
                status=latest.status if latest else None,
                execution_id=latest.execution_id if latest else None,
                retries=latest.manual_retries if latest else 0,
                transition=_transition(stage),
                inbound=[r.id for r in stage.inbound],
                groups=groups,
                conditions=_conditions(stage.conditions),
                rolled_back_to=(rolled_back_to or {}).get(stage.name)
                if stage.latest_rollback
                else None,
                rollback_targets=(targets or {}).get(stage.name),
            )
        )
    return PipelineModel(
        name=state.pipeline.name,
        version=state.pipeline.version,
        execution_mode=state.pipeline.execution_mode,
        stages=stages,
        active=active,
        variables=list(declaration.get("variables") or []),
        sources=sources,
    )


@dataclass(frozen=True, slots=True)
class Revision:
    artifact: str
    revision_id: str
    summary: str | None
    url: str | None


def revisions(record: ExecutionRecord) -> list[Revision]:
    return [
        Revision(
            name, str(entry["revisionId"]), entry.get("revisionSummary"), entry.get("revisionUrl")
        )
        for name, entry in record.artifacts.items()
        if entry.get("revisionId")
    ]


@dataclass(frozen=True, slots=True)
class Waiting:
    """A manual approval of this execution waiting for an answer."""

    stage: str
    action: str
    token: str
    custom_data: str | None
    external_link: str | None


@dataclass(frozen=True, slots=True)
class ExecutionModel:
    record: ExecutionRecord
    revisions: list[Revision]
    stages: list[tuple[str, list[Bar]]]
    attempts: list[ActionRecord]
    start: float
    end: float
    approvals: list[Waiting]
    # A rollback execution: the stage it rolled back and the execution it rolled back to.
    rollback: tuple[str, str] | None = None


def _waiting(attempts: list[ActionRecord], declaration: Mapping[str, Any]) -> list[Waiting]:
    """The approvals waiting in this execution: on its own page they can be answered even in
    PARALLEL mode, where the pipeline's page (like GetPipelineState) cannot tell whose they are."""
    declared = {
        (stage["name"], action["name"]): action
        for stage in declaration.get("stages", [])
        for action in stage.get("actions", [])
    }
    found = []
    for attempt in attempts:
        action = declared.get((attempt.stage, attempt.action), {})
        if (
            action.get("actionTypeId", {}).get("category") == "Approval"
            and attempt.status == "InProgress"
            and attempt.token
        ):
            configuration = action.get("configuration") or {}
            found.append(
                Waiting(
                    attempt.stage,
                    attempt.action,
                    attempt.token,
                    configuration.get("CustomData"),
                    configuration.get("ExternalEntityLink"),
                )
            )
    return found


def execution_model(
    record: ExecutionRecord,
    attempts: list[ActionRecord],
    declaration: Mapping[str, Any],
    now: float,
    claimed: Mapping[str, float] | None = None,
    rollback: tuple[str, str] | None = None,
) -> ExecutionModel:
    """An execution's timeline: every attempt of every action, by stage in declared order,
    each with its time in the queue when ``claimed`` says when its job was claimed."""
    start = record.started
    running = record.status in _ACTIVE
    end = max([now if running else record.updated, *(a.updated for a in attempts), start])
    ordered = sorted(attempts, key=lambda a: (a.started, a.attempt))
    stages = []
    for stage in declaration.get("stages", []):
        mine = [a for a in ordered if a.stage == stage["name"]]
        bars = timeline(
            (
                (
                    a.stage,
                    a.action,
                    a.attempt,
                    a.status,
                    a.started,
                    now if a.status == "InProgress" else a.updated,
                    a.id,
                )
                for a in mine
            ),
            start,
            end,
            claimed,
        )
        stages.append((stage["name"], bars))
    return ExecutionModel(
        record,
        revisions(record),
        stages,
        ordered,
        start,
        end,
        _waiting(ordered, declaration),
        rollback,
    )
