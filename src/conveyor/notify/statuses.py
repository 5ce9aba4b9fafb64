"""Commit statuses: an execution's state shown on the commit it runs, through the git host's
statuses API.

A source action whose ``ConnectionArn`` names a connection with a ``host`` and a ``token``
(the ``connections`` setting) has its commit marked ``pending`` once the source action has
found it (and again when a failed execution is retried), then ``success`` or ``failure``
(``error`` for an execution stopped or superseded) when the execution ends, with a link to
the execution's page in the console. The requests are the hosts' documented ones:

- GitHub REST API (version ``2022-11-28``): ``POST /repos/{owner}/{repo}/statuses/{sha}``,
  ``{state, target_url, description, context}``, ``Authorization: Bearer <token>``;
- GitLab REST API v4: ``POST /projects/{url-encoded path}/statuses/{sha}``,
  ``{state, ref, target_url, description, name}``, ``PRIVATE-TOKEN: <token>``;
- Gitea and Forgejo API v1: ``POST /repos/{owner}/{repo}/statuses/{sha}``,
  ``{state, target_url, description, context}``, ``Authorization: token <token>``.

Pure, but for `post`: which statuses an event calls for, and each one's request. The outbox
keeps them as deliveries (the token is not kept with them: it is read from the settings when
the request is sent).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from conveyor.config import Connection
from conveyor.notify.messages import console_link
from conveyor.store.actions import ActionRecord

# The rule ARN the outbox keeps commit statuses under.
COMMIT_STATUS = "commit-status"
GITHUB_API_VERSION = "2022-11-28"
PIPELINE = "CodePipeline Pipeline Execution State Change"
ACTION = "CodePipeline Action Execution State Change"

# An execution's end → the state of its commit, on each host.
_ENDS = {
    "SUCCEEDED": ("success", "success"),
    "FAILED": ("failure", "failed"),
    "STOPPED": ("error", "canceled"),
    "SUPERSEDED": ("error", "canceled"),
    "CANCELED": ("error", "canceled"),
}
_DESCRIPTIONS = {
    "pending": "The execution is running",
    "SUCCEEDED": "The execution succeeded",
    "FAILED": "The execution failed",
    "STOPPED": "The execution was stopped",
    "SUPERSEDED": "A newer execution took the place of this one",
    "CANCELED": "The execution was canceled",
}


@dataclass(frozen=True, slots=True)
class StatusHost:
    """Where and how one connection's commit statuses are posted."""

    arn: str
    kind: str
    api: str
    token: str


def api_base(connection: Connection) -> str:
    """The host's API root: the connection's ``api``, else the usual one for its ``url``."""
    if connection.api:
        return connection.api
    parts = urlsplit(connection.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if connection.host == "github":
        return "https://api.github.com" if parts.hostname == "github.com" else f"{origin}/api/v3"
    if connection.host == "gitlab":
        return f"{origin}/api/v4"
    return f"{origin}/api/v1"


def status_hosts(connections: Mapping[str, Connection]) -> dict[str, StatusHost]:
    """The connections that post commit statuses, by ARN."""
    return {
        arn: StatusHost(arn, c.host, api_base(c), c.token)
        for arn, c in connections.items()
        if c.host and c.token
    }


@dataclass(frozen=True, slots=True)
class CommitStatus:
    """One status to post: the request's URL and body, and the connection that posts it."""

    connection: str
    url: str
    body: dict[str, str]

    def payload(self) -> dict[str, Any]:
        return {"connection": self.connection, "body": self.body}


def request(
    host: StatusHost,
    repository: str,
    sha: str,
    state: str,
    link: str,
    context: str,
    ref: str | None = None,
) -> CommitStatus:
    """The request of a ``state`` (``pending`` or an execution's end state) on a host."""
    if state == "pending":
        value = "pending"
    else:
        github_like, gitlab = _ENDS[state]
        value = gitlab if host.kind == "gitlab" else github_like
    description = _DESCRIPTIONS[state]
    if host.kind == "gitlab":
        body = {"state": value, "target_url": link, "description": description, "name": context}
        if ref:
            body["ref"] = ref
        url = f"{host.api}/projects/{quote(repository, safe='')}/statuses/{sha}"
    else:
        body = {"state": value, "target_url": link, "description": description}
        body["context"] = context
        url = f"{host.api}/repos/{repository}/statuses/{sha}"
    return CommitStatus(host.arn, url, body)


def headers(host: StatusHost) -> dict[str, str]:
    if host.kind == "github":
        return {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {host.token}",
            "X-GitHub-Api-Version": GITHUB_API_VERSION,
        }
    if host.kind == "gitlab":
        return {"PRIVATE-TOKEN": host.token}
    return {"Authorization": f"token {host.token}", "Accept": "application/json"}


def encoded(status_body: Mapping[str, str]) -> bytes:
    return json.dumps(dict(status_body), separators=(",", ":")).encode()


def _source(record: ActionRecord, hosts: Mapping[str, StatusHost]) -> tuple[StatusHost, str] | None:
    """The host and commit of a source action that posts statuses, else None."""
    if (record.input.get("actionTypeId") or {}).get("category") != "Source":
        return None
    configuration = record.input.get("resolvedConfiguration") or {}
    host = hosts.get(str(configuration.get("ConnectionArn", "")).strip())
    sha = (record.revision or {}).get("revisionId")
    if host is None or not sha or not configuration.get("FullRepositoryId"):
        return None
    return host, str(sha)


def wanted(
    event: dict[str, Any],
    actions: Iterable[ActionRecord],
    hosts: Mapping[str, StatusHost],
    console: str,
) -> list[CommitStatus]:
    """The statuses an event calls for, given the execution's action attempts: ``pending``
    when a source action has found its commit or a failed execution is retried
    (``RESUMED``), the end state when the execution ends."""
    detail = event.get("detail") or {}
    kind, state = event.get("detail-type"), detail.get("state")
    if (kind == ACTION and state == "SUCCEEDED") or (kind == PIPELINE and state == "RESUMED"):
        states = "pending"
    elif kind == PIPELINE and state in _ENDS:
        states = str(state)
    else:
        return []
    link = console_link(console, event)
    context = f"conveyor/{detail.get('pipeline', '')}"
    found: dict[str, CommitStatus] = {}
    for record in actions:
        if kind == ACTION and (record.stage, record.action) != (
            detail.get("stage"),
            detail.get("action"),
        ):
            continue
        source = _source(record, hosts)
        if source is None:
            continue
        host, sha = source
        configuration = record.input.get("resolvedConfiguration") or {}
        status = request(
            host,
            str(configuration["FullRepositoryId"]),
            sha,
            states,
            link,
            context,
            configuration.get("BranchName"),
        )
        found[status.url] = status
    return list(found.values())


def is_candidate(event: dict[str, Any]) -> bool:
    """Whether an event may call for a status (read the store only for those)."""
    detail = event.get("detail") or {}
    kind, state = event.get("detail-type"), detail.get("state")
    if kind == ACTION:
        return state == "SUCCEEDED" and (detail.get("type") or {}).get("category") == "Source"
    return kind == PIPELINE and (state in _ENDS or state == "RESUMED")
