"""One process per home, and a server that takes its port before it touches the home.

A second `conveyor server` (or `conveyor run --home`) on a home in use, or a server whose
port is taken, must leave the first server's running actions alone: these tests keep an
action (or a recorded process group) running and check it is still there afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.worker import leftovers
from tests.conftest import make_client
from tests.e2e.serverproc import free_port, server_process
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


def conveyor(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process in a session of its own, as an action's commands run; it outlives any test."""
    process = subprocess.Popen(["sleep", "3600"], start_new_session=True)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_second_process_on_a_home_in_use_is_refused_and_touches_nothing(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    repo = tmp_path / "repo"
    make_repo(repo)
    release = tmp_path / "release"
    wait = f"while [ ! -e {release} ]; do sleep 0.05; done"
    with server_process(home) as (endpoint, first):
        client = make_client(endpoint)
        client.create_pipeline(
            pipeline=declaration("app", repo, stage("Build", commands("Wait", wait)))
        )
        execution_id = latest_execution_id(client, "app")
        wait_for(
            lambda: action_state(client, "app", "Build", "Wait").get("status") == "InProgress",
            what="the action to run",
        )
        port = endpoint.rpartition(":")[2]
        second = conveyor("server", "--home", home, "--port", free_port())
        assert second.returncode == 1
        assert f"is in use by conveyor server on http://127.0.0.1:{port}" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        document = tmp_path / "pipeline.json"
        other = declaration("other", repo, stage("Build", commands("Echo", "echo hello")))
        document.write_text(json.dumps(other))
        run = conveyor("run", document, "--home", home)
        assert run.returncode == 1
        assert "is in use by conveyor server" in run.stderr
        # The first server's action still runs, and finishes as it would have.
        assert action_state(client, "app", "Build", "Wait")["status"] == "InProgress"
        release.touch()
        assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Succeeded"


def test_a_server_whose_port_is_taken_recovers_nothing(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """The leftovers of an earlier run stay until a server that can serve recovers them."""
    home = tmp_path / "home"
    work = home / "work"
    work.mkdir(parents=True)
    leftovers.record(work, "job-1", sleeper.pid)
    with server_process(tmp_path / "other") as (endpoint, _):
        port = endpoint.rpartition(":")[2]
        refused = conveyor("server", "--home", home, "--port", port)
    assert refused.returncode == 1
    assert f"cannot listen on http://127.0.0.1:{port}" in refused.stderr
    assert "listening" not in refused.stderr
    assert sleeper.poll() is None, "the recorded process group was ended"
    assert (work / f"job-1{leftovers.SUFFIX}").exists()
    with server_process(home):
        wait_for(lambda: sleeper.poll() is not None, what="the leftover to be ended")
    assert sleeper.returncode == -signal.SIGKILL
    assert os.path.exists(home / "lock")
