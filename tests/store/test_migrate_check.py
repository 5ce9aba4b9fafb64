"""Opening a database already at the latest migration loads no Alembic; one stamped with an
older migration is still brought up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from conveyor.store import Store
from conveyor.store.database import HEAD, MIGRATIONS, create_engine, migrate
from conveyor.store.tables import metadata


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def test_an_up_to_date_database_opens_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    Store.open(url).close()  # declared and stamped at the latest migration
    code = (
        "import sys\n"
        "from conveyor.store import Store\n"
        f"Store.open({url!r}).close()\n"
        "print('alembic' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def test_a_database_stamped_with_an_older_migration_is_upgraded(empty_database_url: str) -> None:
    previous = ScriptDirectory.from_config(_config()).get_revision(HEAD).down_revision
    assert isinstance(previous, str)
    engine = create_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            config = _config()
            config.attributes["connection"] = conn
            command.upgrade(config, previous)
        migrate(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            assert context.get_current_revision() == HEAD
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()
