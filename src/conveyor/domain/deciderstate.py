"""What the decider works on while it decides: private mutable copies of a snapshot's runs,
the effects recorded so far, and the check that every status move is one of the tables'.

Both halves of the decider share one `Work`: the stage-and-run half (`conveyor.domain.decider`)
and the condition-and-rule half (`conveyor.domain.conditiondecider`). Nothing here is written
anywhere but in the effects: the snapshot the engine loaded stays as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from conveyor.domain.execution import (
    ActionRun,
    ConditionRun,
    Effect,
    Run,
    Snapshot,
    StopRequest,
)
from conveyor.domain.plan import StagePlan
from conveyor.domain.status import (
    ACTIVE_EXECUTION,
    ExecutionStatus,
    StageStatus,
    Status,
    can_move,
)

__all__ = ["LiveRun", "LiveStage", "Work", "legal"]


@dataclass(slots=True)
class LiveStage:
    name: str
    status: StageStatus
    attempt: int
    base_attempt: int
    actions: dict[str, ActionRun] = field(default_factory=dict)
    auto_retried: bool = False
    conditions: list[ConditionRun] = field(default_factory=list)


@dataclass(slots=True)
class LiveRun:
    id: str
    seq: int
    version: int
    status: ExecutionStatus
    stage_index: int
    waiting: bool
    arrived: float
    stop: StopRequest | None
    stage: LiveStage | None
    rollback: bool = False

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_EXECUTION


def legal(table: Mapping[Status, frozenset[Status]], old: Status, new: Status) -> None:
    """A move outside the status tables is a bug in the decider, never a user error."""
    if not can_move(table, old, new):
        raise AssertionError(f"illegal status move {old} -> {new}")


def _live(run: Run) -> LiveRun:
    stage = None
    if run.stage is not None:
        s = run.stage
        stage = LiveStage(
            s.stage,
            s.status,
            s.attempt,
            s.base_attempt,
            dict(s.actions),
            s.auto_retried,
            list(s.conditions),
        )
    return LiveRun(
        run.id,
        run.seq,
        run.version,
        run.status,
        run.stage_index,
        run.waiting,
        run.arrived,
        run.stop,
        stage,
        run.rollback,
    )


class Work:
    """The runs of ``snapshot`` as they stand after the effects recorded so far."""

    def __init__(self, snapshot: Snapshot, now: float) -> None:
        self.snapshot = snapshot
        self.now = now
        self.runs = sorted((_live(r) for r in snapshot.runs), key=lambda r: r.seq)
        self.effects: list[Effect] = []

    def plan(self, run: LiveRun) -> StagePlan:
        """The plan of the stage ``run`` is at, in the pipeline version it runs."""
        return self.snapshot.plans[run.version].stages[run.stage_index]

    def get(self, run_id: str) -> LiveRun | None:
        return next((r for r in self.runs if r.id == run_id), None)

    def find(self, run_id: str) -> LiveRun:
        run = self.get(run_id)
        if run is None:  # pragma: no cover - the engine always loads the target
            raise KeyError(run_id)
        return run

    def outdated(self, run: LiveRun) -> bool:
        """The run started on an older version of the pipeline: it starts nothing new."""
        return run.version != self.snapshot.version
