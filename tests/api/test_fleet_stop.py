"""A stop decided on one server of a PostgreSQL database reaches, at once, an action that
another server's worker runs (LISTEN/NOTIFY, `conveyor.store.wakeups`) or a remote worker of
another server runs (its ``watch`` call, `conveyor.api.workerwatch`), not at that worker's
next lease renewal (a third of the lease: 20 s here)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from conveyor.config import Settings
from conveyor.server import running
from tests.conftest import make_client
from tests.support.engine import (
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
    wait_status,
)
from tests.support.fleet import shared_buckets, worker_process

pytestmark = pytest.mark.postgres


def gone(pid: int) -> bool:
    """Whether the process ended (a zombie has: its parent has yet to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone, or going as it is read
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


@pytest.mark.parametrize("remote", [False, True], ids=["in-process", "remote"])
def test_a_stop_on_one_server_ends_the_action_another_server_runs_at_once(
    postgres_url: str, tmp_path: Path, remote: bool
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    shared_buckets(tmp_path / "buckets", one, two)
    pidfile = tmp_path / "pid"
    # The first server runs no actions: the second's worker runs this one (in the second's
    # process, or a `conveyor worker` polling it).
    first = Settings(home=one, database_url=postgres_url, detect_changes=False, workers=0)
    second = Settings(
        home=two,
        database_url=postgres_url,
        detect_changes=False,
        workers=0 if remote else 1,
        remote_workers=remote,
    )
    repo = tmp_path / "repo"
    make_repo(repo)
    with ExitStack() as stack:
        asked = make_client(stack.enter_context(running(first)).endpoint)
        live = stack.enter_context(running(second))
        assert live.application.engine.wakeups is not None
        assert live.application.engine.wakeups.listening.wait(10)
        if remote:
            stack.enter_context(worker_process(live.endpoint, tmp_path / "worker"))
        asked.create_pipeline(
            pipeline=declaration(
                "long", repo, stage("Run", commands("Wait", f"echo $$ > {pidfile}; sleep 60"))
            )
        )
        execution = wait_for(lambda: latest_execution_id(asked, "long"), what="an execution")
        pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 30))
        stopped = time.monotonic()
        asked.stop_pipeline_execution(
            pipelineName="long", pipelineExecutionId=execution, abandon=True, reason="now"
        )
        wait_for(lambda: gone(pid), 5, "the action's process to be stopped")
        assert time.monotonic() - stopped < 5
        assert wait_status(asked, "long", execution, "Stopped") == "Stopped"
