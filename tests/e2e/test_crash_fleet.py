"""SIGKILL, twice more: a server killed during its start-up recovery, in PARALLEL mode; and one
of two servers on one PostgreSQL database killed mid-run, its work left to the other.

The pipeline, the ledger its actions write and the checks are those of `test_crash`: no
execution lost, none stuck, no attempt run twice, every failure explained. One kill each where
the test allows (the recovery test needs a first kill to have something to recover), and waits
on conditions: the ledger, the database, the API.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_client
from tests.e2e.serverproc import free_port, server_process
from tests.e2e.test_crash import (
    PIPELINE,
    Book,
    Crashes,
    Entry,
    Kill,
    alive,
    all_actions,
    all_executions,
    approve_listed,
    check_none_lost_none_stuck,
    check_nothing_ran_twice,
    check_the_promise,
    check_waiting_went_on,
    conveyor,
    crash_pipeline,
    group_members,
    marker_processes,
    read_ledger,
    settle,
    snapshot,
)
from tests.support.engine import make_repo, wait_for
from tests.support.fleet import shared_buckets

ACTIVE = ("Dispatched", "InProgress")


def running_attempts(ledger: list[Entry]) -> int:
    """Attempts that started and have not yet written their end."""
    done = {e.attempt for e in ledger if e.event == "done"}
    return len({e.attempt for e in ledger if e.event == "start"} - done)


def held_jobs(database: Path) -> int:
    """Jobs in a worker's hands, read from the server's SQLite file beside it."""
    with (
        suppress(sqlite3.OperationalError),
        sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as conn,
    ):
        found = conn.execute("SELECT count(*) FROM jobs WHERE status IN (?, ?)", ACTIVE).fetchone()
        return int(found[0])
    return -1


@contextmanager
def no_orphans_left(marker: str) -> Iterator[list[int]]:
    """What an operator would do after a crash: kill what is left of the actions."""
    survivors: list[int] = []
    try:
        yield survivors
    finally:
        for pid in alive(survivors) + marker_processes(marker):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def orphans_gone(orphans: list[int]) -> list[int]:
    """The orphans still running 3 s after their server's kill (they die of SIGPIPE)."""
    deadline = time.monotonic() + 3
    while alive(orphans) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(orphans)


def kill_while_running(
    client: Any, process: subprocess.Popen[bytes], ledger: Path, marker: str, running: int
) -> Kill:
    """SIGKILL the server once ``running`` actions run at once; what was waiting then."""
    wait_for(
        lambda: running_attempts(read_ledger(ledger, marker)) >= running,
        30,
        f"{running} actions to run side by side",
    )
    waiting, inbound = snapshot(client)
    at = time.time()
    process.send_signal(signal.SIGKILL)
    process.wait()
    return Kill(at, waiting, inbound, group_members(marker_processes(marker)))


def recovering(database: Path, held: int) -> str:
    """Once fewer than ``held`` jobs are held, what is left to recover (else nothing)."""
    left = held_jobs(database)
    return f"{left} of {held}" if 0 <= left < held else ""


def killed_in_recovery(home: Path, port: int, log: Path) -> str:
    """Start the server on ``home`` and SIGKILL it once it has failed one of the jobs the
    killed run held, meant to land before it has failed them all; what was left to recover
    (``0 of …``: the kill came too late)."""
    database = home / "conveyor.db"
    held = held_jobs(database)
    assert held >= 4, f"{held} jobs held at the kill"
    command = [sys.executable, "-m", "conveyor", "server", "--port", str(port)]
    with open(log, "ab") as stderr:
        again = subprocess.Popen(
            [*command, "--home", str(home)], stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 30
        # Looked at often: recovering a job takes the server a few milliseconds.
        while not (left := recovering(database, held)):
            assert time.monotonic() < deadline, "the restarted server recovered nothing"
            time.sleep(0.001)
        again.send_signal(signal.SIGKILL)
    finally:
        again.kill()
        again.wait()
    return left


def failure_summaries(client: Any, executions: list[dict[str, Any]]) -> dict[str, str]:
    return {
        e["pipelineExecutionId"]: client.get_pipeline_execution(
            pipelineName=PIPELINE, pipelineExecutionId=e["pipelineExecutionId"]
        )["pipelineExecution"].get("statusSummary", "")
        for e in executions
        if e["status"] == "Failed"
    }


# Runs of the recovery test: on a loaded machine the restarted server may recover every job
# before the test looks again, and the kill then lands after the recovery.
RECOVERY_ATTEMPTS = 3


def test_a_kill_during_start_up_recovery_in_parallel_mode_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_WORKERS", "8")  # as many running actions to recover
    for attempt in range(RECOVERY_ATTEMPTS):
        if _killed_during_recovery(tmp_path / f"attempt-{attempt}"):
            return
    pytest.fail(f"the kill came after the recovery in each of {RECOVERY_ATTEMPTS} runs")


def _killed_during_recovery(folder: Path) -> bool:
    """Kill a PARALLEL run, then its restarted server during its recovery, and check what
    is left; False when the second kill came after the recovery (nothing was checked)."""
    folder.mkdir()
    marker = f"crash-{uuid.uuid4().hex[:12]}"
    ledger, home, log = folder / "ledger.txt", folder / "home", folder / "server.log"
    make_repo(folder / "repo", {"README.md": "crash test\n"})
    port = free_port()
    client = make_client(f"http://127.0.0.1:{port}")
    book, kills = Book(), list[Kill]()
    with no_orphans_left(marker) as survivors:
        with conveyor(home, port, None, log) as process:
            client.create_pipeline(
                pipeline=crash_pipeline(folder / "repo", ledger, marker, "PARALLEL")
            )
            book.started.append(all_executions(client)[0]["pipelineExecutionId"])
            for _ in range(3):
                started = client.start_pipeline_execution(name=PIPELINE)
                book.started.append(started["pipelineExecutionId"])
            kills.append(kill_while_running(client, process, ledger, marker, 4))
        orphans = kills[0].orphans
        left = killed_in_recovery(home, port, log)
        survivors.extend(orphans_gone(orphans))
        if left.startswith("0 "):
            return False
        kills.append(Kill(time.time(), {}, {}, []))
        with conveyor(home, port, None, log):
            # Something gets through: an execution started once the kills are over.
            book.started.append(
                client.start_pipeline_execution(name=PIPELINE)["pipelineExecutionId"]
            )
            executions = settle(client, book, 40, approve_listed)
            actions = all_actions(client)
            summaries = failure_summaries(client, executions)
            survivors.extend(marker_processes(marker))
    crashes = Crashes(
        book,
        kills,
        survivors,
        executions,
        actions,
        summaries,
        read_ledger(ledger, marker),
        log.read_text(errors="replace"),
    )
    context = f"{crashes.report()}; jobs left to recover at the second kill: {left}"
    print(context)
    check_the_promise(crashes, context)
    return True


@pytest.mark.postgres
def test_a_server_killed_mid_run_leaves_every_execution_to_the_other(
    postgres_url: str, tmp_path: Path
) -> None:
    """Both servers run actions of several executions; one is SIGKILLed. The survivor takes
    the sweep over, fails the dead one's actions once their leases run out (naming its
    worker), runs everything else to its end, and nothing runs twice."""
    marker = f"crash-{uuid.uuid4().hex[:12]}"
    ledger = tmp_path / "ledger.txt"
    one, two = tmp_path / "one", tmp_path / "two"
    shared_buckets(tmp_path / "buckets", one, two)
    make_repo(tmp_path / "repo", {"README.md": "crash test\n"})
    env = {
        "CONVEYOR_DATABASE_URL": postgres_url,
        "CONVEYOR_WORKERS": "2",
        "CONVEYOR_JOB_LEASE_SECONDS": "2",
        "CONVEYOR_DETECT_CHANGES": "false",
    }
    book = Book()
    with no_orphans_left(marker) as survivors, ExitStack() as stack:
        endpoint, _ = stack.enter_context(server_process(one, env=env))
        _, doomed = stack.enter_context(server_process(two, env=env))
        client = make_client(endpoint)
        client.create_pipeline(
            pipeline=crash_pipeline(tmp_path / "repo", ledger, marker, "PARALLEL")
        )
        book.started.append(all_executions(client)[0]["pipelineExecutionId"])
        for _ in range(2):
            book.started.append(
                client.start_pipeline_execution(name=PIPELINE)["pipelineExecutionId"]
            )
        # Two workers each: three actions at once run on both servers.
        kill = kill_while_running(client, doomed, ledger, marker, 3)
        survivors.extend(orphans_gone(kill.orphans))
        executions = settle(client, book, 40, approve_listed)
        actions = all_actions(client)
        survivors.extend(marker_processes(marker))
    crashes = Crashes(
        book,
        [kill],
        survivors,
        executions,
        actions,
        {},
        read_ledger(ledger, marker),
        "",
    )
    context = crashes.report()
    print(context)
    assert not crashes.survivors, f"{context}: action processes outlived the kill"
    check_none_lost_none_stuck(crashes, context)
    check_nothing_ran_twice(crashes, context)
    check_waiting_went_on(crashes, context)
    dead_node = (two / "node-id").read_text().strip()
    failed = [a for a in actions if a["status"] == "Failed"]
    assert failed, f"{context}: the kill caught no action of the killed server; it tested nothing"
    for action in failed:
        message = action["output"]["executionResult"]["errorDetails"]["message"]
        assert "stopped renewing its lease" in message and dead_node in message, message
        began = action["startTime"].timestamp()
        assert began - 0.5 <= kill.at, f"{context}: failed without running at the kill: {action}"
