"""Moving executions forward: load a snapshot, ask the decider, write what it decided.

`Runner.advance` runs inside the caller's transaction, with the pipeline row locked. Every
status change is a guarded write that must succeed (the lock rules out a lost race, so a
failed guard is a bug and rolls everything back), and writes its EventBridge event in the
same transaction. Starting an action resolves its variables and queues its job (or, for a
manual approval, issues its token); an action that cannot even start fails at once, and the
decider is asked again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.domain.decider import decide
from conveyor.domain.events import (
    ACTION,
    ACTION_STATES,
    PIPELINE,
    PIPELINE_STATES,
    STAGE,
    STAGE_STATES,
    action_detail,
    envelope,
    pipeline_detail,
    stage_detail,
)
from conveyor.domain.execution import (
    ActionAbandoned,
    ActionStarted,
    Command,
    Effect,
    RunMoved,
    RunStatusChanged,
    Snapshot,
    StageEntered,
    StageStatusChanged,
    StopRecorded,
)
from conveyor.domain.plan import Plan
from conveyor.domain.status import ActionStatus, ExecutionStatus
from conveyor.engine.clock import Clock
from conveyor.engine.plans import Plans
from conveyor.engine.snapshot import load_snapshot
from conveyor.engine.starting import ActionStart, prepare_action
from conveyor.store import ExecutionRecord, PipelineRecord, Tx

# An action that fails to start makes the decider look again; this bounds the rounds.
MAX_ROUNDS = 100


@dataclass(slots=True)
class Outcome:
    """What the caller must do after commit: wake workers, cancel jobs."""

    jobs_queued: int = 0
    cancelled_jobs: list[str] = field(default_factory=list)

    def merge(self, other: Outcome) -> None:
        self.jobs_queued += other.jobs_queued
        self.cancelled_jobs += other.cancelled_jobs


class Runner:
    def __init__(
        self,
        scope: Scope,
        clock: Clock,
        plans: Plans,
        runnable: frozenset[ActionTypeId],
        log_base: str | None = None,
    ) -> None:
        self.scope = scope
        self.clock = clock
        self.plans = plans
        # The built-in (AWS-owned) types this installation has providers for.
        self.runnable = runnable
        self.log_base = log_base

    # -- advancing --------------------------------------------------------------------------

    def advance(
        self,
        tx: Tx,
        pipeline: PipelineRecord,
        command: Command | None = None,
        extra: Iterable[ExecutionRecord] = (),
        latest_in_stage: dict[str, str] | None = None,
        focus: str | None = None,
    ) -> Outcome:
        """Apply ``command`` (if any) and everything that follows from the current state.

        ``focus``: the execution the change is about, when it is about one (see
        `load_snapshot`)."""
        outcome = Outcome()
        extra = list(extra)
        for _ in range(MAX_ROUNDS):
            snapshot, records = load_snapshot(tx, self.plans, pipeline, extra, focus)
            if latest_in_stage is not None and command is not None:
                snapshot = Snapshot(
                    snapshot.version,
                    snapshot.mode,
                    snapshot.plans,
                    snapshot.closed,
                    snapshot.runs,
                    latest_in_stage,
                )
            effects = decide(snapshot, command, self.clock.now())
            command, extra = None, []
            failed_to_start = self.apply(tx, pipeline, snapshot, records, effects, outcome)
            if not failed_to_start:
                return outcome
        raise RuntimeError("actions kept failing to start; giving up")  # pragma: no cover

    def apply(
        self,
        tx: Tx,
        pipeline: PipelineRecord,
        snapshot: Snapshot,
        records: dict[str, ExecutionRecord],
        effects: list[Effect],
        outcome: Outcome,
    ) -> bool:
        """Write the effects; True when an action failed as it started."""
        now = self.clock.now()
        failed_to_start = False
        versions = {r.id: r.version for r in snapshot.runs}
        for effect in effects:
            version = versions.get(effect.run_id, pipeline.version)
            if isinstance(effect, RunMoved):
                tx.executions.require_update(
                    effect.run_id,
                    None,
                    stage_index=effect.stage_index,
                    waiting=effect.waiting,
                    arrived=effect.arrived,
                    updated=now,
                )
            elif isinstance(effect, RunStatusChanged):
                tx.executions.require_update(
                    effect.run_id,
                    effect.old,
                    status=effect.new,
                    summary=effect.summary,
                    updated=now,
                )
                record = records.get(effect.run_id)
                extra: dict[str, Any] = {}
                if effect.new == ExecutionStatus.STOPPING and record is not None:
                    extra["stop-execution-comments"] = record.stop_reason
                state = PIPELINE_STATES[effect.new]
                if effect.old in (ExecutionStatus.FAILED, ExecutionStatus.STOPPED):
                    state = "RESUMED"
                self.event(
                    tx,
                    pipeline,
                    PIPELINE,
                    pipeline_detail(pipeline.name, effect.run_id, state, version, **extra),
                )
            elif isinstance(effect, StopRecorded):
                tx.executions.require_update(
                    effect.run_id,
                    None,
                    stop_abandon=effect.abandon,
                    stop_reason=effect.reason,
                    updated=now,
                )
                if effect.run_id in records:
                    records[effect.run_id] = _with_stop(records[effect.run_id], effect)
            elif isinstance(effect, StageEntered):
                if effect.retry_of is None:
                    tx.executions.enter_stage(effect.run_id, pipeline.id, effect.stage, now)
                    state = "STARTED"
                else:
                    _require(
                        tx.executions.retry_stage(
                            effect.run_id,
                            effect.stage,
                            effect.retry_of,
                            effect.attempt,
                            effect.base_attempt,
                            now,
                        )
                    )
                    state = "RESUMED"
                self.event(
                    tx,
                    pipeline,
                    STAGE,
                    stage_detail(pipeline.name, effect.run_id, effect.stage, state, version),
                )
            elif isinstance(effect, StageStatusChanged):
                tx.executions.require_stage_status(
                    effect.run_id, effect.stage, effect.old, effect.new, now
                )
                self.event(
                    tx,
                    pipeline,
                    STAGE,
                    stage_detail(
                        pipeline.name,
                        effect.run_id,
                        effect.stage,
                        STAGE_STATES[effect.new],
                        version,
                    ),
                )
            elif isinstance(effect, ActionStarted):
                # The snapshot's row has all that starting needs (variables, outputs,
                # artifacts); moves and status changes since then do not touch those.
                record = records.get(effect.run_id) or tx.executions.get(effect.run_id)
                assert record is not None
                plan = snapshot.plans[record.version]
                start = prepare_action(
                    tx,
                    self.scope,
                    pipeline,
                    plan,
                    record,
                    effect,
                    now,
                    self.runnable,
                    self.log_base,
                )
                if start.failure is not None:
                    failed_to_start = True
                else:
                    outcome.jobs_queued += start.job is not None
                self.action_event(tx, pipeline, plan, start, ActionStatus.IN_PROGRESS)
                if start.failure is not None:
                    self.action_event(tx, pipeline, plan, start, ActionStatus.FAILED)
            elif isinstance(effect, ActionAbandoned):
                self.abandon(tx, pipeline, snapshot, effect, outcome, now)
        return failed_to_start

    def abandon(
        self,
        tx: Tx,
        pipeline: PipelineRecord,
        snapshot: Snapshot,
        effect: ActionAbandoned,
        outcome: Outcome,
        now: float,
    ) -> None:
        action = tx.actions.latest(effect.run_id, effect.stage, effect.action)
        if action is None or action.status != ActionStatus.IN_PROGRESS:
            return
        _require(
            tx.actions.update(
                action.id,
                ActionStatus.IN_PROGRESS,
                status=ActionStatus.ABANDONED,
                summary="Abandoned when the execution was stopped",
                updated=now,
            )
        )
        for job in tx.jobs.active_for(action.id):
            tx.jobs.update(job.id, job.status, status="Failed", updated=now, lease_until=None)
            outcome.cancelled_jobs.append(job.id)
        plan = snapshot.plans[action.pipeline_version]
        stage = plan.stage(action.stage)
        assert stage is not None
        type_id = stage.actions[action.action].type_id
        self.event(
            tx,
            pipeline,
            ACTION,
            action_detail(
                pipeline.name,
                action.execution_id,
                action.stage,
                action.action,
                ACTION_STATES[ActionStatus.ABANDONED],
                action.pipeline_version,
                self.scope.region,
                type_id,
            ),
        )

    def action_event(
        self, tx: Tx, pipeline: PipelineRecord, plan: Plan, start: ActionStart, status: ActionStatus
    ) -> None:
        stage = plan.stage(start.stage)
        assert stage is not None
        self.event(
            tx,
            pipeline,
            ACTION,
            action_detail(
                pipeline.name,
                start.run_id,
                start.stage,
                start.action,
                ACTION_STATES[status],
                plan.version,
                self.scope.region,
                stage.actions[start.action].type_id,
                **{"input-artifacts": start.input_artifacts or None},
            ),
        )

    def event(self, tx: Tx, pipeline: PipelineRecord, kind: str, detail: dict[str, Any]) -> None:
        now = self.clock.now()
        body = envelope(
            str(uuid.uuid4()),
            kind,
            now,
            self.scope.account,
            self.scope.region,
            [self.scope.pipeline(pipeline.name)],
            detail,
        )
        tx.events.append(pipeline.name, now, kind, body)


def _require(done: bool) -> None:
    if not done:  # pragma: no cover - the pipeline lock makes a lost race impossible
        raise RuntimeError("a guarded write found the row in an unexpected state")


def _with_stop(record: ExecutionRecord, effect: StopRecorded) -> ExecutionRecord:
    from dataclasses import replace

    return replace(record, stop_abandon=effect.abandon, stop_reason=effect.reason)
