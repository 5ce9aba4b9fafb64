"""Git-host deliveries read into changes: each host's signature, event names and payloads.

`verify` checks a delivery as its host signs it: GitHub's ``X-Hub-Signature-256`` (an HMAC
SHA-256 of the body with the secret, ``sha256=`` before the hex), GitLab's ``X-Gitlab-Token``
(the secret itself), Gitea's ``X-Gitea-Signature`` and Forgejo's ``X-Forgejo-Signature`` (the
hex HMAC SHA-256 alone). `parse` reads a push or a pull-request (merge-request) event into a
`Delivery`: the repository's full name and a `Push` or `PullRequest`. Pull-request events map
to CodePipeline's three: opened or reopened is OPEN, new commits are UPDATED, closed or merged
is CLOSED; other actions (labels, edits, reviews) are ignored, as are branch deletions.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.domain.gitfilters import PullRequestEvent
from conveyor.domain.triggers import PullRequest, Push

_ZERO = "0" * 40
# The most commits a host lists in a push; past it the changed files are not all known.
_LISTED = {"github": 20, "gitlab": 20, "gitea": 20, "forgejo": 20}


class Refused(Exception):
    """A delivery that is not accepted: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Delivery:
    repository: str
    change: Push | PullRequest | None
    # Why nothing follows from it, for a delivery that is not a change (a ping, a label).
    ignored: str | None = None


def _hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(host: str, secret: str, headers: Mapping[str, str], body: bytes) -> None:
    """Raise `Refused` (401) unless the delivery carries the host's proof of ``secret``."""
    if host == "github":
        given = headers.get("x-hub-signature-256", "")
        expected = "sha256=" + _hmac(secret, body)
        name = "X-Hub-Signature-256"
    elif host == "gitlab":
        given, expected, name = headers.get("x-gitlab-token", ""), secret, "X-Gitlab-Token"
    else:
        given = headers.get("x-gitea-signature") or headers.get("x-forgejo-signature") or ""
        expected, name = _hmac(secret, body), "X-Gitea-Signature"
    if not given:
        raise Refused(401, f"The delivery has no {name} header.")
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise Refused(401, f"The {name} header does not match the connection's secret.")


def event_of(host: str, headers: Mapping[str, str]) -> str:
    if host == "github":
        return headers.get("x-github-event", "")
    if host == "gitlab":
        return headers.get("x-gitlab-event", "")
    return headers.get("x-gitea-event") or headers.get("x-forgejo-event") or ""


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise Refused(400, f"The payload has no {what}.")
    return str(value)


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Refused(400, f"The payload has no {what}.")
    return value


def _files(commits: Any, complete: bool) -> tuple[str, ...] | None:
    if not isinstance(commits, list) or not complete:
        return None
    files: list[str] = []
    for item in commits:
        if not isinstance(item, Mapping):
            return None
        for kind in ("added", "modified", "removed"):
            names = item.get(kind) or []
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                return None
            files += names
    return tuple(dict.fromkeys(files))


def _push(host: str, payload: Mapping[str, Any], repository: str) -> Delivery:
    ref = _text(payload.get("ref"), "ref")
    after = payload.get("after") or payload.get("checkout_sha")
    if payload.get("deleted") is True or after in (None, _ZERO):
        return Delivery(repository, None, "a deleted ref starts nothing")
    commits = payload.get("commits")
    listed = len(commits) if isinstance(commits, list) else 0
    total = payload.get("total_commits_count")
    complete = listed < _LISTED[host] if not isinstance(total, int) else total <= listed
    return Delivery(repository, Push(ref, _text(after, "commit"), _files(commits, complete)))


_PR_EVENTS = {
    "opened": PullRequestEvent.OPEN,
    "reopened": PullRequestEvent.OPEN,
    "open": PullRequestEvent.OPEN,
    "reopen": PullRequestEvent.OPEN,
    "synchronize": PullRequestEvent.UPDATED,
    "synchronized": PullRequestEvent.UPDATED,
    "update": PullRequestEvent.UPDATED,
    "closed": PullRequestEvent.CLOSED,
    "close": PullRequestEvent.CLOSED,
    "merge": PullRequestEvent.CLOSED,
}


def _pull_request(payload: Mapping[str, Any], repository: str) -> Delivery:
    action = str(payload.get("action") or "")
    event = _PR_EVENTS.get(action)
    if event is None:
        return Delivery(repository, None, f"pull request action {action!r} starts nothing")
    pr = _object(payload.get("pull_request"), "pull_request")
    head, base = _object(pr.get("head"), "head"), _object(pr.get("base"), "base")
    change = PullRequest(
        event,
        _text(pr.get("number"), "pull request number"),
        str(pr.get("title") or ""),
        _text(head.get("ref"), "head ref"),
        _text(base.get("ref"), "base ref"),
        _text(head.get("sha"), "head sha"),
    )
    return Delivery(repository, change)


def _merge_request(payload: Mapping[str, Any], repository: str) -> Delivery:
    attributes = _object(payload.get("object_attributes"), "object_attributes")
    action = str(attributes.get("action") or "")
    event = _PR_EVENTS.get(action)
    if action == "update" and not attributes.get("oldrev"):
        event = None  # an update without new commits (a title, a label)
    if event is None:
        return Delivery(repository, None, f"merge request action {action!r} starts nothing")
    last = _object(attributes.get("last_commit"), "last_commit")
    change = PullRequest(
        event,
        _text(attributes.get("iid"), "merge request iid"),
        str(attributes.get("title") or ""),
        _text(attributes.get("source_branch"), "source_branch"),
        _text(attributes.get("target_branch"), "target_branch"),
        _text(last.get("id"), "last commit id"),
    )
    return Delivery(repository, change)


def parse(host: str, event: str, payload: Any) -> Delivery:
    """The change a delivery tells of; raises `Refused` (400) for a payload that is not one."""
    body = _object(payload, "JSON object")
    if host == "gitlab":
        project = _object(body.get("project"), "project")
        repository = _text(project.get("path_with_namespace"), "project path")
        if event in ("Push Hook", "Tag Push Hook"):
            return _push(host, body, repository)
        if event == "Merge Request Hook":
            return _merge_request(body, repository)
        return Delivery(repository, None, f"event {event!r} starts nothing")
    if event == "ping":
        return Delivery("", None, "pong")
    repository = _text(_object(body.get("repository"), "repository").get("full_name"), "repository")
    if event == "push":
        return _push(host, body, repository)
    if event == "pull_request":
        return _pull_request(body, repository)
    return Delivery(repository, None, f"event {event!r} starts nothing")
