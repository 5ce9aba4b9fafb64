"""Action logs: kept per action execution, served by the server, followed while they grow."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conveyor.api.logs import follow
from conveyor.server import Running
from tests.support.engine import (
    action_state,
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
    wait_status,
)


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_an_actions_log_is_served_at_its_external_url(
    client: Any, server: Running, tmp_path: Path
) -> None:
    make_repo(tmp_path / "repo")
    client.create_pipeline(
        pipeline=declaration(
            "app",
            tmp_path / "repo",
            stage("Build", commands("Make", "echo building the app", "ls")),
        )
    )
    wait_status(client, "app", latest_execution_id(client, "app"), "Succeeded")
    state = action_state(client, "app", "Build", "Make")
    url = state["externalExecutionUrl"]
    assert url == f"{server.endpoint}/logs/{state['actionExecutionId']}"
    status, text = fetch(url)
    assert status == 200
    assert "+ echo building the app" in text
    assert "building the app\n" in text
    assert "README.md" in text
    details = client.list_action_executions(pipelineName="app")["actionExecutionDetails"]
    make = next(d for d in details if d["actionName"] == "Make")
    assert make["output"]["executionResult"]["externalExecutionUrl"] == url


def test_following_a_log_streams_until_the_action_ends(
    client: Any, server: Running, tmp_path: Path
) -> None:
    make_repo(tmp_path / "repo")
    client.create_pipeline(
        pipeline=declaration(
            "app",
            tmp_path / "repo",
            stage("Build", commands("Slow", "echo first", "sleep 0.5", "echo second")),
        )
    )
    url = wait_for(lambda: action_state(client, "app", "Build", "Slow").get("externalExecutionUrl"))
    status, text = fetch(f"{url}?follow=1")
    assert status == 200
    assert text.index("first") < text.index("second")
    assert action_state(client, "app", "Build", "Slow")["status"] == "Succeeded"


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/logs/not-an-id", 400), ("/logs/00000000-0000-0000-0000-000000000000", 404)],
)
def test_log_errors(server: Running, path: str, expected: int) -> None:
    assert fetch(f"{server.endpoint}{path}")[0] == expected


def test_a_followed_log_keeps_what_was_written_just_before_the_action_ended(
    tmp_path: Path,
) -> None:
    log = tmp_path / "action.log"
    log.write_bytes(b"first\n")

    async def ends_after_writing() -> bool:
        # The worker writes its last line between the follower's read and its look at the
        # action's status, which then says it has ended.
        with open(log, "ab") as out:
            out.write(b"last\n")
        return False

    async def read_all() -> bytes:
        return b"".join([chunk async for chunk in follow(log, ends_after_writing)])

    assert asyncio.run(read_all()) == b"first\nlast\n"
