"""Stage conditions as stored: each condition's evaluations and the rule executions they run.

A rule execution's job is an ordinary job whose ``action_execution_id`` holds the rule
execution's id; `RuleRuns.lock_for` is the result path's lookup for such jobs, as
`conveyor.store.results` is for actions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.store.jobs import JobRecord
from conveyor.store.jobs import _record as job_record
from conveyor.store.pipelines import ANY_DISABLED, PipelineRecord, pipeline_record
from conveyor.store.tables import condition_executions, jobs, pipelines, rule_executions


@dataclass(frozen=True, slots=True)
class ConditionRecord:
    execution_id: str
    stage: str
    kind: str
    condition_index: int
    attempt: int
    status: str
    summary: str | None
    started: float
    updated: float


@dataclass(frozen=True, slots=True)
class RuleRecord:
    id: str
    execution_id: str
    pipeline_id: int
    pipeline_version: int
    stage: str
    kind: str
    condition_index: int
    attempt: int
    rule: str
    status: str
    started: float
    updated: float
    deadline: float | None
    summary: str | None
    external_id: str | None
    external_url: str | None
    error_code: str | None
    error_message: str | None
    input: Mapping[str, Any]


def _rule(row: Mapping[str, Any]) -> RuleRecord:
    values = dict(row)
    values["input"] = json.loads(values["input"])
    return RuleRecord(**values)


@dataclass(frozen=True, slots=True)
class RuleJobRows:
    pipeline: PipelineRecord
    job: JobRecord
    rule: RuleRecord


_TABLES = (pipelines, jobs, rule_executions)
_FOR_RESULT = (
    sa.select(
        *(column.label(f"{table.name}.{column.name}") for table in _TABLES for column in table.c),
        ANY_DISABLED.label("pipelines.any_disabled"),
    )
    .select_from(pipelines)
    .join(jobs, jobs.c.pipeline_id == pipelines.c.id)
    .join(rule_executions, rule_executions.c.id == jobs.c.action_execution_id)
    .where(jobs.c.id == sa.bindparam("job_id"))
    .with_for_update(of=pipelines)
)


class RuleRuns:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- conditions -------------------------------------------------------------------------

    def insert_condition(self, record: ConditionRecord) -> None:
        values = {c.name: getattr(record, c.name) for c in condition_executions.c}
        self._conn.execute(condition_executions.insert().values(**values))

    def update_condition(
        self,
        execution_id: str,
        stage: str,
        kind: str,
        index: int,
        attempt: int,
        expected: str,
        **values: Any,
    ) -> bool:
        c = condition_executions.c
        result = self._conn.execute(
            condition_executions.update()
            .where(
                c.execution_id == execution_id,
                c.stage == stage,
                c.kind == kind,
                c.condition_index == index,
                c.attempt == attempt,
                c.status == expected,
            )
            .values(**values)
        )
        return result.rowcount == 1

    def conditions_of(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[ConditionRecord]]:
        """The condition evaluations of these (execution id, stage) pairs, oldest first."""
        if not pairs:
            return {}
        c = condition_executions.c
        query = (
            sa.select(condition_executions)
            .where(sa.tuple_(c.execution_id, c.stage).in_(list(pairs)))
            .order_by(c.started, c.attempt, c.condition_index)
        )
        found: dict[tuple[str, str], list[ConditionRecord]] = {}
        for row in self._conn.execute(query):
            record = ConditionRecord(**row._asdict())
            found.setdefault((record.execution_id, record.stage), []).append(record)
        return found

    # -- rules ------------------------------------------------------------------------------

    def insert_rule(self, record: RuleRecord) -> None:
        values = _values(record)
        values["input"] = json.dumps(record.input)
        self._conn.execute(rule_executions.insert().values(**values))

    def get_rule(self, rule_id: str) -> RuleRecord | None:
        row = self._conn.execute(
            sa.select(rule_executions).where(rule_executions.c.id == rule_id)
        ).first()
        return None if row is None else _rule(row._asdict())

    def update_rule(self, rule_id: str, expected: str, **values: Any) -> bool:
        c = rule_executions.c
        result = self._conn.execute(
            rule_executions.update().where(c.id == rule_id, c.status == expected).values(**values)
        )
        return result.rowcount == 1

    def overdue(self, now: float, limit: int = 100) -> list[RuleRecord]:
        """Rule executions still in progress past their deadline."""
        c = rule_executions.c
        query = (
            sa.select(rule_executions)
            .where(c.status == "InProgress", c.deadline.is_not(None), c.deadline < now)
            .order_by(c.deadline)
            .limit(limit)
        )
        return [_rule(row._asdict()) for row in self._conn.execute(query)]

    def rules_of(self, execution_ids: Sequence[str]) -> list[RuleRecord]:
        """The rule executions of these executions, oldest first."""
        if not execution_ids:
            return []
        c = rule_executions.c
        query = (
            sa.select(rule_executions)
            .where(c.execution_id.in_(list(execution_ids)))
            .order_by(c.started, c.id)
        )
        return [_rule(row._asdict()) for row in self._conn.execute(query)]

    def page(
        self,
        pipeline_id: int,
        execution_id: str | None,
        after: tuple[float, str] | None,
        limit: int,
    ) -> list[RuleRecord]:
        """A page of the pipeline's rule executions, newest first, after ``after`` (the
        start time and id of the last one of the previous page)."""
        c = rule_executions.c
        query = sa.select(rule_executions).where(c.pipeline_id == pipeline_id)
        if execution_id is not None:
            query = query.where(c.execution_id == execution_id)
        if after is not None:
            started, rule_id = after
            query = query.where(
                sa.or_(c.started < started, sa.and_(c.started == started, c.id < rule_id))
            )
        query = query.order_by(c.started.desc(), c.id.desc()).limit(limit)
        return [_rule(row._asdict()) for row in self._conn.execute(query)]

    def lock_for(self, job_id: str) -> RuleJobRows | None:
        """A rule's job, its rule execution and its pipeline, whose row stays locked until
        the transaction ends; None when the job is not a rule's."""
        row = self._conn.execute(_FOR_RESULT, {"job_id": job_id}).first()
        if row is None:
            return None
        parts: dict[str, dict[str, Any]] = {table.name: {} for table in _TABLES}
        for label, value in row._mapping.items():
            table, _, column = str(label).partition(".")
            parts[table][column] = value
        return RuleJobRows(
            pipeline_record(parts["pipelines"]),
            job_record(parts["jobs"]),
            _rule(parts["rule_executions"]),
        )


def _values(record: RuleRecord) -> dict[str, Any]:
    return {c.name: getattr(record, c.name) for c in rule_executions.c}
