"""``conveyor watch`` and ``conveyor start --wait`` over the server's event stream."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from conveyor.cli.main import cli
from conveyor.server import Running
from tests.support.engine import (
    action_state,
    commands,
    declaration,
    latest_execution_id,
    stage,
    wait_for,
    wait_status,
)


def conveyor(live: Running, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--endpoint", live.endpoint])


def test_start_wait_follows_the_execution_and_exits_0_when_it_succeeds(
    live: Running, api: Any, repo: Path
) -> None:
    api.create_pipeline(pipeline=declaration("app", repo, stage("Build", commands("Make", "true"))))
    wait_status(api, "app", latest_execution_id(api, "app"), "Succeeded")
    result = conveyor(live, "start", "app", "--wait")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    started = latest_execution_id(api, "app")
    assert lines[0] == f"following execution {started} of app"
    assert any("Build/Make" in line and "InProgress" in line for line in lines)
    assert any("Build/Make" in line and "Succeeded" in line for line in lines)
    assert lines[-1] == f"execution {started} Succeeded"


def test_start_wait_exits_1_when_the_execution_fails(live: Running, api: Any, repo: Path) -> None:
    api.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Make", "false")))
    )
    wait_status(api, "app", latest_execution_id(api, "app"), "Failed")
    result = conveyor(live, "start", "app", "--wait")
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-1].endswith("Failed")


def test_watch_follows_the_latest_execution_until_it_ends(
    live: Running, api: Any, repo: Path, tmp_path: Path
) -> None:
    # The action runs until the watch has been following it for a while, however slowly
    # the machine lets the watch start.
    release = tmp_path / "release"
    wait = f"while [ ! -e {release} ]; do sleep 0.05; done"
    api.create_pipeline(pipeline=declaration("app", repo, stage("Build", commands("Slow", wait))))
    execution_id = latest_execution_id(api, "app")
    wait_for(lambda: action_state(api, "app", "Build", "Slow").get("status") == "InProgress")
    outcome: list[Result] = []
    watcher = threading.Thread(target=lambda: outcome.append(conveyor(live, "watch", "app")))
    watcher.start()
    watcher.join(timeout=2)
    release.touch()
    watcher.join(timeout=30)
    assert outcome, "watch did not end"
    assert outcome[0].exit_code == 0, outcome[0].output
    assert "Build/Slow" in outcome[0].output
    assert outcome[0].output.splitlines()[-1] == f"execution {execution_id} Succeeded"
    # An execution that has ended is reported at once, with its status.
    again = conveyor(live, "watch", "app", execution_id, "--json")
    assert again.exit_code == 0
    assert json.loads(again.output) == {"pipelineExecutionId": execution_id, "status": "Succeeded"}


def test_watch_of_an_unknown_pipeline_says_so(live: Running) -> None:
    result = conveyor(live, "watch", "nope")
    assert result.exit_code == 1
    assert "PipelineNotFoundException" in result.output


def test_the_entry_point_finds_watch_on_its_own() -> None:
    """A fresh process loads a command's module by the command's name: watch must be listed."""
    shown = subprocess.run(
        [sys.executable, "-m", "conveyor", "watch", "-h"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    assert "Follow an execution" in shown.stdout
