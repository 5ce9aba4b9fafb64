"""Queries on stage transitions (enabled unless a row says otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.store.tables import transitions

_OF = sa.select(transitions).where(transitions.c.pipeline_id == sa.bindparam("pipeline_id"))


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    pipeline_id: int
    stage: str
    direction: str
    enabled: bool
    reason: str | None
    changed_by: str | None
    changed_at: float


def _record(row: sa.Row[Any]) -> TransitionRecord:
    values = row._asdict()
    values["enabled"] = bool(values["enabled"])
    return TransitionRecord(**values)


class Transitions:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def of(self, pipeline_id: int) -> list[TransitionRecord]:
        return [_record(r) for r in self._conn.execute(_OF, {"pipeline_id": pipeline_id})]

    def put(self, record: TransitionRecord) -> None:
        self._conn.execute(
            sa.delete(transitions).where(
                transitions.c.pipeline_id == record.pipeline_id,
                transitions.c.stage == record.stage,
                transitions.c.direction == record.direction,
            )
        )
        self._conn.execute(
            sa.insert(transitions).values(**{n: getattr(record, n) for n in record.__slots__})
        )
