"""Engine overhead: what Conveyor adds to each action beyond the process the action runs.

A Conveyor server runs as a subprocess on a free loopback port (SQLite in a temporary home,
then PostgreSQL in a fresh schema when ``CONVEYOR_TEST_DATABASE_URL`` answers) with one
pipeline: a Git source over a small local repository, then a stage of 20 Commands actions
running ``true``, one after the other (runOrder 1..20). Every action costs the engine a full
round: queue a job, wake a worker, claim, acknowledge, unpack the source artifact, start one
bash, report, advance the execution. The execution that creating the pipeline starts is the
warm-up; a few more are then started one after the other and timed.

The cost of an action is the 20-action stage's wall time divided by 20, from the server's
timestamps (rounded to the millisecond, so within ~0.1 ms per action over the stage). The floor
is what starting bash costs, measured in this process in the same run once the servers are
gone: Conveyor should add at most 3.3 ms per action above it on SQLite and 5 ms on PostgreSQL,
or a pipeline of many small steps spends its time in bookkeeping. For attribution the table
also times the provider's own process runner and the whole Commands provider as the worker runs
it (fresh workspace, the shared unpacked copy lent and handed back, bash, workspace removed;
and, for comparison, unpacking the zip in every action as it used to), which splits the
overhead into the provider's share and the engine's. The same pipeline then runs on SQLite over
sources of 500 and 2,000 files, whose per-action cost should stay within 10 ms of the 6-file
one. Trigger-to-first-action runs from sending StartPipelineExecution to the Source action's
startTime, and should stay under 20 ms; trigger-to-first-process runs to the moment the first
step's bash started (``$EPOCHREALTIME``, read back as an output variable). An action's
startTime is when the engine started it (its job queued) and its lastUpdateTime when its result
was recorded, so worker wake-up, acknowledgement and the provider count in the action's own
duration, and a gap between actions is the engine's time from one result to the next job
queued."""

from __future__ import annotations

import http.client
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from _shapes import commands, git_source
from api import HOST, client, endpoint, free_port, subprocess_server, verdict
from conveyor.actions.base import ArtifactLocation, JobContext
from conveyor.actions.commands import Commands
from conveyor.actions.process import run_process
from conveyor.artifacts.local import LocalBuckets
from conveyor.artifacts.unpacked import Unpacked

T = TypeVar("T")
PIPELINE = "bench-engine"
ROLE = "arn:aws:iam::000000000000:role/conveyor-bench"
ACTIONS = 20  # Commands actions in the measured stage, run one after the other
EXECUTIONS = 8  # measured executions, after the warm-up one
FLOOR_RUNS = 200  # bash starts for the floor
PROVIDER_RUNS = 50  # whole Commands provider runs
# Larger sources (files in the repository): fewer executions, since each action copies them all.
LARGE_SOURCES = (500, 2000)
LARGE_EXECUTIONS = 2
LARGE_PROVIDER_RUNS = 5
POLL = 0.02  # seconds between GetPipelineExecution calls while waiting
EXECUTION_TIMEOUT = 20.0
LARGE_TIMEOUT = 600.0  # seconds for an execution over a large source on a busy machine
DATABASE_ENV = "CONVEYOR_TEST_DATABASE_URL"

# Milliseconds per action above the floor, by database: each job result is a transaction,
# and on PostgreSQL each of its round trips costs more than most statements take to run.
AIM_OVERHEAD_MS = {"sqlite": 3.3, "postgresql": 5.0}
AIM_TRIGGER_MS = 20.0
AIM_LARGE_MS = 10.0

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Conveyor Bench",
    "GIT_AUTHOR_EMAIL": "bench@conveyor.invalid",
    "GIT_COMMITTER_NAME": "Conveyor Bench",
    "GIT_COMMITTER_EMAIL": "bench@conveyor.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "PATH": os.environ.get("PATH", os.defpath),
}
FILES = {
    "README.md": "A small repository for the engine benchmark.\n",
    "Makefile": "all:\n\ttrue\n",
    "src/app.py": "print('hello')\n",
    "src/util.py": "def double(x):\n    return 2 * x\n",
    "tests/test_app.py": "def test_nothing():\n    assert True\n",
    "docs/notes.txt": "notes\n" * 50,
}


# --- the pipeline ------------------------------------------------------------------------------


def make_repo(path: Path, files: int = len(FILES)) -> None:
    """A git repository on branch main with one commit: the handful of ``FILES``, then more
    small files in 20 folders up to ``files``."""
    path.mkdir(parents=True)
    contents = dict(FILES)
    for index in range(files - len(FILES)):
        contents[f"pkg{index % 20:02d}/module{index:04d}.py"] = f"VALUE = {index}\n" * 20
    for name, content in contents.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "first"]):
        subprocess.run(["git", *args], cwd=path, env=GIT_ENV, check=True, capture_output=True)


def declaration(repo: Path) -> dict[str, Any]:
    """Git source, then ``ACTIONS`` Commands actions in sequence over the source artifact."""
    steps = [
        commands(f"Step{order:02d}", "true", run_order=order) for order in range(1, ACTIONS + 1)
    ]
    # The first step tells when its process started (bash's clock, no extra process).
    steps[0]["commands"] = ["STARTED=$EPOCHREALTIME"]
    steps[0]["outputVariables"] = ["STARTED"]
    return {
        "name": PIPELINE,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [git_source(str(repo))]},
            {"name": "Steps", "actions": steps},
        ],
    }


# --- one execution -----------------------------------------------------------------------------


def _epoch(value: datetime) -> float:
    return value.timestamp()


@dataclass(frozen=True)
class Execution:
    """One execution's timings in milliseconds, from server timestamps unless said otherwise."""

    call_ms: float  # StartPipelineExecution round trip (client clock)
    call_server_ms: float  # the server's own time for it (its Server-Timing header)
    client_ms: float  # from the call to seeing Succeeded (client clock, POLL granularity)
    total_ms: float  # execution startTime to lastUpdateTime
    trigger_ms: float  # execution startTime to the Source action's startTime
    trigger_client_ms: float  # the call being sent (client clock) to the Source's startTime
    first_process_ms: float  # the call being sent to the first step's bash starting (its clock)
    source_ms: float  # the Source action's own duration
    stage_ms: float  # the Source action's end to the last Commands action's end
    busy_ms: float  # the Commands actions' own durations, summed
    gaps_ms: list[float]  # each Commands action's start minus the previous action's end

    @property
    def per_action_ms(self) -> float:
        return self.stage_ms / ACTIONS


def wait_done(cp: Any, execution_id: str, timeout: float = EXECUTION_TIMEOUT) -> dict[str, Any]:
    """The execution once it has succeeded (anything else ends the benchmark)."""
    deadline = time.monotonic() + timeout
    while True:
        found = cp.get_pipeline_execution(pipelineName=PIPELINE, pipelineExecutionId=execution_id)
        execution: dict[str, Any] = found["pipelineExecution"]
        if execution["status"] == "Succeeded":
            return execution
        if execution["status"] != "InProgress":
            raise RuntimeError(f"execution {execution_id} ended {execution['status']}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"execution {execution_id} still running after the time limit")
        time.sleep(POLL)


def summary_of(cp: Any, execution_id: str) -> dict[str, Any]:
    """The execution's summary from ListPipelineExecutions: it has the start and end times."""
    for page in cp.get_paginator("list_pipeline_executions").paginate(pipelineName=PIPELINE):
        for summary in page["pipelineExecutionSummaries"]:
            if summary["pipelineExecutionId"] == execution_id:
                return dict(summary)
    raise RuntimeError(f"execution {execution_id} is not listed")


def action_details(cp: Any, execution_id: str) -> list[dict[str, Any]]:
    """The execution's action executions, Source first, then the steps in order."""
    details: list[dict[str, Any]] = []
    pages = cp.get_paginator("list_action_executions").paginate(
        pipelineName=PIPELINE, filter={"pipelineExecutionId": execution_id}
    )
    for page in pages:
        details += page["actionExecutionDetails"]
    if len(details) != ACTIONS + 1:
        raise RuntimeError(f"execution {execution_id} has {len(details)} action executions")
    return sorted(details, key=lambda d: (d["stageName"] != "Source", d["actionName"]))


def run_once(cp: Any, timeout: float) -> Execution:
    """Start an execution, wait for it to succeed, and read its timings back."""
    sent_epoch, sent = time.time(), time.perf_counter()
    response = cp.start_pipeline_execution(name=PIPELINE)
    returned = time.perf_counter()
    execution_id = response["pipelineExecutionId"]
    timing = response["ResponseMetadata"]["HTTPHeaders"].get("server-timing", "")
    wait_done(cp, execution_id, timeout)
    seen = time.perf_counter()
    summary = summary_of(cp, execution_id)
    started, ended = _epoch(summary["startTime"]), _epoch(summary["lastUpdateTime"])
    details = action_details(cp, execution_id)
    spans = [(_epoch(d["startTime"]), _epoch(d["lastUpdateTime"])) for d in details]
    first = float(details[1]["output"]["outputVariables"]["STARTED"])
    (source_start, source_end), steps = spans[0], spans[1:]
    previous_ends = [source_end] + [end for _, end in steps[:-1]]
    return Execution(
        call_ms=(returned - sent) * 1000,
        call_server_ms=float(timing.partition("dur=")[2] or "nan"),
        client_ms=(seen - sent) * 1000,
        total_ms=(ended - started) * 1000,
        trigger_ms=(source_start - started) * 1000,
        trigger_client_ms=(source_start - sent_epoch) * 1000,
        first_process_ms=(first - sent_epoch) * 1000,
        source_ms=(source_end - source_start) * 1000,
        stage_ms=(steps[-1][1] - source_end) * 1000,
        busy_ms=sum(end - start for start, end in steps) * 1000,
        gaps_ms=[
            (start - end) * 1000 for (start, _), end in zip(steps, previous_ends, strict=True)
        ],
    )


@dataclass(frozen=True)
class Backend:
    name: str
    files: int  # in the source repository
    executions: list[Execution]

    def median(self, value: Callable[[Execution], float]) -> float:
        return statistics.median(value(e) for e in self.executions)


def conveyor_server(home: Path, database: str | None) -> AbstractContextManager[int]:
    """The server as a subprocess, as ``conveyor server`` runs it; yields its port."""
    port = free_port()
    args = [sys.executable, "-m", "conveyor", "server", "--host", HOST, "--port", str(port)]
    args += ["--home", str(home)]
    if database:
        args += ["--database", database]
    return subprocess_server("conveyor", args, port, home / "server.log", _healthy)


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def measure(
    name: str, folder: Path, repo: Path, database: str | None, files: int, runs: int
) -> tuple[Backend, Path]:
    """Warm up, then time ``runs`` executions; also a copy of the source artifact."""
    home = folder / f"home-{name.replace('/', '-')}"
    home.mkdir()
    with conveyor_server(home, database) as port:
        cp = client("codepipeline", endpoint(port))
        cp.create_pipeline(pipeline=declaration(repo))
        summaries = cp.list_pipeline_executions(pipelineName=PIPELINE)
        warmup = summaries["pipelineExecutionSummaries"][0]["pipelineExecutionId"]
        timeout = EXECUTION_TIMEOUT if files == len(FILES) else LARGE_TIMEOUT
        wait_done(cp, warmup, timeout)
        executions = [run_once(cp, timeout) for _ in range(runs)]
        source = action_details(cp, warmup)[0]
        location = source["output"]["outputArtifacts"][0]["s3location"]
        artifact = folder / f"source-{files}-{name.replace('/', '-')}.zip"
        shutil.copyfile(home / "buckets" / location["bucket"] / location["key"], artifact)
    return Backend(name, files, executions), artifact


# --- the floor ---------------------------------------------------------------------------------


def _median_ms(runs: int, once: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        once()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


@dataclass(frozen=True)
class Floor:
    bash_ms: float  # subprocess.run(["bash", "-c", "true"])
    process_ms: float  # the provider's run_process over bash --noprofile --norc -c true
    # Source files → the Commands provider as the worker runs it, workspace made and removed:
    provider_ms: dict[int, float]  # with the server's shared unpacked copy (as it runs now)
    unpacking_ms: dict[int, float]  # unpacking the zip in every action (as it ran before)


def floor(folder: Path, artifacts: dict[int, Path]) -> Floor:
    """The cost of the action itself, outside Conveyor's engine, timed in this process."""
    bash = shutil.which("bash") or "/bin/bash"
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    bash_ms = _median_ms(FLOOR_RUNS, lambda: subprocess.run(["bash", "-c", "true"], check=True))
    work = folder / "floor"
    work.mkdir()
    argv = [bash, "--noprofile", "--norc", "-c", "true"]
    process_ms = _median_ms(
        FLOOR_RUNS,
        lambda: run_process(
            argv, cwd=work, env=env, log=io.StringIO(), cancelled=threading.Event()
        ),
    )
    buckets = LocalBuckets(folder / "buckets")
    shared, unpacking = {}, {}
    for files, artifact in artifacts.items():
        buckets.put("artifacts", f"source-{files}.zip", artifact)
        runs = PROVIDER_RUNS if files == len(FILES) else LARGE_PROVIDER_RUNS
        cached = Commands(unpacked=Unpacked(folder / "unpacked"))
        shared[files] = _median_ms(runs, partial(_provide, cached, work, buckets, files))
        plain = Commands()
        unpacking[files] = _median_ms(runs, partial(_provide, plain, work, buckets, files))
    return Floor(bash_ms, process_ms, shared, unpacking)


def _provide(provider: Commands, work: Path, buckets: LocalBuckets, files: int) -> None:
    workspace = work / uuid.uuid4().hex
    workspace.mkdir()
    with open(work / "provider.log", "a", encoding="utf-8") as log:
        context = _context(workspace, buckets, log, f"source-{files}.zip")
        result = provider.run(context)
    for hand_back in context.when_done:  # as the worker does once the action is over
        hand_back()
    shutil.rmtree(workspace, ignore_errors=True)  # the handed-back copy may have been it
    if not result.succeeded:
        raise RuntimeError(f"the Commands provider failed: {result.message}")


def _context(workspace: Path, buckets: LocalBuckets, log: Any, key: str) -> JobContext:
    """What the worker hands the provider for one of the benchmark's steps."""
    return JobContext(
        job_id=str(uuid.uuid4()),
        pipeline_name=PIPELINE,
        pipeline_execution_id=str(uuid.uuid4()),
        stage_name="Steps",
        action_name="Step01",
        action_execution_id=str(uuid.uuid4()),
        configuration={},
        input_artifacts=(ArtifactLocation("Src", "artifacts", key, "0" * 40),),
        output_artifacts=(),
        artifacts=buckets,
        workspace=workspace,
        log=log,
        cancelled=threading.Event(),
        commands=("true",),
    )


# --- PostgreSQL --------------------------------------------------------------------------------


@contextmanager
def postgres_schema(url: str) -> Iterator[str | None]:
    """A URL whose connections see only a fresh schema, dropped afterwards; None if the
    database does not answer."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error as exc:
        print(f"PostgreSQL at ${DATABASE_ENV} does not answer, skipped: {exc}".strip())
        yield None
        return
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def on_each_database(measure: Callable[[str], T], file: str) -> dict[str, T]:
    """``measure`` run on SQLite (``file`` in a temporary folder), then on PostgreSQL in a
    schema of its own when ``$CONVEYOR_TEST_DATABASE_URL`` answers; by database."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as name:
        results["sqlite"] = measure(f"sqlite:///{Path(name) / file}")
    url = os.environ.get(DATABASE_ENV)
    if url:
        with postgres_schema(url) as database:
            if database is not None:
                results["postgresql"] = measure(database)
    return results


# --- reporting ---------------------------------------------------------------------------------


def report(backends: list[Backend], measured: Floor) -> None:
    base = measured.bash_ms
    print(
        f"{ACTIONS} Commands actions in sequence after a Git source; medians of {EXECUTIONS} "
        f"executions after a warm-up ({LARGE_EXECUTIONS} for the sources of "
        f"{' and '.join(map(str, LARGE_SOURCES))} files)"
    )
    print(
        f"floor, median of {FLOOR_RUNS}: bash -c true {base:.3f} ms; the provider's run_process "
        f"{measured.process_ms:.3f} ms"
    )
    for files in sorted(measured.provider_ms):
        print(
            f"  whole Commands provider, {files} files: {measured.provider_ms[files]:.3f} ms "
            f"with the shared unpacked copy, {measured.unpacking_ms[files]:.3f} ms unpacking "
            "the zip itself"
        )

    def provider(b: Backend) -> float:
        return measured.provider_ms[b.files]

    rows: list[tuple[str, Callable[[Backend], float], str]] = [
        ("per action", lambda b: b.median(lambda e: e.per_action_ms), "stage wall time / 20"),
        ("  action itself", lambda b: b.median(lambda e: e.busy_ms / ACTIONS), "mean duration"),
        ("  gap before it", lambda b: b.median(lambda e: sum(e.gaps_ms) / ACTIONS), "mean"),
        ("  gap, max", lambda b: b.median(lambda e: max(e.gaps_ms)), "result → next start"),
        ("overhead", lambda b: b.median(lambda e: e.per_action_ms) - base, "per action - floor"),
        ("  provider's part", lambda b: provider(b) - base, "Commands provider - floor"),
        (
            "  engine's part",
            lambda b: b.median(lambda e: e.per_action_ms) - provider(b),
            "per action - provider",
        ),
        ("trigger→1st process", lambda b: b.median(lambda e: e.first_process_ms), "Step01's bash"),
        ("trigger→1st action", lambda b: b.median(lambda e: e.trigger_client_ms), "call sent"),
        ("  server side", lambda b: b.median(lambda e: e.trigger_ms), "execution start"),
        ("StartPipelineExec.", lambda b: b.median(lambda e: e.call_ms), "round trip"),
        ("  in the server", lambda b: b.median(lambda e: e.call_server_ms), "Server-Timing"),
        ("Source action", lambda b: b.median(lambda e: e.source_ms), "duration"),
        ("execution", lambda b: b.median(lambda e: e.total_ms), "server start → end"),
        (
            "  seen by client",
            lambda b: b.median(lambda e: e.client_ms),
            f"poll {POLL * 1000:.0f} ms",
        ),
    ]
    print(f"{'ms':<20}" + "".join(f"{b.name:>14}" for b in backends))
    for label, value, note in rows:
        print(f"{label:<20}" + "".join(f"{value(b):>14.3f}" for b in backends) + f"   {note}")
    overheads = ", ".join(f"{ms} ms on {name}" for name, ms in AIM_OVERHEAD_MS.items())
    print(
        f"aims: per action above the floor \u2264 {overheads}, "
        f"trigger-to-first-action < {AIM_TRIGGER_MS:.0f} ms, per action with "
        f"{max(LARGE_SOURCES)} files within {AIM_LARGE_MS:.0f} ms of {len(FILES)} files"
    )
    small = {b.name: b for b in backends if b.files == len(FILES)}
    for b in backends:
        overhead = b.median(lambda e: e.per_action_ms) - base
        if b.files != len(FILES):
            extra = b.median(lambda e: e.per_action_ms) - small["sqlite"].median(
                lambda e: e.per_action_ms
            )
            print(
                f"  {verdict(extra <= AIM_LARGE_MS)}  {b.name}: {extra:.3f} ms per action "
                f"more than with {len(FILES)} files"
            )
            continue
        trigger = b.median(lambda e: e.trigger_client_ms)
        print(
            f"  {verdict(overhead <= AIM_OVERHEAD_MS[b.name])}  {b.name}: {overhead:.3f} ms "
            "per action above the floor"
        )
        print(
            f"  {verdict(trigger < AIM_TRIGGER_MS)}  {b.name}: trigger-to-first-action "
            f"{trigger:.3f} ms"
        )


def main() -> None:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="conveyor-bench-")))
        repo = folder / "repo"
        make_repo(repo)
        backends = []
        sqlite, artifact = measure("sqlite", folder, repo, None, len(FILES), EXECUTIONS)
        backends.append(sqlite)
        artifacts = {len(FILES): artifact}
        url = os.environ.get(DATABASE_ENV)
        if url:
            database = stack.enter_context(postgres_schema(url))
            if database is not None:
                postgresql, _ = measure(
                    "postgresql", folder, repo, database, len(FILES), EXECUTIONS
                )
                backends.append(postgresql)
        else:
            print(f"${DATABASE_ENV} is not set: PostgreSQL skipped")
        for files in LARGE_SOURCES:
            large = folder / f"repo-{files}"
            make_repo(large, files)
            backend, artifacts[files] = measure(
                f"sqlite/{files}", folder, large, None, files, LARGE_EXECUTIONS
            )
            backends.append(backend)
        measured = floor(folder, artifacts)
    report(backends, measured)


if __name__ == "__main__":
    main()
