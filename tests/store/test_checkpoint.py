"""SQLite's write-ahead log is folded into the database by the sweeper's checkpoint, beside
the writers, not by whichever commit finds the log past SQLite's 1,000 pages (a job
result's, on the hot path, with its fsyncs)."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from conveyor.domain.arn import Scope
from conveyor.engine.services import Limits, Services
from conveyor.store import Store
from conveyor.store.tables import events
from tests.support.engine import wait_for


def _write_pages(store: Store, transactions: int) -> None:
    """About 25 pages of 4 KiB a transaction."""
    body = "x" * 100_000
    for n in range(transactions):
        with store.engine.begin() as conn:
            row = {"pipeline_name": "p", "time": float(n), "detail_type": "x", "body": body}
            conn.execute(sa.insert(events), [row])


def test_commits_leave_the_write_ahead_log_to_the_checkpoint(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    store = Store.open(f"sqlite:///{database}")
    try:
        size = database.stat().st_size
        _write_pages(store, 60)  # some 1,500 pages
        assert database.stat().st_size == size
        store.checkpoint()
        assert database.stat().st_size > size + 5_000_000
    finally:
        store.close()


def test_the_sweeper_checkpoints_every_pass(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    store = Store.open(f"sqlite:///{database}")
    services = Services.build(store, Scope("us-east-1", "000000000000"), Limits())
    stop = threading.Event()
    sweeper = threading.Thread(target=services.sweeper.run, args=(stop, 0.01))
    try:
        size = database.stat().st_size
        _write_pages(store, 4)
        sweeper.start()
        wait_for(lambda: database.stat().st_size > size + 300_000, 10, "a checkpoint")
    finally:
        stop.set()
        if sweeper.is_alive():
            sweeper.join(5)
        store.close()
