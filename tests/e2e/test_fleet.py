"""Two `conveyor server` processes on one PostgreSQL database, one killed with SIGKILL while
its action runs: the other finishes its own action, fails the dead server's once its lease
runs out (naming the worker), sweeps and detects on its own from then on; nothing is lost and
nothing runs twice, and a retry runs the failed action on the survivor."""

from __future__ import annotations

import signal
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import make_client
from tests.e2e.serverproc import server_process
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
from tests.support.fleet import shared_buckets

pytestmark = pytest.mark.postgres


def test_a_server_killed_mid_run_leaves_its_work_to_the_other(
    postgres_url: str, tmp_path: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    shared_buckets(tmp_path / "buckets", one, two)
    repo = tmp_path / "repo"
    make_repo(repo)
    release, runs = tmp_path / "release", tmp_path / "runs"
    # Each action says where it runs (its workspace is under its server's home).
    body = f'echo "$PWD" >> {runs}; while [ ! -e {release} ]; do sleep 0.05; done'
    env = {
        "CONVEYOR_DATABASE_URL": postgres_url,
        "CONVEYOR_WORKERS": "1",
        "CONVEYOR_JOB_LEASE_SECONDS": "4",
        "CONVEYOR_DETECT_CHANGES": "false",
    }
    with ExitStack() as stack:
        endpoint, first = stack.enter_context(server_process(one, env=env))
        other, second = stack.enter_context(server_process(two, env=env))
        client = make_client(endpoint)
        client.create_pipeline(
            pipeline=declaration(
                "pair", repo, stage("Build", commands("Left", body), commands("Right", body))
            )
        )
        execution = wait_for(lambda: latest_execution_id(client, "pair"), what="an execution")
        # One worker each: the two actions run on the two servers.
        lines = wait_for(
            lambda: runs.exists() and len(runs.read_text().split()) == 2 and runs.read_text(),
            what="both actions to run",
        )
        assert {Path(line).parts[len(tmp_path.parts)] for line in lines.split()} == {"one", "two"}
        first.send_signal(signal.SIGKILL)
        first.wait()
        release.touch()
        survivor = make_client(other)
        status = wait_status(survivor, "pair", execution, "Succeeded", "Failed", timeout=60)
        assert status == "Failed"
        left, right = (action_state(survivor, "pair", "Build", n) for n in ("Left", "Right"))
        dead, alive = (left, right) if left["status"] == "Failed" else (right, left)
        assert alive["status"] == "Succeeded"
        assert "stopped renewing its lease" in dead["errorDetails"]["message"]
        assert "last heard from" in dead["errorDetails"]["message"]
        # Nothing ran twice.
        assert len(runs.read_text().split()) == 2
        survivor.retry_stage_execution(
            pipelineName="pair",
            stageName="Build",
            pipelineExecutionId=execution,
            retryMode="FAILED_ACTIONS",
        )
        assert wait_status(survivor, "pair", execution, "Succeeded", timeout=60) == "Succeeded"
        ran = runs.read_text().split()
        assert len(ran) == 3 and Path(ran[2]).parts[len(tmp_path.parts)] == "two"
        assert second.poll() is None
