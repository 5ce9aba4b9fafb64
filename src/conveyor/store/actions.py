"""Queries on action executions: one row per attempt of an action.

An attempt's input and output artifacts and its log URL are stored short
(`conveyor.store.actionrows`) and read back as they were given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.store import fast
from conveyor.store.actionrows import (
    read_artifacts,
    read_input,
    read_url,
    stored_json,
    stored_url,
)
from conveyor.store.rows import guarded_update, insert, loads, required_update, upsert
from conveyor.store.tables import action_executions, latest_actions

_BRIEF = sa.select(
    action_executions.c.id,
    action_executions.c.execution_id,
    action_executions.c.stage,
    action_executions.c.action,
    action_executions.c.status,
    action_executions.c.attempt,
    action_executions.c.error_message,
).where(
    sa.tuple_(action_executions.c.execution_id, action_executions.c.stage).in_(
        sa.bindparam("pairs", expanding=True)
    )
)
_BRIEF_AT = sa.select(*_BRIEF.selected_columns).where(
    action_executions.c.execution_id == sa.bindparam("execution_id"),
    action_executions.c.stage == sa.bindparam("stage"),
)
_OF_ACTION = (
    action_executions.c.pipeline_id == sa.bindparam("pipeline_id"),
    action_executions.c.stage == sa.bindparam("stage"),
    action_executions.c.action == sa.bindparam("action"),
)
_LATEST_OF_PIPELINE = (
    sa.select(action_executions)
    .where(*_OF_ACTION)
    .order_by(action_executions.c.started.desc(), action_executions.c.attempt.desc())
    .limit(1)
)
_LATEST_REVISION = (
    sa.select(action_executions.c.revision)
    .where(*_OF_ACTION, action_executions.c.revision.is_not(None))
    .order_by(action_executions.c.started.desc())
    .limit(1)
)
_BY_ID = sa.select(action_executions).where(action_executions.c.id == sa.bindparam("id"))
_LATEST_OF_EACH = (
    sa.select(action_executions)
    .select_from(latest_actions)
    .join(action_executions, action_executions.c.id == latest_actions.c.action_execution_id)
    .where(latest_actions.c.pipeline_id == sa.bindparam("pipeline_id"))
)


@dataclass(frozen=True, slots=True)
class ActionBrief:
    """What the decider needs of an attempt."""

    id: str
    execution_id: str
    stage: str
    action: str
    status: str
    attempt: int
    error_message: str | None


@dataclass(frozen=True, slots=True)
class ActionRecord:
    id: str
    execution_id: str
    pipeline_id: int
    pipeline_version: int
    stage: str
    action: str
    attempt: int
    status: str
    started: float
    updated: float
    deadline: float | None
    summary: str | None
    external_id: str | None
    external_url: str | None
    error_code: str | None
    error_message: str | None
    percent_complete: int | None
    token: str | None
    updated_by: str | None
    input: dict[str, Any]
    output_artifacts: list[dict[str, Any]]
    output_variables: dict[str, str] | None
    revision: dict[str, Any] | None


_JSON = ("input", "output_artifacts", "output_variables", "revision")


def _record(row: Mapping[Any, Any]) -> ActionRecord:
    values = dict(row)
    for name in _JSON:
        values[name] = loads(values[name])
    values["input"] = read_input(values["input"])
    values["output_artifacts"] = read_artifacts(values["output_artifacts"])
    values["external_url"] = read_url(values["external_url"], values["id"])
    return ActionRecord(**values)


def _stored(action_execution_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` of an attempt's columns as they are stored."""
    for name in _JSON:
        if name in values and values[name] is not None:
            values[name] = stored_json(name, values[name])
    if values.get("external_url") is not None:
        values["external_url"] = stored_url(values["external_url"], action_execution_id)
    return values


class Actions:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, record: ActionRecord) -> None:
        values = {name: getattr(record, name) for name in ActionRecord.__dataclass_fields__}
        insert(self._conn, action_executions, _stored(record.id, values))
        # Attempts start in time order, so the one inserted last is the latest.
        key = {"pipeline_id": record.pipeline_id, "stage": record.stage, "action": record.action}
        upsert(self._conn, latest_actions, key, {"action_execution_id": record.id})

    def get(self, action_execution_id: str) -> ActionRecord | None:
        rows = fast.fetch(self._conn, _BY_ID, {"id": action_execution_id})
        return _record(rows[0]) if rows else None

    def briefs(self, stages: Sequence[tuple[str, str]]) -> list[ActionBrief]:
        """Every attempt of every action in these (execution id, stage) pairs, oldest first."""
        if not stages:
            return []
        if len(stages) <= fast.FEW_KEYS:
            briefs = [
                ActionBrief(**row)
                for execution_id, stage in dict.fromkeys(stages)
                for row in fast.fetch(
                    self._conn, _BRIEF_AT, {"execution_id": execution_id, "stage": stage}
                )
            ]
        else:
            rows = self._conn.execute(_BRIEF, {"pairs": list(stages)})
            briefs = [ActionBrief(**row._asdict()) for row in rows]
        briefs.sort(key=lambda b: b.attempt)
        return briefs

    def update(self, action_execution_id: str, expected: str | None, **values: Any) -> bool:
        stored = _stored(action_execution_id, values)
        return guarded_update(
            self._conn, action_executions, {"id": action_execution_id}, expected, stored
        )

    def require_update(self, action_execution_id: str, expected: str | None, **values: Any) -> None:
        """Change the attempt, which must be in status ``expected`` (any, when None); otherwise
        `StoreError`, maybe only at the next statement: on PostgreSQL the update goes with it
        (see `required_update`)."""
        stored = _stored(action_execution_id, values)
        required_update(
            self._conn, action_executions, {"id": action_execution_id}, expected, stored
        )

    def latest(self, execution_id: str, stage: str, action: str) -> ActionRecord | None:
        query = (
            sa.select(action_executions)
            .where(
                action_executions.c.execution_id == execution_id,
                action_executions.c.stage == stage,
                action_executions.c.action == action,
            )
            .order_by(action_executions.c.attempt.desc())
            .limit(1)
        )
        row = self._conn.execute(query).first()
        return None if row is None else _record(row._mapping)

    def latest_of_pipeline(self, pipeline_id: int, stage: str, action: str) -> ActionRecord | None:
        """The most recently started attempt of this action in any execution."""
        keys = {"pipeline_id": pipeline_id, "stage": stage, "action": action}
        rows = fast.fetch(self._conn, _LATEST_OF_PIPELINE, keys)
        return _record(rows[0]) if rows else None

    def latest_of_each(self, pipeline_id: int) -> dict[tuple[str, str], ActionRecord]:
        """`latest_of_pipeline` of every action of the pipeline that has run, by (stage,
        action), in one statement."""
        rows = fast.fetch(self._conn, _LATEST_OF_EACH, {"pipeline_id": pipeline_id})
        return {(row["stage"], row["action"]): _record(row) for row in rows}

    def by_token(
        self, pipeline_id: int, stage: str, action: str, token: str
    ) -> ActionRecord | None:
        query = sa.select(action_executions).where(
            action_executions.c.pipeline_id == pipeline_id,
            action_executions.c.stage == stage,
            action_executions.c.action == action,
            action_executions.c.token == token,
        )
        row = self._conn.execute(query).first()
        return None if row is None else _record(row._mapping)

    def latest_revision(self, pipeline_id: int, stage: str, action: str) -> dict[str, Any] | None:
        """The revision of the last successful attempt of a source action."""
        keys = {"pipeline_id": pipeline_id, "stage": stage, "action": action}
        rows = fast.fetch(self._conn, _LATEST_REVISION, keys)
        value: dict[str, Any] | None = loads(rows[0]["revision"]) if rows else None
        return value

    def of_execution(self, execution_id: str) -> list[ActionRecord]:
        query = (
            sa.select(action_executions)
            .where(action_executions.c.execution_id == execution_id)
            .order_by(action_executions.c.started, action_executions.c.attempt)
        )
        return [_record(row._mapping) for row in self._conn.execute(query)]

    def page(
        self,
        pipeline_id: int,
        execution_id: str | None,
        before: tuple[float, str] | None,
        limit: int,
    ) -> list[ActionRecord]:
        """Newest first; ``before`` is the (started, id) of the last row of the previous page."""
        query = sa.select(action_executions).where(action_executions.c.pipeline_id == pipeline_id)
        if execution_id is not None:
            query = query.where(action_executions.c.execution_id == execution_id)
        if before is not None:
            started, last_id = before
            query = query.where(
                sa.or_(
                    action_executions.c.started < started,
                    sa.and_(
                        action_executions.c.started == started, action_executions.c.id < last_id
                    ),
                )
            )
        query = query.order_by(
            action_executions.c.started.desc(), action_executions.c.id.desc()
        ).limit(limit)
        return [_record(row._mapping) for row in self._conn.execute(query)]

    def overdue(self, now: float, limit: int = 100) -> list[ActionRecord]:
        """Attempts still in progress past their deadline."""
        query = (
            sa.select(action_executions)
            .where(
                action_executions.c.status == "InProgress",
                action_executions.c.deadline.is_not(None),
                action_executions.c.deadline < now,
            )
            .limit(limit)
        )
        return [_record(row._mapping) for row in self._conn.execute(query)]

    def next_deadline(self) -> float | None:
        query = sa.select(sa.func.min(action_executions.c.deadline)).where(
            action_executions.c.status == "InProgress"
        )
        value = self._conn.execute(query).scalar()
        return None if value is None else float(value)
