"""What one job result costs the database: statements counted as the engine runs them.

The engine runs in this process on the store, without workers: the test claims each job and
reports it succeeded, as a worker would, and counts the statements of each report (the
transaction's BEGIN and COMMIT aside). A result that starts the next action runs eleven: the
job's rows and the pipeline lock in one join with the snapshot's two reads, the job and the
attempt settled, the execution touched, the next attempt, the pointer to it as its action's
latest, its job and the events written, the reporting worker's next job taken. (On
PostgreSQL the writes travel with the statements after them, and the snapshot's two reads
with the lock, and BEGIN with the first of them: three round trips in all; see `fast.later`
and `fast.begin`.) In PARALLEL mode the count does not
depend on how many other executions are running.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.engine.services import Limits, Services
from conveyor.store import Store, fast
from conveyor.store import executions as executions_module
from conveyor.store.tables import jobs
from tests.support.engine import commands, declaration, stage

COMMANDS = ActionTypeId("Compute", "AWS", "Commands", "1")
GIT = ActionTypeId("Source", "AWS", "Git", "1")
TYPES = [COMMANDS, GIT]
# The most statements a result that starts the next action in the same stage may run.
MOST = 11


class Counter:
    def __init__(self) -> None:
        self.count = 0
        self.statements: list[str] = []

    def saw(self, sql: str) -> None:
        self.count += 1
        self.statements.append(sql)


@contextmanager
def counting(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    """Count the statements run through SQLAlchemy and on the fast path's cursors."""
    counter = Counter()
    cursor_of = fast._cursor

    class Cursor:
        def __init__(self, cursor: Any) -> None:
            self._cursor = cursor

        def execute(self, sql: str, *args: Any) -> Any:
            if sql != "BEGIN":  # sent with the first statement on PostgreSQL
                counter.saw(sql)
            return self._cursor.execute(sql, *args)

        def executemany(self, sql: str, *args: Any) -> Any:
            counter.saw(sql)
            return self._cursor.executemany(sql, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._cursor, name)

    def before(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        counter.saw(sql)

    monkeypatch.setattr(fast, "_cursor", lambda conn: Cursor(cursor_of(conn)))
    sa.event.listen(store.engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", before)


def _services(store: Store) -> Services:
    scope = Scope("us-east-1", "000000000000")
    return Services.build(store, scope, Limits(), runnable=frozenset(TYPES))


def _pipeline(name: str, steps: int, **extra: Any) -> dict[str, Any]:
    actions = [commands(f"Step{n:02d}", "true", run_order=n) for n in range(1, steps + 1)]
    return declaration(name, "/nonexistent/repo.git", stage("Steps", *actions), **extra)


def _report_all(services: Services, counter: Counter) -> list[int]:
    """Claim and succeed every job until none is left; the statements of each report."""
    counts = []
    job = services.jobs.claim(TYPES, owner="w")
    while job is not None:
        counter.count = 0
        job = services.jobs.succeed(job.id, next_for=(TYPES, "w"))
        counts.append(counter.count)
        if job is None:
            job = services.jobs.claim(TYPES, owner="w")
    return counts


def test_a_job_result_that_starts_the_next_action_runs_eleven_statements(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = _services(store)
    services.pipelines.create(_pipeline("steps", 6), [])
    with counting(store, monkeypatch) as counter:
        counts = _report_all(services, counter)
    assert len(counts) == 7  # the source, then six steps
    # Each step's result but the last starts the next step.
    assert statistics.median(counts) <= MOST, counter.statements
    assert max(counts[1:-1]) <= MOST


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    """Count PostgreSQL round trips: statements sent outside a pipeline, pipelines, and each
    transaction's BEGIN and COMMIT."""
    import psycopg

    counter = Counter()
    cursor_of, pipeline, commit = (
        fast._cursor,
        psycopg.Connection.pipeline,
        psycopg.Connection.commit,
    )

    class Cursor:
        def __init__(self, cursor: Any) -> None:
            self._cursor = cursor

        def execute(self, sql: str, *args: Any) -> Any:
            connection = self._cursor.connection
            if _begins_alone(connection):
                counter.saw("BEGIN")  # psycopg sends it on its own, even in a pipeline
            if connection._pipeline is None:
                counter.saw(sql)
            return self._cursor.execute(sql, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._cursor, name)

    @contextmanager
    def counted_pipeline(self: Any) -> Iterator[Any]:
        counter.saw("(pipeline)")
        with pipeline(self) as opened:
            yield opened

    def counted_commit(self: Any) -> None:
        if self.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            counter.saw("COMMIT")
        commit(self)

    monkeypatch.setattr(fast, "_cursor", lambda conn: Cursor(cursor_of(conn)))
    monkeypatch.setattr(psycopg.Connection, "pipeline", counted_pipeline)
    monkeypatch.setattr(psycopg.Connection, "commit", counted_commit)
    yield counter


def _begins_alone(connection: Any) -> bool:
    """Whether psycopg opens a transaction itself before the statement this connection runs."""
    import psycopg

    idle = connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    return idle and not connection.autocommit


@pytest.mark.postgres
def test_on_postgresql_a_job_result_that_starts_the_next_action_takes_three_round_trips(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN with the locking join and the snapshot's two reads, then the job's move and
    the writes with the next job's claim, and COMMIT: the snapshot's reads, keyed on the job,
    travel with the lock, and the job's move waits for the writes after it."""
    store = Store.open(postgres_url)
    try:
        services = _services(store)
        services.pipelines.create(_pipeline("steps", 4), [])
        with round_trips(monkeypatch) as counter:
            counts = _report_all(services, counter)
    finally:
        store.close()
    assert len(counts) == 5
    assert max(counts[1:-1]) <= 3, (counts, counter.statements[-12:])


@pytest.mark.postgres
def test_on_postgresql_a_claim_takes_two_round_trips(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN with the claim, then COMMIT: no read looks for a job first, as on SQLite."""
    store = Store.open(postgres_url)
    try:
        services = _services(store)
        services.pipelines.create(_pipeline("claimed", 1), [])
        with round_trips(monkeypatch) as counter:
            job = services.jobs.claim(TYPES, owner="w")
    finally:
        store.close()
    assert job is not None
    assert counter.count == 2, counter.statements


def test_in_parallel_mode_a_result_reads_only_its_own_execution(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten executions run side by side; each result costs what it costs with one."""
    services = _services(store)
    services.pipelines.create(_pipeline("wide", 2, executionMode="PARALLEL"), [])
    with counting(store, monkeypatch) as counter:
        alone = _report_all(services, counter)
        for _ in range(10):
            services.executions.start(
                "wide", trigger_type="StartPipelineExecution", trigger_detail=None
            )
        counter.statements.clear()
        crowded = _report_all(services, counter)
    assert len(alone) == 3 and len(crowded) == 30
    assert max(crowded) <= max(alone), counter.statements
    # The snapshot reads the execution by its id, never all the pipeline's active ones.
    active = fast._compile(executions_module._ACTIVE, store.engine.dialect).sql
    assert active not in counter.statements
    assert any(statement.startswith("SELECT executions.id") for statement in counter.statements)


def test_a_finished_built_in_job_keeps_no_data(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its data served the one run; nothing serves a built-in job once it is done."""
    services = _services(store)
    services.pipelines.create(_pipeline("steps", 2), [])
    with counting(store, monkeypatch) as counter:
        assert len(_report_all(services, counter)) == 3
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(jobs.c.status, jobs.c.data)).all()
    assert [(status, data) for status, data in rows] == [("Succeeded", "{}")] * 3


def test_the_state_of_a_pipeline_takes_the_same_few_statements_whatever_its_size(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The latest attempt of every action is one statement, the latest execution of every
    stage another: 21 actions cost what 3 do."""
    services = _services(store)
    services.pipelines.create(_pipeline("small", 2), [])
    services.pipelines.create(_pipeline("large", 20), [])
    with counting(store, monkeypatch) as counter:
        _report_all(services, counter)
        costs = {}
        for name in ("small", "large"):
            counter.count = 0
            state = services.views.state(name)
            costs[name] = counter.count
            steps = state.stages[1]
            assert all(
                a.latest is not None and a.latest.status == "Succeeded" for a in steps.actions
            )
            assert state.stages[0].actions[0].revision is None
            assert steps.latest is not None and steps.latest.status == "Succeeded"
    assert costs["small"] == costs["large"] <= 6, counter.statements
