"""``conveyor notifications failed|retry``: the notifications given up on, and sending one
again.

These work on the store itself (a home's SQLite database, or ``--database``), whether a
server is running on it or not: the server delivering notifications picks a retried one up
within a second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click


@contextmanager
def _store(home: str | None, database: str | None) -> Iterator[Any]:
    from conveyor.config import SettingsError, load_settings
    from conveyor.store import Store, StoreUnavailable

    try:
        settings = load_settings({"home": home, "database_url": database})
        store = Store.open(settings.database)
    except (SettingsError, StoreUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield store
    finally:
        store.close()


def _when(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group()
def notifications() -> None:
    """Notifications that could not be delivered."""


@notifications.command("failed")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of the notifications.")
@click.option("--home", help="Home folder [default: ./.conveyor, or $CONVEYOR_HOME].")
@click.option("--database", help="postgresql://… URL [default: SQLite under the home].")
def failed(as_json: bool, home: str | None, database: str | None) -> None:
    """List the notifications kept as failed: retried for as long as allowed, in vain."""
    with _store(home, database) as store, store.read() as tx:
        records = tx.deliveries.with_status("FAILED")
    rows = [
        {
            "Id": r.id,
            "Pipeline": r.pipeline_name,
            "Event": r.payload.get("detailType"),
            "State": (r.payload.get("detail") or {}).get("state"),
            "Target": r.address,
            "Attempts": r.attempts,
            "Since": _when(r.created),
            "LastError": r.last_error,
        }
        for r in records
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['Id']}\t{row['Pipeline']}\t{row['Event']} {row['State']}\t{row['Target']}"
            f"\t{row['Attempts']} attempts\t{row['LastError']}"
        )


@notifications.command("retry")
@click.argument("delivery_id", metavar="ID", type=int)
@click.option("--home", help="Home folder [default: ./.conveyor, or $CONVEYOR_HOME].")
@click.option("--database", help="postgresql://… URL [default: SQLite under the home].")
def retry(delivery_id: int, home: str | None, database: str | None) -> None:
    """Send the failed notification ID again (retried anew for as long as allowed)."""
    with _store(home, database) as store, store.write() as tx:
        if not tx.deliveries.retry(delivery_id, time.time()):
            found = tx.deliveries.get(delivery_id)
            if found is None:
                raise click.ClickException(f"there is no notification {delivery_id}")
            raise click.ClickException(
                f"notification {delivery_id} is {found.status.lower()}, not failed"
            )
    click.echo(f"notification {delivery_id} will be sent again")


def register(cli: click.Group) -> None:
    cli.add_command(notifications)
