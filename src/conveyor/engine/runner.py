"""Moving executions forward: load a snapshot, ask the decider, write what it decided.

`Runner.advance` runs inside the caller's transaction, with the pipeline row locked. Every
status change is a guarded write that must succeed (the lock rules out a lost race, so a
failed guard is a bug and rolls everything back), and writes its EventBridge event in the
same transaction. Every effect goes through its writer in `conveyor.engine.writers`.
Starting an action resolves its variables and queues its job (or, for a manual approval,
issues its token); an attempt that cannot even start is written in progress, and the next
round tells the decider, which fails it (`CouldNotStart`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.domain.decider import decide
from conveyor.domain.events import envelope
from conveyor.domain.execution import CouldNotStart, Event, Snapshot
from conveyor.engine.clock import Clock
from conveyor.engine.plans import Plans
from conveyor.engine.snapshot import load_snapshot
from conveyor.engine.writers import WRITERS, Outcome, Writing
from conveyor.store import ActionRecord, ExecutionRecord, PipelineRecord, Tx
from conveyor.store.executions import LiveRead

__all__ = ["MAX_ROUNDS", "Outcome", "Runner"]

# An action that fails to start makes the decider look again; this bounds the rounds.
MAX_ROUNDS = 100


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
        event: Event | None = None,
        extra: Iterable[ExecutionRecord] = (),
        latest_in_stage: dict[str, str] | None = None,
        focus: str | None = None,
        attempts: Mapping[str, ActionRecord] | None = None,
        near: tuple[str, str] | None = None,
        ahead: LiveRead | None = None,
    ) -> Outcome:
        """Decide ``event`` (if any) and everything that follows from the current state, and
        write it.

        ``focus``: the execution the change is about, when it is about one, and ``near``
        the (execution id, stage) it most likely is about, and ``ahead`` what the first
        snapshot reads, read already (see `load_snapshot`); ``attempts``: action attempts
        the caller has read already."""
        outcome = Outcome()
        extra = list(extra)
        known = dict(attempts or {})
        for _ in range(MAX_ROUNDS):
            received = self.clock.now()
            snapshot, records = load_snapshot(tx, self.plans, pipeline, extra, focus, near, ahead)
            near = ahead = None  # what follows may have moved the execution on
            if latest_in_stage is not None and event is not None:
                snapshot = Snapshot(
                    snapshot.version,
                    snapshot.mode,
                    snapshot.plans,
                    snapshot.closed,
                    snapshot.runs,
                    latest_in_stage,
                )
            now = self.clock.now()
            effects = decide(snapshot, event, now)
            writing = Writing(self, tx, pipeline, snapshot, records, known, outcome, now, received)
            for effect in effects:
                WRITERS[type(effect)](writing, effect)
            failed = writing.failures or writing.rule_failures
            if not failed and not writing.recorded:
                return outcome
            event = (
                CouldNotStart(tuple(writing.failures), tuple(writing.rule_failures))
                if failed
                else None
            )
            extra = []
            if writing.recorded:
                focus = None
        raise RuntimeError("actions kept failing to start; giving up")  # pragma: no cover

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
