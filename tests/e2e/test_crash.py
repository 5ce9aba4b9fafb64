"""SIGKILL the server at random moments, restart it on the same home: no execution is lost.

The promise: kill `conveyor server` with SIGKILL at any moment, restart it on the same home,
and every execution continues or ends with a clear status; none is lost, none stays
InProgress forever, no finished action runs again.

Each round starts the server on the same home and port, lets a driver thread start, approve
and now and then stop executions at random, and SIGKILLs the server at a random moment
(seeded: ``CONVEYOR_CRASH_SEED`` replays a run's choices; thread timing still varies). A last
run approves whatever waits and lets everything finish. Every command action appends `start`
and `done` lines to a ledger outside the workspace, naming its attempt (the action execution
id in ``CODEBUILD_BUILD_ID``) and its process, which proves that no attempt ran twice.

A SIGKILLed server cannot stop its running actions: each runs `bash` in a session of its own,
so it lives on as an orphan. It dies of SIGPIPE at its next write to the dead server's pipes
(the `+ command` echo or the progress report between commands), and until then it runs; a
command that writes nothing to its output (``sleep 1; touch x``) finishes its work with nobody
watching: such an attempt is recorded Failed ("result unknown") although its work was done.
The test checks that the orphans are gone soon after each kill (zombies count as gone: the
init of some containers reaps orphans only every few seconds).
"""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.conftest import make_client
from tests.e2e.serverproc import free_port, wait_until_up
from tests.support.engine import approval, commands, declaration, make_repo, stage

ROUNDS = 4
SEED = int(os.environ.get("CONVEYOR_CRASH_SEED", "20240611"))
PIPELINE = "crashy"
TERMINAL = {"Succeeded", "Failed", "Stopped", "Superseded", "Cancelled"}
CRASHED = "Conveyor stopped while this action was running"
# Action name → (stage, run order, seconds of sleep, one compound command or three).
ACTIONS = {
    "BuildA": ("Build", 1, 0.2, False),
    "BuildB": ("Build", 1, 0.3, False),
    "Package": ("Build", 2, 0.15, True),
    "DeployA": ("Deploy", 1, 0.1, False),
    "DeployB": ("Deploy", 1, 0.05, False),
    "Verify": ("Deploy", 2, 0.25, False),
}


def ledger_commands(name: str, ledger: Path, marker: str) -> list[str]:
    """Commands that log `start` and `done` lines: action, execution, attempt, run, marker."""
    _, _, sleep, compound = ACTIONS[name]
    path = shlex.quote(str(ledger))
    who = f"{name} #{{codepipeline.PipelineExecutionId}} ${{CODEBUILD_BUILD_ID:-unset}}"
    lines = [
        f'export RUN="$$-$(date +%s%N)"; echo "start {who} $RUN {marker}" >> {path}',
        f"sleep {sleep}",
        f'echo "done {who} $RUN {marker}" >> {path}',
    ]
    return ["; ".join(lines)] if compound else lines


def crash_pipeline(repo: Path, ledger: Path, marker: str, mode: str) -> dict[str, Any]:
    def actions_of(stage_name: str) -> list[dict[str, Any]]:
        return [
            commands(name, *ledger_commands(name, ledger, marker), run_order=order)
            for name, (where, order, _, _) in ACTIONS.items()
            if where == stage_name
        ]

    return declaration(
        PIPELINE,
        repo,
        stage("Build", *actions_of("Build")),
        stage("Gate", approval()),
        stage("Deploy", *actions_of("Deploy")),
        executionMode=mode,
    )


@dataclass
class Entry:
    event: str
    action: str
    execution: str
    attempt: str  # the action execution id, from CODEBUILD_BUILD_ID
    run: str  # bash's pid and start time: one per process that ran the commands


def read_ledger(ledger: Path, marker: str) -> list[Entry]:
    if not ledger.exists():
        return []
    entries = []
    for line in ledger.read_text().splitlines():
        event, action, execution, build, run, seen = line.split(" ")
        assert seen == marker, line
        entries.append(Entry(event, action, execution, build.rpartition(":")[2], run))
    return entries


@dataclass
class Kill:
    at: float
    waiting_approvals: dict[str, str]  # pipeline execution id → approval's action execution id
    inbound: dict[str, str]  # pipeline execution id → the stage it waits to enter
    orphans: list[int]


@dataclass
class Book:
    """What the test knows for sure: the executions whose start was acknowledged."""

    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    approved: int = 0
    errors: list[str] = field(default_factory=list)  # errors the server answered with
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def conveyor(
    home: Path, port: int, database: str | None, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "conveyor", "server", "--port", str(port)]
    command += ["--home", str(home)] + (["--database", database] if database else [])
    with open(log, "ab") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_until_up(f"http://127.0.0.1:{port}", process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        process.wait()


def marker_processes(marker: str) -> list[int]:
    """Processes whose command line holds the marker: the `bash -c` of an action."""
    found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def group_members(pids: list[int]) -> list[int]:
    """The orphaned bash processes and everything in their process groups (`sleep`)."""
    members = set(pids)
    for pid in pids:
        found = subprocess.run(
            ["pgrep", "-g", str(pid)], capture_output=True, text=True, check=False
        )
        members.update(int(p) for p in found.stdout.split())
    return sorted(members)


def alive(pids: list[int]) -> list[int]:
    """The processes still running; zombies are dead (init reaps orphans when it likes)."""
    living = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if stat.rpartition(")")[2].split()[0] != "Z":
            living.append(pid)
    return living


def expect(error: ClientError, *codes: str) -> None:
    if error.response["Error"]["Code"] not in codes:
        raise error


def approve_all(client: Any, book: Book) -> None:
    """Approve the pending approval that GetPipelineState shows, if any."""
    for state in client.get_pipeline_state(name=PIPELINE)["stageStates"]:
        for action in state["actionStates"]:
            token = (action.get("latestExecution") or {}).get("token")
            if token is not None:
                answer_approval(client, book, state["stageName"], action["actionName"], token)


def answer_approval(client: Any, book: Book, stage_name: str, action: str, token: str) -> None:
    try:
        client.put_approval_result(
            pipelineName=PIPELINE,
            stageName=stage_name,
            actionName=action,
            token=token,
            result={"status": "Approved", "summary": "crash test"},
        )
    except ClientError as error:  # approved meanwhile, or gone with its execution
        expect(error, "ApprovalAlreadyCompletedException", "InvalidApprovalTokenException")
        return
    with book.lock:
        book.approved += 1


def stop_one(client: Any, book: Book, rng: random.Random) -> None:
    """Stop a running execution, abandoning its actions or waiting for them."""
    running = [e for e in all_executions(client) if e["status"] == "InProgress"]
    if not running:
        return
    chosen = rng.choice(running)["pipelineExecutionId"]
    try:
        client.stop_pipeline_execution(
            pipelineName=PIPELINE,
            pipelineExecutionId=chosen,
            abandon=rng.random() < 0.5,
            reason="crash test",
        )
    except ClientError as error:  # it ended, or was stopped, meanwhile
        expect(error, "PipelineExecutionNotStoppableException", "DuplicatedStopRequestException")
        return
    with book.lock:
        book.stopped.append(chosen)


def drive(client: Any, book: Book, rng: random.Random, stop: threading.Event) -> None:
    """Start, approve and stop at random until the server dies or ``stop`` is set."""
    while not stop.is_set():
        try:
            if rng.random() < 0.4:
                answer = client.start_pipeline_execution(name=PIPELINE)
                # A kill between the response's head and its body leaves a 200 with no body:
                # like a dropped connection, the start's outcome is unknown to the client.
                if "pipelineExecutionId" in answer:
                    with book.lock:
                        book.started.append(answer["pipelineExecutionId"])
            if rng.random() < 0.5:
                approve_all(client, book)
            if rng.random() < 0.05:
                stop_one(client, book, rng)
        except KeyError:  # a read answered by a 200 with no body (see above): nothing read
            pass
        except ClientError as error:  # the server answered: no crash explains an error
            with book.lock:
                book.errors.append(f"{error.operation_name}: {error}")
        except BotoCoreError:  # the server is dead, or dying
            if stop.is_set():
                return
        stop.wait(rng.uniform(0.02, 0.25))


def all_executions(client: Any) -> list[dict[str, Any]]:
    pages = client.get_paginator("list_pipeline_executions").paginate(pipelineName=PIPELINE)
    return [s for page in pages for s in page["pipelineExecutionSummaries"]]


def all_actions(client: Any) -> list[dict[str, Any]]:
    pages = client.get_paginator("list_action_executions").paginate(pipelineName=PIPELINE)
    return [d for page in pages for d in page["actionExecutionDetails"]]


def snapshot(client: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The approvals waiting for an answer, and the executions waiting in front of a stage."""
    waiting = {
        d["pipelineExecutionId"]: d["actionExecutionId"]
        for d in all_actions(client)
        if d["actionName"] == "Approve" and d["status"] == "InProgress"
    }
    inbound = {
        e["pipelineExecutionId"]: s["stageName"]
        for s in client.get_pipeline_state(name=PIPELINE)["stageStates"]
        for e in s.get("inboundExecutions", [])
    }
    return waiting, inbound


def approve_listed(client: Any, book: Book) -> None:
    """Approve every pending approval that ListActionExecutions shows (in PARALLEL mode,
    GetPipelineState shows no token: the approval's external id is its token)."""
    for action in all_actions(client):
        if action["actionName"] == "Approve" and action["status"] == "InProgress":
            token = action["output"]["executionResult"]["externalExecutionId"]
            answer_approval(client, book, action["stageName"], action["actionName"], token)


def settle(
    client: Any, book: Book, timeout: float, approve: Callable[[Any, Book], None] = approve_all
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        approve(client, book)
        executions = all_executions(client)
        if all(e["status"] in TERMINAL for e in executions):
            return executions
        if time.monotonic() > deadline:
            stuck = {e["pipelineExecutionId"]: e["status"] for e in executions}
            raise AssertionError(f"executions still running after {timeout} s: {stuck}")
        time.sleep(0.1)


@dataclass
class Crashes:
    """What a run of rounds left: the book, the kills, and the final state of everything."""

    book: Book
    kills: list[Kill]
    survivors: list[int]  # orphaned action processes still running 3 s after their kill
    executions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    summaries: dict[str, str]  # statusSummary of each failed execution
    ledger: list[Entry]
    server_log: str

    def report(self) -> str:
        statuses = Counter(e["status"] for e in self.executions)
        done = {e.attempt for e in self.ledger if e.event == "done"}
        finished_anyway = [
            a["actionName"]
            for a in self.actions
            if a["status"] == "Failed" and a["actionExecutionId"] in done
        ]
        return (
            f"executions {dict(statuses)}, "
            f"actions {dict(Counter(a['status'] for a in self.actions))}, "
            f"failed by a crash yet finished by the orphan {finished_anyway}, "
            f"approved {self.book.approved}, stopped {len(self.book.stopped)}, "
            f"orphans per kill {[len(k.orphans) for k in self.kills]}, "
            f"(approvals, inbound) waiting per kill "
            f"{[(len(k.waiting_approvals), len(k.inbound)) for k in self.kills]}"
        )


def crash_rounds(tmp_path: Path, database: str | None, mode: str, rng: random.Random) -> Crashes:
    marker = f"crash-{uuid.uuid4().hex[:12]}"
    ledger, home, log = tmp_path / "ledger.txt", tmp_path / "home", tmp_path / "server.log"
    make_repo(tmp_path / "repo", {"README.md": "crash test\n"})
    port = free_port()  # the same port each time, so that the clients reconnect
    client = make_client(f"http://127.0.0.1:{port}")
    driver_client = make_client(f"http://127.0.0.1:{port}")
    book, kills, survivors = Book(), list[Kill](), list[int]()
    try:
        for number in range(ROUNDS):
            with conveyor(home, port, database, log) as process:
                if number == 0:
                    client.create_pipeline(
                        pipeline=crash_pipeline(tmp_path / "repo", ledger, marker, mode)
                    )
                    book.started.append(all_executions(client)[0]["pipelineExecutionId"])
                stop = threading.Event()
                driver = threading.Thread(
                    target=drive, args=(driver_client, book, random.Random(rng.random()), stop)
                )
                driver.start()
                try:
                    time.sleep(rng.uniform(0.3, 2.5))
                    waiting, inbound = snapshot(client)
                    at = time.time()
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                finally:
                    stop.set()
                    driver.join(30)
                orphans = group_members(marker_processes(marker))
                kills.append(Kill(at, waiting, inbound, orphans))
            # The orphans die of SIGPIPE at their next write to the dead server's pipes.
            deadline = time.monotonic() + 3
            while alive(orphans) and time.monotonic() < deadline:
                time.sleep(0.05)
            survivors += alive(orphans)
        with conveyor(home, port, database, log):
            executions = settle(client, book, timeout=40)
            actions = all_actions(client)
            summaries = {
                e["pipelineExecutionId"]: client.get_pipeline_execution(
                    pipelineName=PIPELINE, pipelineExecutionId=e["pipelineExecutionId"]
                )["pipelineExecution"].get("statusSummary", "")
                for e in executions
                if e["status"] == "Failed"
            }
            left = marker_processes(marker)
    finally:  # what an operator would do after a crash: kill what is left of the actions
        for pid in alive(survivors) + marker_processes(marker):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return Crashes(
        book,
        kills,
        survivors + left,
        executions,
        actions,
        summaries,
        read_ledger(ledger, marker),
        log.read_text(errors="replace"),
    )


def check_none_lost_none_stuck(crashes: Crashes, context: str) -> None:
    statuses = {e["pipelineExecutionId"]: e["status"] for e in crashes.executions}
    lost = set(crashes.book.started) - set(statuses)
    assert not lost, f"{context}: executions lost: {lost}"
    assert all(s in TERMINAL for s in statuses.values()), f"{context}: {statuses}"
    stuck = [a for a in crashes.actions if a["status"] == "InProgress"]
    assert not stuck, f"{context}: actions still in progress: {stuck}"
    assert "Succeeded" in statuses.values(), f"{context}: nothing got through: {statuses}"


def check_failures_say_why(crashes: Crashes, context: str) -> None:
    """Only a crash fails an action here, and the action and its execution say so."""
    for execution_id, summary in crashes.summaries.items():
        assert CRASHED in summary, f"{context}: execution {execution_id} failed: {summary!r}"
    failed = [a for a in crashes.actions if a["status"] == "Failed"]
    assert failed, f"{context}: no kill caught an action while it ran; the test tested nothing"
    for action in failed:
        error = action["output"]["executionResult"].get("errorDetails", {})
        assert CRASHED in error.get("message", ""), f"{context}: {action}"
        began, ended = action["startTime"].timestamp(), action["lastUpdateTime"].timestamp()
        during = [k for k in crashes.kills if began - 0.5 <= k.at <= ended + 0.5]
        assert during, f"{context}: failed with no kill while it ran: {action}"


def check_nothing_ran_twice(crashes: Crashes, context: str) -> None:
    """One attempt per action and execution (nothing is retried), one process per attempt,
    and every command action that succeeded ran to its end exactly once."""
    attempts = Counter(
        (a["pipelineExecutionId"], a["stageName"], a["actionName"]) for a in crashes.actions
    )
    assert max(attempts.values()) == 1, f"{context}: {attempts.most_common(3)}"
    known = {a["actionExecutionId"]: a for a in crashes.actions}
    runs: dict[str, set[str]] = defaultdict(set)
    for entry in crashes.ledger:
        action = known.get(entry.attempt)
        assert action is not None, f"{context}: the ledger names an unknown attempt: {entry}"
        where = (action["pipelineExecutionId"], action["actionName"])
        assert where == (entry.execution, entry.action), f"{context}: {entry} vs {action}"
        runs[entry.attempt].add(entry.run)
    starts = Counter((e.execution, e.action) for e in crashes.ledger if e.event == "start")
    assert max(starts.values(), default=1) == 1, f"{context}: ran twice: {starts.most_common(3)}"
    twice = {attempt: r for attempt, r in runs.items() if len(r) > 1}
    assert not twice, f"{context}: attempts run by two processes: {twice}"
    done = Counter(e.attempt for e in crashes.ledger if e.event == "done")
    for action in crashes.actions:
        if action["status"] == "Succeeded" and action["actionName"] in ACTIONS:
            assert done[action["actionExecutionId"]] == 1, f"{context}: {action}"


def check_waiting_went_on(crashes: Crashes, context: str) -> None:
    """An approval pending at a kill was answered after it; a queued execution got in."""
    statuses = {e["pipelineExecutionId"]: e["status"] for e in crashes.executions}
    known = {a["actionExecutionId"]: a for a in crashes.actions}
    stages: dict[str, set[str]] = defaultdict(set)
    for action in crashes.actions:
        stages[action["pipelineExecutionId"]].add(action["stageName"])
    for kill in crashes.kills:
        for execution_id, approval_id in kill.waiting_approvals.items():
            approval_status = known[approval_id]["status"]
            stopped = statuses[execution_id] in {"Stopped", "Cancelled"}
            went_on = approval_status == "Succeeded" or (approval_status == "Abandoned" and stopped)
            assert went_on, f"{context}: {known[approval_id]} waited at {kill}"
        for execution_id, stage_name in kill.inbound.items():
            entered = stage_name in stages[execution_id]
            left = statuses[execution_id] in {"Superseded", "Cancelled", "Stopped"}
            assert entered or left, (
                f"{context}: {execution_id} waited for {stage_name} at {kill}, ended "
                f"{statuses[execution_id]} without entering it"
            )


def check_the_promise(crashes: Crashes, context: str) -> None:
    """Every check of what the kills left: no orphan, no traceback, nothing lost, stuck or
    run twice, what waited went on, and every failure says it was a crash."""
    assert not crashes.survivors, f"{context}: action processes outlived a kill"
    assert "Traceback" not in crashes.server_log, f"{context}:\n{crashes.server_log}"
    check_none_lost_none_stuck(crashes, context)
    check_nothing_ran_twice(crashes, context)
    check_waiting_went_on(crashes, context)
    check_failures_say_why(crashes, context)


@pytest.mark.parametrize("mode", ["QUEUED", "SUPERSEDED"])
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_sigkill_at_any_moment_loses_nothing(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str, mode: str
) -> None:
    database = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    seed = f"{SEED}-{backend}-{mode}"
    crashes = crash_rounds(tmp_path, database, mode, random.Random(seed))
    context = f"seed {seed} (CONVEYOR_CRASH_SEED={SEED}); {crashes.report()}"
    print(context)
    assert not crashes.book.errors, f"{context}: {crashes.book.errors}"
    check_the_promise(crashes, context)
