"""The migrations build exactly the schema that `tables` declares, on both databases; a fresh
database, which gets the declared schema without them, ends up exactly where they lead."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from conveyor.store import Store
from conveyor.store.database import HEAD, MIGRATIONS, create_engine, migrate, upgrade
from conveyor.store.tables import metadata


def test_migrations_build_the_declared_schema(database_url: str) -> None:
    engine = create_engine(database_url)
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
