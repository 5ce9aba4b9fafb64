"""Queries on pipeline executions and their stage executions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conveyor.store import fast
from conveyor.store.actions import ActionBrief
from conveyor.store.rows import dumps, guarded_update, insert, loads, required_update, upsert
from conveyor.store.tables import (
    action_executions,
    executions,
    jobs,
    latest_stages,
    pipelines,
    stage_executions,
)

_ACTIVE = sa.select(executions).where(
    executions.c.pipeline_id == sa.bindparam("pipeline_id"),
    sa.or_(executions.c.status == "InProgress", executions.c.status == "Stopping"),
)
_BY_ID = sa.select(executions).where(executions.c.id == sa.bindparam("id"))
_STAGES_AT = sa.select(stage_executions).where(
    sa.tuple_(stage_executions.c.execution_id, stage_executions.c.stage).in_(
        sa.bindparam("pairs", expanding=True)
    )
)
_LATEST_IN_STAGE = (
    sa.select(stage_executions)
    .where(
        stage_executions.c.pipeline_id == sa.bindparam("pipeline_id"),
        stage_executions.c.stage == sa.bindparam("stage"),
    )
    .order_by(stage_executions.c.entered.desc())
    .limit(1)
)


# With the kind of execution each is (STANDARD or ROLLBACK), which GetPipelineState shows.
_LATEST_IN_STAGES = (
    sa.select(stage_executions, executions.c.execution_type)
    .select_from(latest_stages)
    .join(
        stage_executions,
        sa.and_(
            stage_executions.c.execution_id == latest_stages.c.execution_id,
            stage_executions.c.stage == latest_stages.c.stage,
        ),
    )
    .join(executions, executions.c.id == latest_stages.c.execution_id)
    .where(latest_stages.c.pipeline_id == sa.bindparam("pipeline_id"))
)
_STAGE_AT = sa.select(stage_executions).where(
    stage_executions.c.execution_id == sa.bindparam("execution_id"),
    stage_executions.c.stage == sa.bindparam("stage"),
)
# A stage execution with every attempt of its actions (none yet: one row of NULLs for them).
_BRIEF_COLUMNS = ("id", "action", "status", "attempt", "error_message")
_WITH_ACTIONS = (
    sa.select(
        stage_executions,
        *(action_executions.c[name].label(f"action_{name}") for name in _BRIEF_COLUMNS),
    )
    .select_from(stage_executions)
    .outerjoin(
        action_executions,
        sa.and_(
            action_executions.c.execution_id == stage_executions.c.execution_id,
            action_executions.c.stage == stage_executions.c.stage,
        ),
    )
)
_WITH_ACTIONS_AT = _WITH_ACTIONS.where(
    stage_executions.c.execution_id == sa.bindparam("execution_id"),
    stage_executions.c.stage == sa.bindparam("stage"),
)
_WITH_ACTIONS_IN = _WITH_ACTIONS.where(
    sa.tuple_(stage_executions.c.execution_id, stage_executions.c.stage).in_(
        sa.bindparam("pairs", expanding=True)
    )
)


# Rows of `stages_with_actions` read ahead, by (execution id, stage).
StageRows = Mapping[tuple[str, str], list[dict[str, Any]]]

# What a job result's snapshot needs, read with the job (`Results.lock_for`), keyed on the
# job's id: the live executions of its pipeline (in PARALLEL mode, its own execution's
# alone), and the stage its attempt is in with every attempt of that stage's actions.
_JOB = jobs.alias("result_job")
_ATTEMPT = action_executions.alias("result_attempt")
_OF_JOB = _JOB.c.id == sa.bindparam("job_id")
_JOB_EXECUTION = (
    sa.select(_ATTEMPT.c.execution_id)
    .join(_JOB, _JOB.c.action_execution_id == _ATTEMPT.c.id)
    .where(_OF_JOB)
    .scalar_subquery()
)
_JOB_STAGE = (
    sa.select(_ATTEMPT.c.stage)
    .join(_JOB, _JOB.c.action_execution_id == _ATTEMPT.c.id)
    .where(_OF_JOB)
    .scalar_subquery()
)
_JOB_PIPELINE = sa.select(_JOB.c.pipeline_id).where(_OF_JOB).scalar_subquery()
_JOB_MODE = (
    sa.select(pipelines.c.execution_mode).where(pipelines.c.id == _JOB_PIPELINE).scalar_subquery()
)
_LIVE = sa.or_(executions.c.status == "InProgress", executions.c.status == "Stopping")
# The job's execution by its key, then (but in PARALLEL mode) the others live beside it.
LIVE_FOR_JOB = sa.union_all(
    sa.select(executions).where(executions.c.id == _JOB_EXECUTION, _LIVE),
    sa.select(executions).where(
        executions.c.pipeline_id == _JOB_PIPELINE,
        _LIVE,
        executions.c.id != _JOB_EXECUTION,
        _JOB_MODE != "PARALLEL",
    ),
)
STAGE_FOR_JOB = _WITH_ACTIONS.where(
    stage_executions.c.execution_id == _JOB_EXECUTION,
    stage_executions.c.stage == _JOB_STAGE,
)


@dataclass(frozen=True, slots=True)
class LiveRead:
    """A pipeline's live executions (in PARALLEL mode, one's alone) and the rows of one of
    their stages for `Executions.stages_with_actions`, read already."""

    executions: list[ExecutionRecord]
    stages: StageRows


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    id: str
    pipeline_id: int
    seq: int
    version: int
    status: str
    summary: str | None
    stage_index: int
    waiting: bool
    arrived: float
    stop_abandon: bool | None
    stop_reason: str | None
    trigger_type: str
    trigger_detail: str | None
    execution_mode: str
    execution_type: str
    client_token: str | None
    variables: list[dict[str, str]]
    source_revisions: list[dict[str, str]]
    outputs: dict[str, dict[str, str]]
    artifacts: dict[str, dict[str, Any]]
    started: float
    updated: float


_JSON = ("variables", "source_revisions", "outputs", "artifacts")


def live_read(
    execution_rows: list[dict[str, Any]], at: tuple[str, str], stage_rows: list[dict[str, Any]]
) -> LiveRead:
    """`LiveRead` of the rows of `LIVE_FOR_JOB`, and those of `STAGE_FOR_JOB` for the stage
    ``at`` (execution id, stage)."""
    return LiveRead([_execution(row) for row in execution_rows], {at: stage_rows})


def _execution(row: Mapping[Any, Any]) -> ExecutionRecord:
    values = dict(row)
    for name in _JSON:
        values[name] = loads(values[name])
    values["waiting"] = bool(values["waiting"])
    if values["stop_abandon"] is not None:
        values["stop_abandon"] = bool(values["stop_abandon"])
    return ExecutionRecord(**values)


@dataclass(frozen=True, slots=True)
class StageRecord:
    execution_id: str
    stage: str
    pipeline_id: int
    status: str
    attempt: int
    base_attempt: int
    manual_retries: int
    entered: float
    updated: float
    # The kind of the execution (STANDARD, ROLLBACK), where the query read it.
    execution_type: str = "STANDARD"


def _stage(row: Mapping[Any, Any]) -> StageRecord:
    return StageRecord(**row)


class Executions:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    @property
    def dialect_locks_rows(self) -> bool:
        """Whether writers can run side by side (PostgreSQL), so a row read before taking a
        lock may have changed since; SQLite has one writer at a time."""
        return self._conn.dialect.name != "sqlite"

    def insert(self, record: ExecutionRecord) -> None:
        values = {
            name: (dumps(getattr(record, name)) if name in _JSON else getattr(record, name))
            for name in ExecutionRecord.__dataclass_fields__
        }
        insert(self._conn, executions, values)

    def get(self, execution_id: str) -> ExecutionRecord | None:
        rows = fast.fetch(self._conn, _BY_ID, {"id": execution_id})
        return _execution(rows[0]) if rows else None

    def active(self, pipeline_id: int) -> list[ExecutionRecord]:
        rows = fast.fetch(self._conn, _ACTIVE, {"pipeline_id": pipeline_id})
        return [_execution(row) for row in rows]

    def live_with_stage(
        self, pipeline_id: int, execution_id: str, stage: str, *, only: bool = False
    ) -> tuple[list[ExecutionRecord], StageRows]:
        """`active` (with ``only``, the execution ``execution_id`` alone, whatever its status),
        and the rows `stages_with_actions` reads for (``execution_id``, ``stage``), read at
        the same point of the transaction: on PostgreSQL, in one round trip."""
        first = (_BY_ID, {"id": execution_id}) if only else (_ACTIVE, {"pipeline_id": pipeline_id})
        at = {"execution_id": execution_id, "stage": stage}
        found, rows = fast.fetch_together(self._conn, [first, (_WITH_ACTIONS_AT, at)])
        return [_execution(row) for row in found], {(execution_id, stage): rows}

    def by_token(self, pipeline_id: int, token: str) -> ExecutionRecord | None:
        query = sa.select(executions).where(
            executions.c.pipeline_id == pipeline_id, executions.c.client_token == token
        )
        row = self._conn.execute(query).first()
        return None if row is None else _execution(row._mapping)

    def next_seq(self, pipeline_id: int) -> int:
        query = sa.select(sa.func.max(executions.c.seq)).where(
            executions.c.pipeline_id == pipeline_id
        )
        return int(self._conn.execute(query).scalar() or 0) + 1

    def counts(self) -> list[tuple[str, str, int]]:
        """How many executions each pipeline has in each status (for ``/metrics``)."""
        query = (
            sa.select(pipelines.c.name, executions.c.status, sa.func.count())
            .select_from(executions.join(pipelines, pipelines.c.id == executions.c.pipeline_id))
            .group_by(pipelines.c.name, executions.c.status)
        )
        return [(row[0], row[1], int(row[2])) for row in self._conn.execute(query)]

    def count_active(self, pipeline_id: int) -> int:
        query = sa.select(sa.func.count()).where(
            executions.c.pipeline_id == pipeline_id,
            executions.c.status.in_(["InProgress", "Stopping"]),
        )
        return int(self._conn.execute(query).scalar_one())

    def update(self, execution_id: str, expected: str | None, **values: Any) -> bool:
        """Change the execution if its status is ``expected``; JSON columns are encoded."""
        for name in _JSON:
            if name in values:
                values[name] = dumps(values[name])
        return guarded_update(self._conn, executions, {"id": execution_id}, expected, values)

    def require_update(self, execution_id: str, expected: str | None, **values: Any) -> None:
        """Change the execution, which must be in status ``expected`` (any, when None);
        otherwise `StoreError`, maybe only at the next statement (see `required_update`)."""
        for name in _JSON:
            if name in values:
                values[name] = dumps(values[name])
        required_update(self._conn, executions, {"id": execution_id}, expected, values)

    def page(
        self, pipeline_id: int, before_seq: int | None, limit: int, succeeded_in: str | None
    ) -> list[ExecutionRecord]:
        """Newest first, starting below ``before_seq``; optionally only those that succeeded
        in the stage ``succeeded_in``."""
        query = sa.select(executions).where(executions.c.pipeline_id == pipeline_id)
        if before_seq is not None:
            query = query.where(executions.c.seq < before_seq)
        if succeeded_in is not None:
            query = query.where(
                executions.c.id.in_(
                    sa.select(stage_executions.c.execution_id).where(
                        stage_executions.c.pipeline_id == pipeline_id,
                        stage_executions.c.stage == succeeded_in,
                        stage_executions.c.status == "Succeeded",
                    )
                )
            )
        query = query.order_by(executions.c.seq.desc()).limit(limit)
        return [_execution(row._mapping) for row in self._conn.execute(query)]

    # -- stage executions -------------------------------------------------------------------

    def stages_at(self, stages: Sequence[tuple[str, str]]) -> list[StageRecord]:
        """The stage executions of these (execution id, stage) pairs."""
        if not stages:
            return []
        if len(stages) <= fast.FEW_KEYS:
            return [
                _stage(row)
                for execution_id, stage in dict.fromkeys(stages)
                for row in fast.fetch(
                    self._conn, _STAGE_AT, {"execution_id": execution_id, "stage": stage}
                )
            ]
        rows = self._conn.execute(_STAGES_AT, {"pairs": list(stages)})
        return [_stage(r._mapping) for r in rows]

    def stages_with_actions(
        self, stages: Sequence[tuple[str, str]], read: StageRows | None = None
    ) -> list[tuple[StageRecord, list[ActionBrief]]]:
        """The stage executions of these (execution id, stage) pairs, each with every attempt
        of its actions, oldest first: what `stages_at` and `Actions.briefs` give, in one
        statement. ``read``: the rows of some pairs, read already (`live_with_stage`)."""
        pairs = list(dict.fromkeys(stages))
        known = read or {}
        rows = [row for pair in pairs for row in known.get(pair, ())]
        left = [pair for pair in pairs if pair not in known]
        if len(left) > fast.FEW_KEYS:
            rows += [
                dict(r._mapping) for r in self._conn.execute(_WITH_ACTIONS_IN, {"pairs": left})
            ]
        else:
            rows += [
                row
                for execution_id, stage in left
                for row in fast.fetch(
                    self._conn, _WITH_ACTIONS_AT, {"execution_id": execution_id, "stage": stage}
                )
            ]
        found: dict[tuple[str, str], tuple[StageRecord, list[ActionBrief]]] = {}
        for row in rows:
            brief = {name: row.pop(f"action_{name}") for name in _BRIEF_COLUMNS}
            key = (row["execution_id"], row["stage"])
            if key not in found:
                found[key] = (_stage(row), [])
            if brief["id"] is not None:
                found[key][1].append(ActionBrief(execution_id=key[0], stage=key[1], **brief))
        for _, briefs in found.values():
            briefs.sort(key=lambda b: b.attempt)
        return list(found.values())

    def stage(self, execution_id: str, stage: str) -> StageRecord | None:
        query = sa.select(stage_executions).where(
            stage_executions.c.execution_id == execution_id, stage_executions.c.stage == stage
        )
        row = self._conn.execute(query).first()
        return None if row is None else _stage(row._mapping)

    def enter_stage(self, execution_id: str, pipeline_id: int, stage: str, now: float) -> None:
        insert(
            self._conn,
            stage_executions,
            {
                "execution_id": execution_id,
                "stage": stage,
                "pipeline_id": pipeline_id,
                "status": "InProgress",
                "attempt": 1,
                "base_attempt": 1,
                "manual_retries": 0,
                "entered": now,
                "updated": now,
            },
        )
        self._entered(pipeline_id, stage, execution_id)

    def _entered(self, pipeline_id: int, stage: str, execution_id: str) -> None:
        """Point at the execution that entered ``stage`` last: this one, now."""
        key = {"pipeline_id": pipeline_id, "stage": stage}
        upsert(self._conn, latest_stages, key, {"execution_id": execution_id})

    def retry_stage(
        self,
        execution_id: str,
        stage: str,
        expected: str,
        attempt: int,
        base: int,
        now: float,
        *,
        manual: bool = True,
    ) -> bool:
        key = {"execution_id": execution_id, "stage": stage}
        values = {
            "status": "InProgress",
            "attempt": attempt,
            "base_attempt": base,
            "manual_retries": stage_executions.c.manual_retries + (1 if manual else 0),
            "entered": now,
            "updated": now,
        }
        if not guarded_update(self._conn, stage_executions, key, expected, values):
            return False
        retried = self.stage(execution_id, stage)
        assert retried is not None
        self._entered(retried.pipeline_id, stage, execution_id)
        return True

    def set_stage_status(
        self, execution_id: str, stage: str, expected: str, new: str, now: float
    ) -> bool:
        key = {"execution_id": execution_id, "stage": stage}
        return guarded_update(
            self._conn, stage_executions, key, expected, {"status": new, "updated": now}
        )

    def require_stage_status(
        self, execution_id: str, stage: str, expected: str, new: str, now: float
    ) -> None:
        """`set_stage_status` for a move that must succeed, as `require_update`."""
        key = {"execution_id": execution_id, "stage": stage}
        values = {"status": new, "updated": now}
        required_update(self._conn, stage_executions, key, expected, values)

    def latest_in_stages(self, pipeline_id: int) -> dict[str, StageRecord]:
        """`latest_in_stage` of every stage of the pipeline that was entered, by stage
        name, in one statement."""
        rows = fast.fetch(self._conn, _LATEST_IN_STAGES, {"pipeline_id": pipeline_id})
        return {row["stage"]: _stage(row) for row in rows}

    def latest_in_stage(self, pipeline_id: int, stage: str) -> StageRecord | None:
        """The stage execution of the execution that entered ``stage`` last."""
        rows = fast.fetch(
            self._conn, _LATEST_IN_STAGE, {"pipeline_id": pipeline_id, "stage": stage}
        )
        return _stage(rows[0]) if rows else None
