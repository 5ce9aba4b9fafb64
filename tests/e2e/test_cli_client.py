"""The client commands against a live server: pipelines, executions, approvals, logs, errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from conveyor.cli import client as client_commands
from conveyor.cli.main import cli as conveyor_cli
from conveyor.server import Running
from tests.conftest import make_client, sqlite_only
from tests.support.engine import (
    action_state,
    approval,
    approval_token,
    commands,
    make_repo,
    stage,
    stage_state,
    wait_for,
    wait_status,
)


@click.group()
def cli() -> None:
    """The commands under test, until main.py registers them."""


client_commands.register(cli)


class Conveyor:
    """The CLI pointed at one server, and a boto3 client to check what it did."""

    def __init__(self, endpoint: str, folder: Path) -> None:
        self.endpoint = endpoint
        self.folder = folder
        self.api = make_client(endpoint)

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = CliRunner().invoke(cli, [*args, "--endpoint", self.endpoint])
        assert result.exit_code == code, (result.output, result.exception)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)

    def file(self, name: str, *stages: dict[str, Any], **extra: Any) -> Path:
        """A pipeline file next to ``repo`` (relative, as people write them locally)."""
        document = {
            "name": name,
            "pipelineType": "V2",
            "stages": [
                {"name": "Source", "actions": [_source()]},
                *stages,
            ],
            **extra,
        }
        path = self.folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"pipeline": document}))
        return path

    def latest(self, name: str) -> str:
        return str(
            self.json("executions", name, "--max", "1")["pipelineExecutionSummaries"][0][
                "pipelineExecutionId"
            ]
        )

    def wait(self, name: str, execution: str, *statuses: str) -> str:
        return wait_status(self.api, name, execution, *statuses)


def _source() -> dict[str, Any]:
    return {
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "Git", "version": "1"},
        "configuration": {"RepositoryUrl": "repo", "BranchName": "main"},
        "outputArtifacts": [{"name": "Src"}],
        "namespace": "SRC",
    }


@pytest.fixture
def conveyor(server: Running, tmp_path: Path) -> Conveyor:
    make_repo(tmp_path / "repo")
    return Conveyor(server.endpoint, tmp_path)


@sqlite_only
def test_create_list_show_update_delete(conveyor: Conveyor) -> None:
    path = conveyor.file("app", stage("Build", commands("Make", "echo made")))
    created = conveyor("create", str(path), "--tags", "team=web")
    assert created.stdout == "created pipeline 'app' (version 1)\n"
    tags = conveyor.api.list_tags_for_resource(
        resourceArn="arn:aws:codepipeline:us-east-1:000000000000:app"
    )
    assert tags["tags"] == [{"key": "team", "value": "web"}]
    execution = conveyor.latest("app")
    conveyor.wait("app", execution, "Succeeded")

    listing = conveyor("list").stdout.splitlines()
    assert listing[0].split() == ["NAME", "VERSION", "TYPE", "MODE", "UPDATED"]
    assert listing[1].split()[:4] == ["app", "1", "V2", "SUPERSEDED"]
    assert [p["name"] for p in conveyor.json("list")["pipelines"]] == ["app"]

    shown = conveyor("show", "app").stdout
    assert shown.startswith("app  version 1")
    assert f"Build  Succeeded  execution {execution}" in shown
    assert "✓  Make    Succeeded" in shown
    state = conveyor.json("show", "app")
    assert [s["stageName"] for s in state["stageStates"]] == ["Source", "Build"]
    assert isinstance(state["created"], str)

    path = conveyor.file(
        "app", stage("Build", commands("Make", "echo made")), executionMode="QUEUED"
    )
    assert conveyor("update", str(path)).stdout == "updated pipeline 'app' (version 2)\n"
    assert conveyor.api.get_pipeline(name="app")["pipeline"]["executionMode"] == "QUEUED"
    assert conveyor("delete", "app").stdout == "deleted pipeline 'app'\n"
    assert conveyor("list").stdout == "no pipelines\n"


@sqlite_only
def test_start_with_variables_then_executions_history_and_logs(conveyor: Conveyor) -> None:
    greeting = [{"name": "GREETING", "value": "#{variables.GREETING}"}]
    make = commands(
        "Make", "echo hello $GREETING", "sleep 0.3", "echo done", environmentVariables=greeting
    )
    path = conveyor.file(
        "app",
        stage("Build", make),
        variables=[{"name": "GREETING", "defaultValue": "nobody"}],
    )
    conveyor("create", str(path))
    conveyor.wait("app", conveyor.latest("app"), "Succeeded")
    commit = action_state(conveyor.api, "app", "Source", "Source")["summary"]
    assert commit

    execution = conveyor("start", "app", "--var", "GREETING=world").stdout.strip()
    assert conveyor.latest("app") == execution
    # Once this execution is in the stage, --follow follows its action, or prints the whole
    # log at once if the action has already ended.
    wait_for(
        lambda: (
            stage_state(conveyor.api, "app", "Build")
            .get("latestExecution", {})
            .get("pipelineExecutionId")
            == execution
        )
    )
    followed = conveyor("logs", "app", "Build", "Make", "--follow").stdout
    assert followed.index("hello world") < followed.index("done")
    assert conveyor.wait("app", execution, "Succeeded") == "Succeeded"
    logged = conveyor.json("logs", "app", "Build", "Make")
    assert "hello world" in logged["log"]
    assert logged["status"] == "Succeeded"

    rows = conveyor("executions", "app").stdout.splitlines()
    assert rows[0].split()[:3] == ["EXECUTION", "STATUS", "TRIGGER"]
    assert rows[1].split()[:3] == [execution, "Succeeded", "StartPipelineExecution"]
    assert len(rows) == 3
    summaries = conveyor.json("executions", "app", "--max", "1")["pipelineExecutionSummaries"]
    assert [s["pipelineExecutionId"] for s in summaries] == [execution]

    history = conveyor("history", "app").stdout.splitlines()
    assert history[0] == f"execution {execution}"
    assert [line.split()[:3] for line in history[1:]] == [
        ["STAGE", "ACTION", "STATUS"],
        ["Source", "Source", "Succeeded"],
        ["Build", "Make", "Succeeded"],
    ]
    details = conveyor.json("history", "app", execution)["actionExecutionDetails"]
    assert {d["actionName"] for d in details} == {"Source", "Make"}


@sqlite_only
def test_approvals_and_transitions(conveyor: Conveyor) -> None:
    path = conveyor.file(
        "app", stage("Gate", approval()), stage("Deploy", commands("Ship", "echo shipped"))
    )
    conveyor("create", str(path))
    first = conveyor.latest("app")
    token = approval_token(conveyor.api, "app")
    shown = conveyor("show", "app").stdout
    assert f"waiting for approval: conveyor approve app Gate Approve  (token {token})" in shown
    assert "Approve  InProgress" in shown
    assert (
        conveyor("approve", "app", "Gate", "Approve", "--summary", "ok").stdout
        == "approved Gate/Approve\n"
    )
    conveyor.wait("app", first, "Succeeded")
    error = conveyor("approve", "app", "Gate", "Approve", code=1)
    assert error.stderr == "error: nothing waits for approval at app/Gate/Approve\n"

    conveyor("disable", "app", "Deploy", "--reason", "release freeze")
    shown = conveyor("show", "app").stdout
    assert "⏸ transition disabled: release freeze" in shown
    second = conveyor("start", "app").stdout.strip()
    approval_token(conveyor.api, "app")
    conveyor("approve", "app", "Gate", "Approve")
    wait_for(
        lambda: "↓ inbound " + second in conveyor("show", "app").stdout, what="an inbound execution"
    )
    conveyor("enable", "app", "Deploy")
    conveyor.wait("app", second, "Succeeded")

    conveyor("disable", "app", "Gate", "--outbound", "--reason", "hold")
    state = conveyor.json("show", "app")["stageStates"]
    assert state[2]["inboundTransitionState"]["enabled"] is False
    conveyor("enable", "app", "Gate", "--outbound")

    third = conveyor("start", "app").stdout.strip()
    approval_token(conveyor.api, "app")
    assert conveyor("reject", "app", "Gate", "Approve").stdout == "rejected Gate/Approve\n"
    assert conveyor.wait("app", third, "Failed") == "Failed"


@sqlite_only
def test_retry_and_stop(conveyor: Conveyor) -> None:
    flag = conveyor.folder / "flag"
    check = commands("Check", f'test -f {flag} && sleep "$(cat {flag})"')
    conveyor("create", str(conveyor.file("app", stage("Build", check))))
    first = conveyor.latest("app")
    conveyor.wait("app", first, "Failed")
    shown = conveyor("show", "app").stdout
    assert "✗  Check   Failed" in shown
    assert "error JobFailed: " in shown

    flag.write_text("0")
    assert conveyor("retry", "app", "Build").stdout == f"retrying stage 'Build' of {first}\n"
    conveyor.wait("app", first, "Succeeded")
    conveyor("retry", "app", "Build", first, "--all", code=1)  # nothing failed to retry

    flag.write_text("30")
    second = conveyor("start", "app").stdout.strip()
    wait_for(
        lambda: action_state(conveyor.api, "app", "Build", "Check").get("status") == "InProgress"
    )
    stopped = conveyor("stop", "app", "--abandon", "--reason", "enough")
    assert stopped.stdout == f"abandoning {second}\n"
    assert conveyor.wait("app", second, "Stopped") == "Stopped"
    error = conveyor("stop", "app", code=1)
    assert error.stderr == "error: no execution of pipeline 'app' is in progress\n"


@sqlite_only
def test_api_errors_are_one_line(conveyor: Conveyor) -> None:
    result = conveyor("show", "nope", code=1)
    assert result.stdout == ""
    assert result.stderr.startswith("error: PipelineNotFoundException: ")
    assert "nope" in result.stderr and result.stderr.count("\n") == 1
    broken = conveyor.folder / "broken.yaml"
    broken.write_text(yaml.safe_dump({"name": "bad name", "stages": []}))
    result = conveyor("create", str(broken), code=1)  # refused as `conveyor validate` refuses it
    assert result.stderr.startswith(f"error: {broken}:1:1: name: Member must satisfy ")
    assert result.stderr.endswith("\n1 problem\n")
    result = conveyor("create", str(conveyor.folder / "missing.yaml"), code=1)
    assert result.stderr.startswith("error: ") and "missing.yaml" in result.stderr
    assert "expected NAME=VALUE" in conveyor("start", "x", "--var", "oops", code=2).stderr
    assert conveyor("logs", "nope", "A", "B", code=1).stderr.startswith("error: PipelineNotFound")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("args", [["list"], ["show", "app", "--json"], ["stop", "app"]])
def test_an_unreachable_server_gets_a_hint(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("CONVEYOR_ENDPOINT", endpoint)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert (
        result.stderr
        == f"error: cannot reach Conveyor at {endpoint}: start one with 'conveyor server'\n"
    )


def _registered() -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "conveyor", "--help"], capture_output=True, text=True, check=False
    )
    return " list " in result.stdout and " show " in result.stdout


@sqlite_only
@pytest.mark.skipif(not _registered(), reason="the client commands are not registered yet")
def test_the_installed_commands(conveyor: Conveyor) -> None:
    path = conveyor.file("app", stage("Build", commands("Make", "echo made")))
    command = [sys.executable, "-m", "conveyor"]
    env = {**os.environ, "CONVEYOR_ENDPOINT": conveyor.endpoint}
    created = subprocess.run(
        [*command, "create", str(path)], capture_output=True, text=True, env=env, check=False
    )
    assert created.returncode == 0, created.stderr
    listed = subprocess.run(
        [*command, "list", "--json"], capture_output=True, text=True, env=env, check=False
    )
    assert [p["name"] for p in json.loads(listed.stdout)["pipelines"]] == ["app"]


@sqlite_only
@pytest.mark.parametrize(("no_color", "coloured"), [("1", False), ("", True)])
def test_show_and_list_honour_no_color(conveyor: Conveyor, no_color: str, coloured: bool) -> None:
    path = conveyor.file("app", stage("Build", commands("Make", "echo made")))
    conveyor("create", str(path))
    for command in ("list", "show"):
        args = [command, *(["app"] if command == "show" else []), "--endpoint", conveyor.endpoint]
        result = CliRunner().invoke(conveyor_cli, args, color=True, env={"NO_COLOR": no_color})
        assert result.exit_code == 0, result.output
        assert ("\x1b[" in result.stdout) is coloured, command
