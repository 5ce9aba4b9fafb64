"""The engine's hot path alone: what one job result costs, with no process and no HTTP.

The engine runs in this process on a store (SQLite in a temporary folder, then PostgreSQL in a
fresh schema when ``CONVEYOR_TEST_DATABASE_URL`` answers) with the engine benchmark's pipeline
shape: a source, then 20 Commands actions in sequence. This process plays the worker: it claims
each job and reports it succeeded, taking its next job in the same call, as the in-process
workers do. Each report is timed, and its statements and (on PostgreSQL) round trips to the
server are counted. The floor is a bare write transaction on the same database (BEGIN, one
update by primary key on the fast path, COMMIT), timed in the same run: a job result costs
several of those. This is the engine's part of the per-action overhead that `engine` measures
through the server, without the noise of processes starting.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator
from typing import Any

from _shapes import commands, git_source
from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.engine.services import Limits, Services
from conveyor.store import Store, fast
from engine import on_each_database

STEPS = 20
EXECUTIONS = 10
FLOOR_RUNS = 500
TIMES = "\u00d7"
NOBODY = "00000000-0000-0000-0000-000000000000"  # the floor's update finds no row
TYPES = [ActionTypeId("Compute", "AWS", "Commands", "1"), ActionTypeId("Source", "AWS", "Git", "1")]


class Counts:
    statements = 0
    trips = 0


def _declaration() -> dict[str, Any]:
    steps = [commands(f"Step{n:02d}", "true", run_order=n) for n in range(1, STEPS + 1)]
    return {
        "name": "hot",
        "roleArn": "arn:aws:iam::000000000000:role/conveyor-bench",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [git_source("/nonexistent/repo.git")]},
            {"name": "Steps", "actions": steps},
        ],
    }


@contextlib.contextmanager
def counted() -> Iterator[None]:
    """Count statements on the fast path's cursors, and PostgreSQL round trips: statements
    sent outside a pipeline, pipelines, and the BEGIN and COMMIT of each transaction."""
    cursor_of = fast._cursor

    class Cursor:
        def __init__(self, cursor: Any) -> None:
            self._cursor = cursor

        def execute(self, *args: Any) -> Any:
            Counts.statements += 1
            if getattr(getattr(self._cursor, "connection", None), "_pipeline", "") is None:
                Counts.trips += 1
            return self._cursor.execute(*args)

        def executemany(self, *args: Any) -> Any:
            Counts.statements += 1
            return self._cursor.executemany(*args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._cursor, name)

    fast._cursor = lambda conn: Cursor(cursor_of(conn))  # type: ignore[assignment]
    try:
        import psycopg

        pipeline, commit = psycopg.Connection.pipeline, psycopg.Connection.commit

        @contextlib.contextmanager
        def counted_pipeline(self: Any) -> Iterator[Any]:
            Counts.trips += 1
            with pipeline(self) as opened:
                yield opened

        def counted_commit(self: Any) -> None:
            Counts.trips += 2  # the COMMIT, and the BEGIN that psycopg sent on its own
            commit(self)

        psycopg.Connection.pipeline = counted_pipeline  # type: ignore[method-assign]
        psycopg.Connection.commit = counted_commit  # type: ignore[method-assign]
        try:
            yield
        finally:
            psycopg.Connection.pipeline = pipeline  # type: ignore[method-assign]
            psycopg.Connection.commit = commit  # type: ignore[method-assign]
    finally:
        fast._cursor = cursor_of  # type: ignore[assignment]


def measure(url: str) -> dict[str, float]:
    store = Store.open(url)
    try:
        services = Services.build(
            store, Scope("us-east-1", "000000000000"), Limits(), runnable=frozenset(TYPES)
        )
        services.pipelines.create(_declaration(), [])
        times, statements, trips = [], [], []
        with counted():
            for run in range(EXECUTIONS + 1):
                if run:
                    services.executions.start(
                        "hot", trigger_type="StartPipelineExecution", trigger_detail=None
                    )
                job = services.jobs.claim(TYPES, owner="bench")
                while job is not None:
                    Counts.statements = Counts.trips = 0
                    started = time.perf_counter()
                    job = services.jobs.succeed(job.id, next_for=(TYPES, "bench"))
                    if run:  # the first execution warms the caches
                        times.append((time.perf_counter() - started) * 1000)
                        statements.append(Counts.statements)
                        trips.append(Counts.trips)
        floor = _bare_transaction(store)
    finally:
        store.close()
    return {
        "result_ms": statistics.median(times),
        "floor_ms": floor,
        "statements": statistics.median(statements),
        "trips": statistics.median(trips),
    }


def _bare_transaction(store: Store) -> float:
    times = []
    for _ in range(FLOOR_RUNS):
        started = time.perf_counter()
        with store.write() as tx:
            tx.executions.update(NOBODY, None, updated=1.0)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    results = on_each_database(measure, "hot.db")
    print(
        f"job results in this process (a source, then {STEPS} Commands actions; medians over "
        f"{EXECUTIONS} executions after a warm-up)"
    )
    header = f"{'result ms':>10}{'floor ms':>10}{TIMES + ' floor':>9}{'statements':>12}"
    print(f"{'':<12}{header}{'trips':>7}")
    for name, r in results.items():
        trips = f"{r['trips']:>7.0f}" if name == "postgresql" else f"{'-':>7}"
        print(
            f"{name:<12}{r['result_ms']:>10.3f}{r['floor_ms']:>10.3f}"
            f"{r['result_ms'] / r['floor_ms']:>9.1f}{r['statements']:>12.0f}{trips}"
        )
    print("(floor: a bare write transaction on the same database; trips: round trips to it)")


if __name__ == "__main__":
    main()
