"""`conveyor worker` runs a pipeline for a `conveyor server` that runs no actions itself.

The server (``CONVEYOR_WORKERS=0``, ``remote_workers`` on) and the worker are separate
processes with separate homes: the worker reaches jobs and artifacts over HTTP only.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conveyor.config import Settings
from conveyor.server import running
from tests.conftest import BACKENDS, make_client
from tests.e2e.serverproc import free_port, server_process
from tests.support.auth import allow, make_user, signed_client
from tests.support.engine import (
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
    wait_status,
)
from tests.support.fleet import worker_process

BUILDSPEC = """\
version: 0.2
env:
  exported-variables: [VERSION]
phases:
  build:
    commands:
      - export VERSION=7
      - mkdir -p dist && echo "built from $(cat README.md)" > dist/out.txt
artifacts:
  files: [out.txt]
  base-directory: dist
"""
SERVER_ENV = {
    "CONVEYOR_WORKERS": "0",
    "CONVEYOR_REMOTE_WORKERS": "true",
    "CONVEYOR_DETECT_CHANGES": "false",
}


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server' / 'conveyor.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def action_states(client: Any, name: str) -> dict[str, dict[str, Any]]:
    state = client.get_pipeline_state(name=name)
    return {
        action["actionName"]: action.get("latestExecution", {})
        for stage_state in state["stageStates"]
        for action in stage_state["actionStates"]
    }


def server_logs(home: Path) -> str:
    return "".join(p.read_text() for p in sorted((home / "logs").glob("*.log")))


def test_a_worker_runs_source_build_and_commands_for_a_server_with_no_workers(
    tmp_path: Path, database: str
) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"README.md": "the tree", "buildspec.yml": BUILDSPEC})
    build = {
        "name": "Make",
        "actionTypeId": {
            "category": "Build",
            "owner": "AWS",
            "provider": "CodeBuild",
            "version": "1",
        },
        "configuration": {"ProjectName": "app"},
        "inputArtifacts": [{"name": "Src"}],
        "outputArtifacts": [{"name": "Dist"}],
        "namespace": "BUILD",
    }
    use = commands("Use", "cat out.txt", "echo version #{BUILD.VERSION}", inputs=("Dist",))
    (tmp_path / "server").mkdir()
    with server_process(tmp_path / "server", env=SERVER_ENV, args=["--database", database]) as (
        endpoint,
        _,
    ):
        client = make_client(endpoint)
        client.create_pipeline(
            pipeline=declaration("remote", repo, stage("Build", build), stage("Use", use))
        )
        execution = wait_for(lambda: latest_execution_id(client, "remote"), what="an execution")
        time.sleep(1.0)
        # Nobody runs actions on this server: the source waits for a worker.
        assert action_states(client, "remote")["Source"]["status"] == "InProgress"
        with worker_process(endpoint, tmp_path / "worker", "--concurrency", "2") as worker:
            assert wait_status(client, "remote", execution, "Succeeded", "Failed", timeout=60) == (
                "Succeeded"
            ), (tmp_path / "worker.log").read_text()
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=20) == 0
        states = action_states(client, "remote")
        assert states["Make"]["status"] == "Succeeded"
        logs = server_logs(tmp_path / "server")
        # The Commands action read the build's output artifact, fetched over HTTP.
        assert "built from the tree" in logs
        assert "version 7" in logs
        # The worker's home holds no state of the server's.
        assert not (tmp_path / "worker" / "buckets").exists()


def test_a_worker_signs_its_calls_for_a_server_with_auth_required(
    tmp_path: Path, database: str
) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"README.md": "signed tree"})
    settings = Settings(
        home=tmp_path / "server",
        database_url=database,
        detect_changes=False,
        workers=0,
        remote_workers=True,
        auth="required",
    )
    use = commands("Use", "cat README.md")
    with running(settings) as live:
        admin = make_user(live, "admin", managed=["AWSCodePipeline_FullAccess"])
        worker_key = make_user(live, "worker", policies=[allow("conveyor:RunBuiltInJobs")])
        client = signed_client(live, admin)
        client.create_pipeline(pipeline=declaration("signed", repo, stage("Use", use)))
        execution = wait_for(lambda: latest_execution_id(client, "signed"), what="an execution")
        key_env = {
            "CONVEYOR_ACCESS_KEY_ID": worker_key[0],
            "CONVEYOR_SECRET_ACCESS_KEY": worker_key[1],
        }
        with worker_process(live.endpoint, tmp_path / "worker", env=key_env) as worker:
            assert wait_status(client, "signed", execution, "Succeeded", "Failed", timeout=60) == (
                "Succeeded"
            ), (tmp_path / "worker.log").read_text()
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=20) == 0
        assert "signed tree" in server_logs(tmp_path / "server")


@contextmanager
def one_action_running(
    tmp_path: Path, database: str, name: str, *lines: str, **env: str
) -> Iterator[tuple[Any, str, subprocess.Popen[bytes]]]:
    """A server, a pipeline of one Commands action that first touches ``started``, and a
    worker of one that runs it: the client, the execution's id and the worker, once the
    action has started."""
    repo = tmp_path / "repo"
    make_repo(repo)
    started = tmp_path / "started"
    action = commands("Run", f"touch {started}", *lines)
    (tmp_path / "server").mkdir()
    with server_process(
        tmp_path / "server", env={**SERVER_ENV, **env}, args=["--database", database]
    ) as (endpoint, _):
        client = make_client(endpoint)
        client.create_pipeline(pipeline=declaration(name, repo, stage("Run", action)))
        execution = wait_for(lambda: latest_execution_id(client, name), what="an execution")
        with worker_process(endpoint, tmp_path / "worker", "--concurrency", "1") as worker:
            wait_for(started.exists, timeout=60, what="the action to start")
            yield client, execution, worker


def test_sigterm_lets_the_running_action_finish_and_takes_nothing_new(
    tmp_path: Path, database: str
) -> None:
    finished = tmp_path / "finished"
    with one_action_running(
        tmp_path, database, "drain", "sleep 2", f"touch {finished}", "echo slow done"
    ) as (client, first, worker):
        worker.send_signal(signal.SIGTERM)
        assert wait_status(client, "drain", first, "Succeeded", "Failed", timeout=30) == (
            "Succeeded"
        )
        assert finished.exists()
        assert worker.wait(timeout=20) == 0
        # The worker is gone: a new execution waits, its source untaken.
        second = client.start_pipeline_execution(name="drain")["pipelineExecutionId"]
        time.sleep(0.5)
        assert wait_status(client, "drain", second, "InProgress") == "InProgress"
        assert action_states(client, "drain")["Source"]["status"] == "InProgress"
    assert "slow done" in server_logs(tmp_path / "server")


def test_a_second_sigterm_stops_the_running_action_which_fails(
    tmp_path: Path, database: str
) -> None:
    with one_action_running(tmp_path, database, "stopped", "sleep 120") as (
        client,
        execution,
        worker,
    ):
        worker.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert worker.poll() is None  # draining: the action still runs
        worker.send_signal(signal.SIGTERM)
        assert wait_status(client, "stopped", execution, "Succeeded", "Failed", timeout=30) == (
            "Failed"
        )
        assert worker.wait(timeout=20) == 0
        failed = action_states(client, "stopped")["Run"]
    assert failed["status"] == "Failed"
    assert "cancelled" in failed["errorDetails"]["message"]


def test_a_worker_killed_mid_action_fails_it_once_its_lease_runs_out(
    tmp_path: Path, database: str
) -> None:
    with one_action_running(
        tmp_path, database, "killed", "sleep 4", CONVEYOR_JOB_LEASE_SECONDS="1.5"
    ) as (client, execution, worker):
        worker.kill()
        worker.wait()
        assert wait_status(client, "killed", execution, "Succeeded", "Failed", timeout=30) == (
            "Failed"
        )
        failed = action_states(client, "killed")["Run"]
    message = failed["errorDetails"]["message"]
    assert "The worker running this action (remote/" in message
    assert "stopped renewing its lease" in message
    assert "last heard from at 20" in message


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--endpoint", "ftp://ci"], "an http(s) URL is required"),
        (["--endpoint", "http://127.0.0.1:9", "--providers", "Nope"], "has no provider 'Nope'"),
        (["--endpoint", "http://127.0.0.1:9", "--concurrency", "0"], "--concurrency: at least 1"),
    ],
)
def test_a_worker_refuses_what_it_cannot_do(tmp_path: Path, args: list[str], says: str) -> None:
    command = [sys.executable, "-m", "conveyor", "worker", "--home", str(tmp_path / "w"), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert says in result.stderr


def test_a_worker_started_before_its_server_waits_for_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    port = free_port()
    (tmp_path / "server").mkdir()
    with worker_process(f"http://127.0.0.1:{port}", tmp_path / "worker") as worker:
        time.sleep(1.0)
        assert worker.poll() is None  # the server is away: the worker keeps trying
        with server_process(tmp_path / "server", port, env=SERVER_ENV) as (endpoint, _):
            client = make_client(endpoint)
            client.create_pipeline(
                pipeline=declaration("later", repo, stage("Run", commands("Echo", "echo late")))
            )
            execution = wait_for(lambda: latest_execution_id(client, "later"), what="an execution")
            assert wait_status(client, "later", execution, "Succeeded", "Failed", timeout=60) == (
                "Succeeded"
            )
