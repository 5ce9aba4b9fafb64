"""The migrations build exactly the schema that `tables` declares, on both databases; a fresh
database, which gets the declared schema without them, ends up exactly where they lead."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from conveyor.store import Store, tables
from conveyor.store.database import HEAD, MIGRATIONS, create_engine, migrate, upgrade
from conveyor.store.tables import metadata


def test_migrations_build_the_declared_schema(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            upgrade(conn)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_a_fresh_database_is_declared_and_stamped_at_the_latest_migration(store: Store) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert context.get_current_revision() == HEAD
        assert compare_metadata(context, metadata) == []


def test_migrating_twice_changes_nothing(store: Store) -> None:
    migrate(store.engine)
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def _upgraded(conn: sa.Connection, revision: str) -> Config:
    """Migrate the database on ``conn`` to ``revision``; the configuration that did it."""
    from alembic import command

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, revision)
    return config


def test_migration_0008_points_at_the_latest_attempts_and_entries_of_existing_history(
    empty_database_url: str,
) -> None:
    from alembic import command

    from tests.store.records import action, execution

    engine = create_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            config = _upgraded(conn, "0007")
            conn.execute(
                sa.insert(tables.pipelines).values(
                    id=7,
                    name="old",
                    version=1,
                    pipeline_type="V2",
                    execution_mode="SUPERSEDED",
                    created=1.0,
                    updated=1.0,
                )
            )
            runs = [replace(execution(7, seq=n), started=float(n)) for n in (1, 2)]
            for run in runs:
                conn.execute(sa.insert(tables.executions).values(**_row(run)))
            for n, run in enumerate(runs):
                conn.execute(
                    sa.insert(tables.stage_executions).values(
                        execution_id=run.id,
                        stage="Deploy",
                        pipeline_id=7,
                        status="Succeeded",
                        attempt=1,
                        base_attempt=1,
                        manual_retries=0,
                        entered=float(n),
                        updated=1.0,
                    )
                )
            attempts = [
                replace(action(runs[0]), attempt=1, started=1.0),
                replace(action(runs[0]), attempt=2, started=2.0),
                replace(action(runs[1]), action="Check", started=1.5),
            ]
            for attempt in attempts:
                conn.execute(sa.insert(tables.action_executions).values(**_row(attempt)))
            command.upgrade(config, "head")
        store = Store(engine)
        with store.read() as tx:
            assert tx.actions.latest_of_each(7) == {
                ("Deploy", "Rollout"): tx.actions.get(attempts[1].id),
                ("Deploy", "Check"): tx.actions.get(attempts[2].id),
            }
            assert tx.executions.latest_in_stages(7)["Deploy"].execution_id == runs[1].id
    finally:
        engine.dispose()


def _row(record: object) -> dict[str, object]:
    values = {name: getattr(record, name) for name in record.__dataclass_fields__}  # type: ignore[attr-defined]
    return {k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in values.items()}


def test_migration_0014_keeps_the_audit_records_and_events_written_before(
    empty_database_url: str,
) -> None:
    from alembic import command

    record = {"eventVersion": "1.08", "eventName": "GetPipeline", "requestID": "r-1"}
    event = {
        "id": "e-1",
        "account": "000000000000",
        "region": "us-east-1",
        "detail": {"execution-id": "x-1", "state": "STARTED", "version": 1},
    }
    engine = create_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            config = _upgraded(conn, "0010")
            conn.execute(
                sa.text(
                    "INSERT INTO audit_events (event_id, event_time, event_name, event_source,"
                    " read_only, record) VALUES ('a-1', 5.0, 'GetPipeline', 'codepipeline', "
                    ":t, :record)"
                ),
                {"t": True, "record": json.dumps(record)},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO events (pipeline_name, time, detail_type, body)"
                    " VALUES ('app', 1700000000.0, :kind, :body)"
                ),
                {"kind": "CodePipeline Pipeline Execution State Change", "body": json.dumps(event)},
            )
            command.upgrade(config, "head")
        store = Store(engine)
        with store.read() as tx:
            [found] = tx.audit.lookup({}, None, None, 10)
            [read] = tx.events.after(0)
        assert (found.event_id, json.loads(found.record)) == ("a-1", record)
        assert read.detail_type == "CodePipeline Pipeline Execution State Change"
        assert read.body["id"] == "e-1" and read.body["source"] == "aws.codepipeline"
        assert read.body["detail"] == {"pipeline": "app", **event["detail"]}
    finally:
        engine.dispose()


def test_migration_0022_removes_the_delivered_notifications_and_keeps_the_rest(
    empty_database_url: str,
) -> None:
    from alembic import command

    engine = create_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            config = _upgraded(conn, "0021")
            for status in ("DELIVERED", "PENDING", "FAILED", "DELIVERED"):
                conn.execute(
                    sa.text(
                        "INSERT INTO notification_deliveries (event_seq, pipeline_name,"
                        " rule_arn, address, payload, status, attempts, created, next_attempt)"
                        " VALUES (1, 'app', 'r', 'http://h/', '{}', :status, 1, 1.0, 1.0)"
                    ),
                    {"status": status},
                )
            command.upgrade(config, "head")
        with Store(engine).read() as tx:
            assert tx.deliveries.counts() == {"PENDING": 1, "FAILED": 1}
    finally:
        engine.dispose()


def _sqlite_schema(engine: sa.Engine) -> dict[str, object]:
    """Every table's columns, indexes and foreign keys as SQLite itself reports them."""
    described: dict[str, object] = {}
    with engine.connect() as conn:
        names = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).scalars()
        for name in sorted(names):
            columns = {
                row[1]: row[2:] for row in conn.exec_driver_sql(f"PRAGMA table_info('{name}')")
            }
            indexes = {
                (
                    tuple(c[2] for c in conn.exec_driver_sql(f"PRAGMA index_info('{row[1]}')")),
                    row[2],
                )
                for row in conn.exec_driver_sql(f"PRAGMA index_list('{name}')")
            }
            keys = {row[2:5] for row in conn.exec_driver_sql(f"PRAGMA foreign_key_list('{name}')")}
            described[name] = (columns, indexes, keys)
    return described


def _sqlite_statements(engine: sa.Engine) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT type, name, sql FROM sqlite_master")
        return {(kind, name, sql) for kind, name, sql in rows}


def test_a_fresh_sqlite_database_is_what_create_all_and_the_migrations_make(tmp_path: Path) -> None:
    fresh, declared, migrated = (
        create_engine(f"sqlite:///{tmp_path / name}.db") for name in ("fresh", "all", "chain")
    )
    try:
        migrate(fresh)
        with declared.begin() as conn:
            metadata.create_all(conn)
        with migrated.begin() as conn:
            upgrade(conn)
        with fresh.connect() as conn:
            stamped = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        assert stamped == [(HEAD,)]
        ours, chain = _sqlite_statements(fresh), _sqlite_statements(migrated)

        def stamp(statements: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
            return {s for s in statements if "alembic_version" in s[1]}

        # The very statements create_all runs, with Alembic's own table as Alembic makes it,
        # and the schema the migrations lead to.
        assert ours - stamp(ours) == _sqlite_statements(declared)
        assert stamp(ours) == stamp(chain) != set()
        assert _sqlite_schema(fresh) == _sqlite_schema(migrated)
    finally:
        for engine in (fresh, declared, migrated):
            engine.dispose()
