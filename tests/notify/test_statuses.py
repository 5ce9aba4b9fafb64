"""Commit statuses: the exact requests each git host's statuses API documents, made by a real
execution of a connection's source and received by a local receiver standing for the host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conveyor.config import Connection, Settings, SettingsError, read_connections
from conveyor.notify.statuses import (
    GITHUB_API_VERSION,
    StatusHost,
    api_base,
    headers,
    request,
    status_hosts,
    wanted,
)
from conveyor.server import running
from conveyor.store.actions import ActionRecord
from tests.conftest import make_client
from tests.notify.receiver import Received, receiving
from tests.support.declarations import CONNECTION_ARN, connection_source
from tests.support.engine import (
    commands,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
    wait_status,
)

SHA = "0123456789abcdef0123456789abcdef01234567"
LINK = "https://ci.example.com/pipelines/app/executions/e-1"


def host(kind: str) -> StatusHost:
    return StatusHost(CONNECTION_ARN, kind, "https://forge.example.com/api", "t0ken")


@pytest.mark.parametrize(
    ("kind", "state", "wire"),
    [
        ("github", "pending", "pending"),
        ("github", "SUCCEEDED", "success"),
        ("github", "FAILED", "failure"),
        ("github", "STOPPED", "error"),
        ("gitea", "SUCCEEDED", "success"),
        ("gitea", "FAILED", "failure"),
        ("forgejo", "SUPERSEDED", "error"),
        ("gitlab", "pending", "pending"),
        ("gitlab", "SUCCEEDED", "success"),
        ("gitlab", "FAILED", "failed"),
        ("gitlab", "STOPPED", "canceled"),
    ],
)
def test_each_host_is_told_its_own_state_names(kind: str, state: str, wire: str) -> None:
    status = request(host(kind), "team/app", SHA, state, LINK, "conveyor/app", "main")
    assert status.body["state"] == wire
    assert status.body["target_url"] == LINK
    if kind == "gitlab":
        assert status.url == f"https://forge.example.com/api/projects/team%2Fapp/statuses/{SHA}"
        assert (status.body["name"], status.body["ref"]) == ("conveyor/app", "main")
    else:
        assert status.url == f"https://forge.example.com/api/repos/team/app/statuses/{SHA}"
        assert status.body["context"] == "conveyor/app" and "ref" not in status.body


def test_headers_carry_each_hosts_token_as_documented() -> None:
    assert headers(host("github")) == {
        "Accept": "application/vnd.github+json",
        "Authorization": "Bearer t0ken",
        "X-GitHub-Api-Version": GITHUB_API_VERSION,
    }
    assert headers(host("gitlab")) == {"PRIVATE-TOKEN": "t0ken"}
    assert headers(host("gitea"))["Authorization"] == "token t0ken"
    assert headers(host("forgejo"))["Authorization"] == "token t0ken"


def test_the_api_root_follows_from_the_connections_url() -> None:
    def root(kind: str, url: str) -> str:
        return api_base(Connection(CONNECTION_ARN, url, "forge", kind, "s", "t"))

    assert root("github", "https://github.com") == "https://api.github.com"
    assert root("github", "https://git.corp") == "https://git.corp/api/v3"
    assert root("gitlab", "https://gitlab.com/") == "https://gitlab.com/api/v4"
    assert root("gitea", "https://codeberg.org") == "https://codeberg.org/api/v1"
    assert root("forgejo", "http://forge:3000") == "http://forge:3000/api/v1"


def test_a_token_needs_a_host_and_an_api_it_can_reach() -> None:
    with pytest.raises(SettingsError, match="a token is for a connection with a host"):
        read_connections({CONNECTION_ARN: {"url": "https://h", "token": "t"}})
    with pytest.raises(SettingsError, match="needs the host's api URL"):
        read_connections(
            {CONNECTION_ARN: {"url": "/srv/git", "host": "gitea", "secret": "s", "token": "t"}}
        )
    with pytest.raises(SettingsError, match="is not an http"):
        read_connections(
            {CONNECTION_ARN: {"url": "/srv", "host": "gitea", "secret": "s", "api": "ftp://x"}}
        )
    untokened = read_connections({CONNECTION_ARN: {"url": "/srv", "host": "gitea", "secret": "s"}})
    assert status_hosts(untokened) == {}


def _posts(got: list[Received]) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    return [(r.path, json.loads(r.body), r.headers) for r in got]


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_an_execution_posts_pending_then_its_end_to_the_commit(kind: str, tmp_path: Path) -> None:
    base = tmp_path / "hosted"
    sha = make_repo(base / "team" / "app", {"README": "x"})
    with receiving() as forge:
        api = forge.url.removesuffix("/hook") + "/api"
        connection = {"url": str(base), "host": kind, "secret": "s", "token": "t0ken", "api": api}
        settings = Settings(
            home=tmp_path / "home",
            database_url=f"sqlite:///{tmp_path / 'conveyor.db'}",
            detect_changes=False,
            public_url="https://ci.example.com",
            connections={CONNECTION_ARN: connection},
        )
        with running(settings) as server:
            client = make_client(server.endpoint)
            client.create_pipeline(
                pipeline={
                    "name": "app",
                    "roleArn": "arn:aws:iam::000000000000:role/conveyor",
                    "artifactStore": {"type": "S3", "location": "artifacts"},
                    "pipelineType": "V2",
                    "stages": [
                        {"name": "Source", "actions": [connection_source("Src")]},
                        stage("Build", commands("Fail", "exit 3")),
                    ],
                }
            )
            execution = wait_for(lambda: latest_execution_id(client, "app"), what="an execution")
            wait_status(client, "app", execution, "Failed", timeout=60)
            posts = wait_for(lambda: len(forge.got) >= 2 and _posts(forge.got), what="2 posts")
    link = f"https://ci.example.com/pipelines/app/executions/{execution}"
    if kind == "gitlab":
        path = f"/api/projects/team%2Fapp/statuses/{sha}"
        label = {"name": "conveyor/app", "ref": "main"}
        token = {"PRIVATE-TOKEN": "t0ken"}
        states = ["pending", "failed"]
    else:
        path = f"/api/repos/team/app/statuses/{sha}"
        label = {"context": "conveyor/app"}
        token = (
            {"Authorization": "Bearer t0ken", "X-GitHub-Api-Version": GITHUB_API_VERSION}
            if kind == "github"
            else {"Authorization": "token t0ken"}
        )
        states = ["pending", "failure"]
    assert [p for p, _, _ in posts] == [path, path]
    assert [b["state"] for _, b, _ in posts] == states
    for _, body, sent in posts:
        assert body == {
            **label,
            "state": body["state"],
            "target_url": link,
            "description": body["description"],
        }
        assert body["description"]
        # Header names are case-insensitive (urllib sends them capitalized).
        named = {k.lower(): v for k, v in sent.items()}
        assert {k: named.get(k.lower()) for k in token} == token
        assert named["content-type"] == "application/json"


def _source(stage: str, action: str, sha: str) -> ActionRecord:
    return ActionRecord(
        id=f"{action}-1",
        execution_id="x-1",
        pipeline_id=1,
        pipeline_version=1,
        stage=stage,
        action=action,
        attempt=1,
        status="Succeeded",
        started=1.0,
        updated=2.0,
        deadline=None,
        summary=None,
        external_id=sha,
        external_url=None,
        error_code=None,
        error_message=None,
        percent_complete=None,
        token=None,
        updated_by=None,
        input={
            "actionTypeId": {"category": "Source", "provider": "CodeStarSourceConnection"},
            "resolvedConfiguration": {
                "ConnectionArn": CONNECTION_ARN,
                "FullRepositoryId": "team/app",
                "BranchName": "main",
            },
        },
        output_artifacts=[],
        output_variables=None,
        revision={"revisionId": sha},
    )


def _event(kind: str, state: str, **detail: str) -> dict[str, Any]:
    return {
        "detail-type": f"CodePipeline {kind} Execution State Change",
        "detail": {"pipeline": "app", "execution-id": "x-1", "state": state, **detail},
    }


def test_which_events_call_for_which_statuses() -> None:
    hosts = {CONNECTION_ARN: host("github")}
    actions = [_source("Source", "Src", SHA), _source("Other", "Src", "f" * 40)]
    found = wanted(_event("Action", "SUCCEEDED", stage="Source", action="Src"), actions, hosts, "")
    # Only the action that succeeded, not its namesake in another stage.
    assert [(s.url.rsplit("/", 1)[1], s.body["state"]) for s in found] == [(SHA, "pending")]
    resumed = wanted(_event("Pipeline", "RESUMED"), actions, hosts, "")
    assert [s.body["state"] for s in resumed] == ["pending", "pending"]
    ended = wanted(_event("Pipeline", "SUCCEEDED"), actions, hosts, "https://ci")
    assert {s.body["state"] for s in ended} == {"success"}
    assert ended[0].body["target_url"] == "https://ci/pipelines/app/executions/x-1"
    assert wanted(_event("Stage", "STARTED", stage="Source"), actions, hosts, "") == []
    assert wanted(_event("Pipeline", "FAILED"), actions, {}, "") == []
