"""Notification delivery under load: executions write about 1,000 events a second while one
notification rule sends every CodePipeline event type to 10 webhook targets.

The engine runs in this process on a store (SQLite in a temporary folder, then PostgreSQL in a
fresh schema when ``CONVEYOR_TEST_DATABASE_URL`` answers), with the hot path benchmark's
pipeline (a source, then 20 Commands actions). This process plays the worker: it claims each
job and reports it succeeded, paced so that the events its results write come at the rate
aimed at. Each report is timed: the per-action overhead, measured with delivery stopped and
then running (the deliverer, a process of its own, started as a server starts it), in the
same run (the run with delivery on comes between two runs without it, so drift of the
machine's load shows). The timed run starts once the deliverer says it is ready: its start-up
(imports and the store's connection, about half a second, once in a server's life) is
printed apart, not counted in the lags. Ten local receivers (keep-alive HTTP servers, in a
process of their own) take the notifications; a notification's delivery lag is from its
event's commit to its arrival.

Other work on the machine moves the figures: compare those of one run only.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _shapes import commands, git_source
from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import Scope
from conveyor.engine.services import Limits, Services
from conveyor.notify import supervisor
from conveyor.notify.catalog import EVENT_TYPES
from conveyor.notify.deliverer import Setup
from conveyor.notify.rules import NotificationRuleService
from conveyor.store import Store
from engine import on_each_database

STEPS = 20
RATE = 1000.0  # events a second, aimed at
SECONDS = 4.0  # of events written with delivery on
OFF_RESULTS = 300  # job results timed in each run with delivery off
TARGETS = 10
DRAIN_TIMEOUT = 120.0
AIM_LAG_P99 = 1.0
TYPES = [ActionTypeId("Compute", "AWS", "Commands", "1"), ActionTypeId("Source", "AWS", "Git", "1")]
SCOPE = Scope("us-east-1", "000000000000")
PIPELINE_ARN = "arn:aws:codepipeline:us-east-1:000000000000:hot"


def _declaration() -> dict[str, Any]:
    steps = [commands(f"Step{n:02d}", "true", run_order=n) for n in range(1, STEPS + 1)]
    return {
        "name": "hot",
        "roleArn": "arn:aws:iam::000000000000:role/conveyor-bench",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [git_source("/nonexistent/repo.git")]},
            {"name": "Steps", "actions": steps},
        ],
    }


# The receivers, in a process of their own so that their work is not counted as the
# engine's: ten keep-alive HTTP servers that note when each notification arrived, print their
# ports, and print what they noted once their input closes. They read requests with asyncio
# and the least parsing (a request line, headers with a Content-Length, a body): on a machine
# of two cores, receivers as costly as http.server's take the engine's CPU at thousands of
# requests a second, and the figures would be theirs.
RECEIVERS = r"""
import asyncio, json, sys, time
noted = []
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
class Hook(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            noted.append((time.time(), body))
            self.transport.write(OK)
async def main(count):
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(Hook, "127.0.0.1", 0) for _ in range(count)]
    print(" ".join(str(s.sockets[0].getsockname()[1]) for s in servers), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
asyncio.run(main(int(sys.argv[1])))
for at, body in noted:
    note = json.loads(body)
    d = note["detail"]
    fields = ("execution-id", "stage", "action", "state")
    key = [note["detailType"], *(d.get(f) for f in fields)]
    print(json.dumps([at, key]))
"""


def _key(detail_type: str, detail: dict[str, Any]) -> tuple[str, ...]:
    return (
        detail_type,
        str(detail.get("execution-id")),
        str(detail.get("stage")),
        str(detail.get("action")),
        str(detail.get("state")),
    )


class Lags:
    """When each event committed; the delivery lags once the receivers tell arrivals."""

    def __init__(self) -> None:
        self.committed: dict[tuple[str, ...], float] = {}
        self.events = 0

    def on_events(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        now = time.time()
        for detail_type, body in events:
            self.committed[_key(detail_type, body["detail"])] = now
        self.events += len(events)

    def of(self, noted: list[tuple[float, list[Any]]]) -> list[float]:
        found = []
        for at, key in noted:
            committed = self.committed.get(tuple(str(k) for k in key))
            if committed is not None:
                found.append(at - committed)
        return found


@contextmanager
def receivers(count: int) -> Iterator[tuple[list[str], list[tuple[float, list[Any]]]]]:
    """The receivers' URLs, and what they noted (filled in once the block ends)."""
    process = subprocess.Popen(
        [sys.executable, "-c", RECEIVERS, str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    noted: list[tuple[float, list[Any]]] = []
    try:
        assert process.stdout is not None and process.stdin is not None
        ports = process.stdout.readline().split()
        yield [f"http://127.0.0.1:{port}/hook" for port in ports], noted
        out, _ = process.communicate("", timeout=60)
        noted.extend((float(at), key) for at, key in map(json.loads, out.splitlines()))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _drained(store: Store) -> bool:
    with store.read() as tx:
        caught_up = tx.deliveries.cursor() == tx.events.last_seq()
        return caught_up and not tx.deliveries.counts().get("PENDING", 0)


class Worker:
    """This process as the worker: it reports job results, paced at ``RATE`` events a
    second, starting an execution when the last one is over."""

    def __init__(self, services: Services, lags: Lags) -> None:
        self._services = services
        self._lags = lags
        self._job: Any = None

    def results(self, *, seconds: float | None = None, count: int = 0) -> list[tuple[float, float]]:
        """Report results for ``seconds`` (or ``count`` of them); each one's time in ms, and
        the CPU its thread spent on it in ms."""
        times: list[tuple[float, float]] = []
        began = time.perf_counter()
        first = self._lags.events
        while True:
            elapsed = time.perf_counter() - began
            if elapsed >= seconds if seconds is not None else len(times) >= count:
                return times
            if self._job is None:
                self._services.executions.start(
                    "hot", trigger_type="StartPipelineExecution", trigger_detail=None
                )
                self._job = self._services.jobs.claim(TYPES, owner="bench")
                continue
            ahead = (self._lags.events - first) / RATE - elapsed
            if ahead > 0:
                time.sleep(ahead)
            started, cpu = time.perf_counter(), time.thread_time()
            self._job = self._services.jobs.succeed(self._job.id, next_for=(TYPES, "bench"))
            wall = (time.perf_counter() - started) * 1000
            times.append((wall, (time.thread_time() - cpu) * 1000))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _cpu_of(pid: int | None) -> float:
    """A process's CPU seconds so far (user and system), as Linux tells them."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _medians(name: str, results: list[tuple[float, float]]) -> dict[str, float]:
    return {
        f"{name}_ms": statistics.median(wall for wall, _ in results),
        f"{name}_cpu_ms": statistics.median(cpu for _, cpu in results),
    }


def measure(url: str) -> dict[str, float]:
    store = Store.open(url)
    lags = Lags()
    try:
        services = Services.build(store, SCOPE, Limits(), runnable=frozenset(TYPES))
        logged = store.on_events

        def both(events: list[tuple[str, dict[str, Any]]]) -> None:
            if logged is not None:
                logged(events)
            lags.on_events(events)

        store.on_events = both
        services.pipelines.create(_declaration(), [])
        worker = Worker(services, lags)
        worker.results(count=2 * (STEPS + 1))  # warm the caches
        off = worker.results(count=OFF_RESULTS)
        with receivers(TARGETS) as (urls, noted), tempfile.TemporaryDirectory() as home:
            rules = NotificationRuleService(store, SCOPE, services.clock)
            rules.create(
                {
                    "Name": "everything",
                    "Resource": PIPELINE_ARN,
                    "EventTypeIds": [t.id for t in EVENT_TYPES],
                    "Targets": [{"TargetType": "Webhook", "TargetAddress": u} for u in urls],
                    "DetailType": "FULL",
                },
                "bench",
            )
            setup = Setup(url, home, None, "http://127.0.0.1", "us-east-1", 10.0, 3600.0)
            began = time.perf_counter()
            deliverer = supervisor.start(store, setup)
            try:
                if not deliverer.ready(DRAIN_TIMEOUT):
                    raise RuntimeError("the deliverer did not start")
                start_up = time.perf_counter() - began
                events_before = lags.events
                written = time.perf_counter()
                cpu, engine_cpu = time.process_time(), time.thread_time()
                apart = _cpu_of(deliverer.pid)
                on = worker.results(seconds=SECONDS)
                rate = (lags.events - events_before) / (time.perf_counter() - written)
                expected = (lags.events - events_before) * TARGETS
                deadline = time.monotonic() + DRAIN_TIMEOUT
                while not _drained(store) and time.monotonic() < deadline:
                    time.sleep(0.05)
                # What the deliverer spent, and this process beside the engine's thread (this
                # one, which only waits once its results are in): delivery's CPU.
                delivery_cpu = time.process_time() - cpu - (time.thread_time() - engine_cpu)
                delivery_cpu += _cpu_of(deliverer.pid) - apart
            finally:
                deliverer.stop()
        delays = lags.of(noted)
        off_again = worker.results(count=OFF_RESULTS)
    finally:
        store.close()
    return {
        **_medians("off", off),
        **_medians("on", on),
        **_medians("off_again", off_again),
        "rate": rate,
        "start_s": start_up,
        "expected": expected,
        "delivered": len(delays),
        "lag_p50": _percentile(delays, 0.5) if delays else float("nan"),
        "lag_p99": _percentile(delays, 0.99) if delays else float("nan"),
        "cpu_us": delivery_cpu / max(len(delays), 1) * 1e6,
    }


def main() -> None:
    results = on_each_database(measure, "notify.db")
    print(
        f"notification delivery: events written by executions for {SECONDS:.0f} s, paced at "
        f"{RATE:.0f}/s at most (events/s: what the engine reached), every event type to "
        f"{TARGETS} webhook targets"
    )
    print(
        f"{'':<12}{'events/s':>9}{'delivered':>16}{'lag p50 s':>11}{'lag p99 s':>11}"
        f"{'start s':>9}{'action ms off':>15}{'on':>8}{'off again':>11}{'its CPU ms off':>16}"
        f"{'on':>7}{'off again':>11}{'delivery CPU us':>17}"
    )
    for name, r in results.items():
        shown = f"{r['delivered']:.0f}/{r['expected']:.0f}"
        print(
            f"{name:<12}{r['rate']:>9.0f}{shown:>16}{r['lag_p50']:>11.3f}{r['lag_p99']:>11.3f}"
            f"{r['start_s']:>9.2f}{r['off_ms']:>15.3f}{r['on_ms']:>8.3f}{r['off_again_ms']:>11.3f}"
            f"{r['off_cpu_ms']:>16.3f}{r['on_cpu_ms']:>7.3f}{r['off_again_cpu_ms']:>11.3f}"
            f"{r['cpu_us']:>17.0f}"
        )
    print(
        f"(aim: lag p99 <= {AIM_LAG_P99:.0f} s; the per-action overhead, a job result's median, "
        "the same within noise with delivery on as off; the floor is the run without delivery;"
        " start: the deliverer's, until it said it is ready, before the lags' run;"
        " its CPU: the engine thread's for that result, which tells the engine's own work from"
        " the wait for a core, and on PostgreSQL for the server's processes, that delivery"
        " shares; delivery CPU: the deliverer's, and this process's beside the engine's"
        " thread, per notification)"
    )


if __name__ == "__main__":
    main()
