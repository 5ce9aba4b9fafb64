"""``conveyor user|group|key|audit|secret``: identities, access keys, the audit trail, and
values sealed with the home's key for the secrets file.

These work on the store itself (a home's SQLite database, or ``--database``), whether a
server is running on it or not: servers see a change within a couple of seconds. A key's
secret is printed once, when it is made; the store keeps it sealed with the home's key
(or the ``secret_key`` setting, which every server and command of one database must share).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any

import click

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _place(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--home`` and ``--database`` options every command here takes."""

    @click.option("--home", help="Home folder [default: ./.conveyor, or $CONVEYOR_HOME].")
    @click.option("--database", help="postgresql://… URL [default: SQLite under the home].")
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(*args, **kwargs)

    return wrapper


@contextmanager
def _identities(home: str | None, database: str | None) -> Iterator[Any]:
    from conveyor.auth.cipher import CipherError, load_cipher
    from conveyor.auth.identities import IdentityError, IdentityService
    from conveyor.config import SettingsError, load_settings
    from conveyor.domain.arn import Scope
    from conveyor.store import Store, StoreUnavailable

    try:
        settings = load_settings({"home": home, "database_url": database})
        store = Store.open(settings.database)
    except (SettingsError, StoreUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        cipher = load_cipher(settings.home, settings.secret_key)
        yield IdentityService(store, cipher, Scope(settings.region, settings.account)), settings
    except (IdentityError, CipherError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()


def _read_policies(files: Sequence[str]) -> list[tuple[str, str]]:
    found = []
    for name in files:
        path = Path(name)
        try:
            found.append((path.stem, path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise click.ClickException(f"cannot read the policy {name}: {exc.strerror}") from exc
    return found


def _when(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _show(records: Sequence[Any], as_json: bool) -> None:
    rows = [
        {
            "Name": r.name,
            "Id": r.id,
            "Created": _when(r.created),
            "Policies": [n if d is not None else f"{n} (managed)" for n, d in r.policies],
            ("Groups" if r.kind == "user" else "Users"): list(r.members),
        }
        for r in records
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        members: list[str] = row.get("Groups", row.get("Users")) or []
        click.echo(
            f"{row['Name']}\t{', '.join(row['Policies']) or '-'}\t{', '.join(members) or '-'}"
        )


def _principal_commands(group: click.Group, kind: str) -> None:
    other = "group" if kind == "user" else "user"

    @group.command("create")
    @click.argument("name")
    @click.option(
        "--policy", "policies", multiple=True, metavar="FILE", help="Inline policy (JSON)."
    )
    @click.option("--managed", multiple=True, metavar="POLICY", help="A managed policy by name.")
    @click.option(f"--{other}", "members", multiple=True, help=f"Add to this {other}.")
    @_place
    def create(
        name: str,
        policies: Sequence[str],
        managed: Sequence[str],
        members: Sequence[str],
        home: str | None,
        database: str | None,
    ) -> None:
        documents = _read_policies(policies)
        with _identities(home, database) as (identities, _):
            identities.create(kind, name, documents, managed, members)
        click.echo(f"created {kind} {name}")

    @group.command("list")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @_place
    def list_(as_json: bool, home: str | None, database: str | None) -> None:
        with _identities(home, database) as (identities, _):
            _show(identities.all(kind), as_json)

    @group.command("delete")
    @click.argument("name")
    @_place
    def delete(name: str, home: str | None, database: str | None) -> None:
        with _identities(home, database) as (identities, _):
            identities.delete(kind, name)
        click.echo(f"deleted {kind} {name}")


@click.group()
def user() -> None:
    """Users: who may call the API, with their policies."""


@click.group()
def group() -> None:
    """Groups: policies shared by their users."""


@group.command("add-user")
@click.argument("group_name")
@click.argument("user_name")
@_place
def add_user(group_name: str, user_name: str, home: str | None, database: str | None) -> None:
    """Put a user in a group."""
    with _identities(home, database) as (identities, _):
        identities.add_member(group_name, user_name)
    click.echo(f"added {user_name} to {group_name}")


@click.group()
def key() -> None:
    """Access keys that sign requests as a user."""


@key.command("create")
@click.argument("user_name")
@click.option("--json", "as_json", is_flag=True, help="Print {AccessKeyId, SecretAccessKey}.")
@_place
def key_create(user_name: str, as_json: bool, home: str | None, database: str | None) -> None:
    """Make a key for USER_NAME; its secret is shown this once."""
    with _identities(home, database) as (identities, _):
        made = identities.create_key(user_name)
    if as_json:
        click.echo(
            json.dumps(
                {"AccessKeyId": made.access_key_id, "SecretAccessKey": made.secret_access_key}
            )
        )
    else:
        click.echo(f"AccessKeyId:     {made.access_key_id}")
        click.echo(f"SecretAccessKey: {made.secret_access_key}")
        click.echo("The secret is shown only now; keep it safe.", err=True)


@key.command("list")
@click.option("--user", "user_name", help="Only this user's keys.")
@_place
def key_list(user_name: str | None, home: str | None, database: str | None) -> None:
    with _identities(home, database) as (identities, _):
        for record in identities.keys(user_name):
            click.echo(f"{record.id}\t{record.user}\t{_when(record.created)}")


@key.command("delete")
@click.argument("key_id")
@_place
def key_delete(key_id: str, home: str | None, database: str | None) -> None:
    with _identities(home, database) as (identities, _):
        identities.delete_key(key_id)
    click.echo(f"deleted access key {key_id}")


def parse_since(text: str, now: float) -> float:
    """``30m``, ``2h``, ``1d`` ago, or an ISO 8601 time (UTC unless it says otherwise)."""
    match = _DURATION.fullmatch(text.strip())
    if match:
        return now - float(match[1]) * _UNITS[match[2]]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration (30m, 2h, 1d) nor an ISO 8601 time"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


@click.command()
@click.option("--user", "user_name", help="Only this user's calls.")
@click.option("--pipeline", help="Only calls on this pipeline.")
@click.option("--since", help="Only calls since: 30m, 2h, 1d or an ISO 8601 time.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One CloudTrail event (JSON) a line.")
@_place
def audit(
    user_name: str | None,
    pipeline: str | None,
    since: str | None,
    limit: int,
    as_json: bool,
    home: str | None,
    database: str | None,
) -> None:
    """The audit trail: API calls, newest first, allowed or refused."""
    from conveyor.auth.audit import AuditTrail

    start = parse_since(since, time.time()) if since else None
    equal: dict[str, Any] = {}
    if user_name:
        equal["Username"] = user_name
    if pipeline:
        equal["ResourceName"] = pipeline
    with _identities(home, database) as (identities, settings):
        trail = AuditTrail(identities.store, settings.region, settings.account, None)
        records = trail.lookup(equal, start, None, limit)
    for record in records:
        if as_json:
            click.echo(record.record)
            continue
        event = json.loads(record.record)
        outcome = event.get("errorCode") or "ok"
        click.echo(
            f"{_when(record.event_time)}  {record.username or '-':<16} {record.event_name:<28}"
            f" {record.resource_name or '-':<24} {event.get('sourceIPAddress', '-'):<15} {outcome}"
        )


@click.group()
def secret() -> None:
    """Secrets at rest, sealed with the home's key."""


@secret.command("seal")
@click.argument("value", required=False)
@click.option("--home", help="Home folder [default: ./.conveyor, or $CONVEYOR_HOME].")
def secret_seal(value: str | None, home: str | None) -> None:
    """Print VALUE (or standard input) sealed, for a value of the secrets file."""
    from conveyor.auth.cipher import CipherError, load_cipher
    from conveyor.config import SettingsError, load_settings
    from conveyor.domain.declaration import SEALED

    text = value if value is not None else sys.stdin.read().rstrip("\n")
    if not text:
        raise click.UsageError("give the value to seal, as an argument or on standard input")
    try:
        settings = load_settings({"home": home})
        click.echo(SEALED + load_cipher(settings.home, settings.secret_key).seal(text))
    except (SettingsError, CipherError) as exc:
        raise click.ClickException(str(exc)) from exc


def register(cli: click.Group) -> None:
    _principal_commands(user, "user")
    _principal_commands(group, "group")
    for command in (user, group, key, audit, secret):
        cli.add_command(command)
