"""Git-host deliveries for connections: GitHub, GitLab and Gitea push and pull-request events,
signatures checked, hostile bodies refused, executions started once per change."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from conveyor.config import Settings
from conveyor.server import Running, running
from tests.api.test_detection import ARN, connection_action, declaration, executions, wait_count
from tests.conftest import make_client
from tests.support.engine import commit, git, make_repo, wait_for

SECRET = "s3cret"
PR_TRIGGER = {
    "providerType": "CodeStarSourceConnection",
    "gitConfiguration": {
        "sourceActionName": "Source",
        "push": [{"branches": {"includes": ["main"]}}],
        "pullRequest": [
            {"events": ["OPEN", "UPDATED", "CLOSED"], "branches": {"includes": ["main"]}}
        ],
    },
}


@pytest.fixture(params=["github", "gitlab", "gitea"])
def host(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hosted(settings: Settings, tmp_path: Path, host: str) -> Iterator[tuple[Running, Path]]:
    base = tmp_path / "hosted"
    repo = base / "team" / "app"
    make_repo(repo)
    connection = {"url": str(base), "host": host, "secret": SECRET, "name": "forge"}
    chosen = replace(settings, detect_changes=True, connections={ARN: connection})
    with running(chosen) as live:
        yield live, repo


def post(
    live: Running, body: bytes, headers: dict[str, str], path: str = "/hooks/forge"
) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(live.endpoint)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("POST", path, body, {"content-type": "application/json", **headers})
        response = conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else {})
    finally:
        conn.close()


def declared_huge(live: Running) -> int:
    """The status answered to a delivery that says it is 11 MiB long, before it is sent."""
    parts = urlsplit(live.endpoint)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.putrequest("POST", "/hooks/forge")
        conn.putheader("content-type", "application/json")
        conn.putheader("content-length", str(11 * 1024 * 1024))
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def signed(host: str, body: bytes, event: str, secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if host == "github":
        return {"x-github-event": event, "x-hub-signature-256": f"sha256={digest}"}
    if host == "gitlab":
        return {"x-gitlab-event": event, "x-gitlab-token": secret}
    return {"x-gitea-event": event, "x-gitea-signature": digest}


def push_event(host: str) -> str:
    return "Push Hook" if host == "gitlab" else "push"


def pr_event(host: str) -> str:
    return "Merge Request Hook" if host == "gitlab" else "pull_request"


def push_payload(host: str, ref: str, sha: str, files: list[str]) -> dict[str, Any]:
    commits = [{"id": sha, "added": files, "modified": [], "removed": []}]
    if host == "gitlab":
        return {
            "object_kind": "push",
            "ref": ref,
            "after": sha,
            "checkout_sha": sha,
            "project": {"path_with_namespace": "team/app"},
            "commits": commits,
            "total_commits_count": 1,
        }
    return {"ref": ref, "after": sha, "repository": {"full_name": "team/app"}, "commits": commits}


ACTIONS = {
    "github": {"OPEN": "opened", "UPDATED": "synchronize", "CLOSED": "closed"},
    "gitea": {"OPEN": "opened", "UPDATED": "synchronized", "CLOSED": "closed"},
    "gitlab": {"OPEN": "open", "UPDATED": "update", "CLOSED": "merge"},
}


def pr_payload(host: str, event: str, number: int, sha: str) -> dict[str, Any]:
    action = ACTIONS[host][event]
    if host == "gitlab":
        return {
            "object_kind": "merge_request",
            "project": {"path_with_namespace": "team/app"},
            "object_attributes": {
                "iid": number,
                "title": "Add the feature",
                "action": action,
                "source_branch": "feature",
                "target_branch": "main",
                "last_commit": {"id": sha},
                **({"oldrev": "0" * 39 + "1"} if action == "update" else {}),
            },
        }
    return {
        "action": action,
        "number": number,
        "repository": {"full_name": "team/app"},
        "pull_request": {
            "number": number,
            "title": "Add the feature",
            "head": {"ref": "feature", "sha": sha},
            "base": {"ref": "main", "sha": "0" * 40},
        },
    }


def deliver(live: Running, host: str, event: str, payload: dict[str, Any]) -> tuple[int, Any]:
    body = json.dumps(payload).encode()
    return post(live, body, signed(host, body, event))


def test_push_starts_once_per_change(hosted: tuple[Running, Path], host: str) -> None:
    live, repo = hosted
    client = make_client(live.endpoint)
    client.create_pipeline(pipeline=declaration("app", connection_action()))
    wait_count(client, "app", 1)
    sha = commit(repo, {"src/a.py": "1"}, "pushed")
    payload = push_payload(host, "refs/heads/main", sha, ["src/a.py"])
    status, answer = deliver(live, host, push_event(host), payload)
    assert status == 202, answer
    (execution,) = answer["pipelineExecutionIds"]
    again = deliver(live, host, push_event(host), payload)
    assert again == (202, {"pipelineExecutionIds": [execution]})
    found = wait_count(client, "app", 2)
    assert found[0]["pipelineExecutionId"] == execution
    assert found[0]["trigger"]["triggerType"] == "WebhookV2"
    assert sha in found[0]["trigger"]["triggerDetail"]
    other = deliver(live, host, push_event(host), push_payload(host, "refs/heads/x", sha, []))
    assert other[0] == 200
    assert len(executions(client, "app")) == 2


def test_pull_requests_open_update_close(hosted: tuple[Running, Path], host: str) -> None:
    live, repo = hosted
    client = make_client(live.endpoint)
    # QUEUED: each of the three runs its source. Superseding, the later ones would supersede
    # an execution still waiting behind the one before it whenever a source took longer
    # than the deliveries.
    client.create_pipeline(
        pipeline=declaration(
            "app", connection_action(), triggers=[PR_TRIGGER], executionMode="QUEUED"
        )
    )
    wait_count(client, "app", 1)
    git(repo, "checkout", "-q", "-b", "feature")
    first = commit(repo, {"f.txt": "1"}, "feature work")
    started = {}
    for event, given in (("OPEN", first), ("UPDATED", None), ("CLOSED", None)):
        sha = given or commit(repo, {"f.txt": event}, f"feature {event}")
        status, answer = deliver(live, host, pr_event(host), pr_payload(host, event, 7, sha))
        assert status == 202, answer
        started[event] = (answer["pipelineExecutionIds"][0], sha)
    found = wait_count(client, "app", 4)
    by_id = {s["pipelineExecutionId"]: s for s in found}
    for event, (execution, sha) in started.items():
        detail = by_id[execution]["trigger"]["triggerDetail"]
        assert by_id[execution]["trigger"]["triggerType"] == "WebhookV2"
        assert f"pull request 7 {event} (feature -> main) at {sha}: Add the feature" in detail
    execution, sha = started["UPDATED"]
    source = wait_for(
        lambda: [
            d
            for d in client.list_action_executions(
                pipelineName="app", filter={"pipelineExecutionId": execution}
            )["actionExecutionDetails"]
            if d["actionName"] == "Source" and d["status"] == "Succeeded"
        ],
        60,
        "the pull request's source action",
    )[0]
    variables = source["output"]["outputVariables"]
    assert variables["CommitId"] == sha
    assert variables["PullRequestId"] == "7"
    assert variables["PullRequestEvent"] == "UPDATED"
    assert variables["DestinationBranch"] == "main"
    assert variables["BranchName"] == "feature"


@pytest.mark.parametrize("host", ["github"])
def test_refused_deliveries_start_nothing(hosted: tuple[Running, Path], host: str) -> None:
    live, repo = hosted
    client = make_client(live.endpoint)
    client.create_pipeline(pipeline=declaration("app", connection_action()))
    wait_count(client, "app", 1)
    sha = commit(repo, {"a": "1"}, "pushed")
    body = json.dumps(push_payload(host, "refs/heads/main", sha, [])).encode()
    wrong = signed(host, body, "push", secret="guess")
    assert post(live, body, wrong)[0] == 401
    assert post(live, body, {"x-github-event": "push"})[0] == 401
    assert post(live, body, signed(host, body, "push"), path="/hooks/nobody")[0] == 404
    hostile = [
        b"not json at all",
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps({"ref": 5, "after": [], "repository": {"full_name": {}}}).encode(),
        json.dumps(["a", "list"]).encode(),
        b"\xff\xfe",
    ]
    for junk in hostile:
        status, answer = post(live, junk, signed(host, junk, "push"))
        assert status == 400, (junk[:20], status, answer)
    assert declared_huge(live) == 413
    ping = json.dumps({"zen": "hi"}).encode()
    assert post(live, ping, signed(host, ping, "ping")) == (200, {"message": "pong"})
    assert len(executions(client, "app")) == 1
    form = urlencode({"payload": json.dumps(push_payload(host, "refs/heads/main", sha, []))})
    encoded = form.encode()
    headers = {**signed(host, encoded, "push"), "content-type": "application/x-www-form-urlencoded"}
    status, answer = post(live, encoded, headers)
    assert status == 202, answer  # GitHub's form encoding is read as well
    assert len(executions(client, "app")) == 2


@pytest.mark.parametrize("host", ["github"])
def test_pull_request_file_paths_of_a_repository_here(
    hosted: tuple[Running, Path], host: str
) -> None:
    live, repo = hosted
    client = make_client(live.endpoint)
    trigger = {
        "providerType": "CodeStarSourceConnection",
        "gitConfiguration": {
            "sourceActionName": "Source",
            "pullRequest": [
                {"branches": {"includes": ["main"]}, "filePaths": {"includes": ["src/**"]}}
            ],
        },
    }
    client.create_pipeline(pipeline=declaration("app", connection_action(), triggers=[trigger]))
    wait_count(client, "app", 1)
    git(repo, "checkout", "-q", "-b", "feature")
    docs = commit(repo, {"docs/a.md": "1"}, "docs only")
    status, answer = deliver(live, host, "pull_request", pr_payload(host, "OPEN", 3, docs))
    assert (status, answer) == (200, {"message": "no source action takes this change"})
    code = commit(repo, {"src/a.py": "1"}, "code")
    status, answer = deliver(live, host, "pull_request", pr_payload(host, "UPDATED", 3, code))
    assert status == 202, answer
    assert len(executions(client, "app")) == 2
