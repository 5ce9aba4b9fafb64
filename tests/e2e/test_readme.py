"""The README's tour runs as written: every command, in order, in a fresh folder.

The folder looks like a fresh clone (``examples/`` copied, ``.venv`` linked), and the commands
run in one bash session (see `tests.e2e.tour`). Two things differ from a person at a
terminal, both about time and ports, never about what a command does: the server listens on a
free port instead of 8470 (every ``8470`` of the tour becomes that port, and
``CONVEYOR_PORT``/``CONVEYOR_ENDPOINT`` point there), and before a command that needs an
execution to have reached a point (``logs`` needs the action to have started, ``approve`` the
approval to be waiting) the test waits for that state, as a person would look at
``conveyor show`` first.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.runs import warm_runtime
from tests.e2e.serverproc import free_port
from tests.e2e.tour import CommandFailed, Session, tour_commands

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEFAULT_PORT = "8470"
WAIT = 120.0


def test_the_tour_has_the_commands_it_promises() -> None:
    commands = tour_commands(README)
    words = [shlex.split(c.rstrip("&"))[:2] for c in commands]
    for wanted in (
        ["conveyor", "validate"],
        ["conveyor", "run"],
        ["conveyor", "server"],
        ["aws", "codepipeline"],
        ["conveyor", "show"],
        ["conveyor", "approve"],
        ["conveyor", "logs"],
        ["conveyor", "executions"],
    ):
        assert wanted in words, f"the tour has no `{' '.join(wanted)}`"
    runs = " ".join(c for c in commands if c.startswith("conveyor run "))
    for option in ("--var", "--source", "--revision"):
        assert option in runs, f"no `conveyor run` of the tour shows {option}"


def _fresh_clone(folder: Path) -> Path:
    clone = folder / "conveyor"
    clone.mkdir()
    shutil.copytree(ROOT / "examples", clone / "examples", ignore=shutil.ignore_patterns("__py*"))
    (clone / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return clone


def _environment(port: int, runtime: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "AWS_", "GIT_"))}
    identity = {"NAME": "Tour", "EMAIL": "tour@conveyor.invalid"}
    for who in ("AUTHOR", "COMMITTER"):
        env.update({f"GIT_{who}_{k}": v for k, v in identity.items()})
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        NO_COLOR="1",
        CONVEYOR_PORT=str(port),
        CONVEYOR_ENDPOINT=f"http://127.0.0.1:{port}",
        XDG_RUNTIME_DIR=str(runtime),  # the warm process the tour's first run leaves
    )
    return env


def _client(endpoint: str) -> Any:
    return boto3.client(
        "codepipeline",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}),
    )


def _action(endpoint: str, name: str, stage: str, action: str) -> dict[str, Any]:
    state = _client(endpoint).get_pipeline_state(name=name)
    for found in state["stageStates"]:
        if found["stageName"] == stage:
            for item in found.get("actionStates", []):
                if item["actionName"] == action:
                    return dict(item.get("latestExecution") or {})
    return {}


def _wait(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not ready():
        if time.monotonic() > deadline:
            raise CommandFailed(f"waited {WAIT:.0f} s for {what}")
        time.sleep(0.2)


def _up(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/health", timeout=2):
            return True
    except OSError:
        return False


def _before(command: str, endpoint: str) -> None:
    """Wait for the state ``command`` needs, as a person would look before typing it."""
    words = shlex.split(command)
    if words[:2] == ["conveyor", "logs"]:
        name, stage, action = words[2:5]
        _wait(
            f"{stage}/{action} to start",
            lambda: bool(_action(endpoint, name, stage, action).get("externalExecutionUrl")),
        )
    elif words[:2] == ["conveyor", "executions"]:
        name = words[2]
        _wait(
            f"a commit to start {name}",
            lambda: any(
                s["trigger"]["triggerType"] == "CloudWatchEvent"
                for s in _client(endpoint).list_pipeline_executions(pipelineName=name)[
                    "pipelineExecutionSummaries"
                ]
            ),
        )
    elif words[:2] == ["conveyor", "approve"]:
        name, stage, action = words[2:5]
        _wait(
            f"{stage}/{action} to wait for approval",
            lambda: _action(endpoint, name, stage, action).get("status") == "InProgress",
        )


def test_every_command_of_the_tour_runs_in_order(tmp_path: Path) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    clone = _fresh_clone(tmp_path)
    with warm_runtime() as runtime, Session(clone, _environment(port, runtime)) as shell:
        for written in tour_commands(README):
            command = written.replace(DEFAULT_PORT, str(port))
            if shell.background:
                _before(command, endpoint)
            outcome = shell.run(command)
            if outcome.status != 0:
                pytest.fail(f"`{command}` exited with {outcome.status}:\n{outcome.output}")
            if command.endswith("&"):
                _wait("the server to answer", lambda: _up(endpoint))
        _wait("the served execution to end", lambda: _latest(endpoint) != "InProgress")
        assert _latest(endpoint) == "Succeeded"
    deployed = clone / "conveyor-home" / "buckets" / "hello-site" / "development" / "VERSION.txt"
    # The last execution is the one the tour's commit started, and it deployed that commit.
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=clone / "hello-service",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert deployed.read_text() == f"hello-service 1.0.2 for development, built from {head}\n"


def _latest(endpoint: str) -> str:
    listed = _client(endpoint).list_pipeline_executions(pipelineName="hello-service")
    return str(listed["pipelineExecutionSummaries"][0]["status"])
