"""The ``connections`` setting read into values: where each connection's repositories are, and
for a git host that sends webhooks, its kind, its secret and the name of its delivery URL.

An entry is a base URL (or folder) as a string, or a mapping with ``url`` and optionally
``host`` (``github``, ``gitlab``, ``gitea`` or ``forgejo``), ``secret`` and ``name`` (default:
the resource id at the end of the ARN). A connection with a host is fed by that host's
deliveries at ``/hooks/<name>`` and is not polled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.config import SettingsError

HOSTS = frozenset({"github", "gitlab", "gitea", "forgejo"})
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}\Z")


@dataclass(frozen=True, slots=True)
class Connection:
    arn: str
    url: str
    name: str
    host: str | None = None
    secret: str | None = None


def _entry(arn: str, value: Any) -> Connection:
    default_name = arn.rsplit("/", 1)[-1]
    if isinstance(value, str):
        return Connection(arn, value, default_name)
    if not isinstance(value, Mapping) or not isinstance(value.get("url"), str):
        raise SettingsError(f"connection {arn!r}: give a URL, or a mapping with a url")
    host = value.get("host")
    if host is not None and host not in HOSTS:
        raise SettingsError(
            f"connection {arn!r}: host {host!r} is not one of {', '.join(sorted(HOSTS))}"
        )
    name = str(value.get("name") or default_name)
    if not _NAME.match(name):
        raise SettingsError(f"connection {arn!r}: name {name!r} may use letters, digits, . _ -")
    secret = value.get("secret")
    if host is not None and not secret:
        raise SettingsError(f"connection {arn!r}: a {host} connection needs a webhook secret")
    return Connection(arn, value["url"], name, host, None if secret is None else str(secret))


def read_connections(setting: Mapping[str, Any]) -> dict[str, Connection]:
    """Connections by ARN; raises `SettingsError` for an entry that cannot be used."""
    return {str(arn): _entry(str(arn), value) for arn, value in setting.items()}


def connection_urls(setting: Mapping[str, Any]) -> dict[str, str]:
    """ARN → base URL or folder, as the connection source takes it."""
    return {arn: c.url for arn, c in read_connections(setting).items()}
