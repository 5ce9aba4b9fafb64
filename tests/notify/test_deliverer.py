"""Delivery in a process of the server's own: the engine's process sends nothing itself, a
deliverer that dies is started again and sends what was left, the server's ``/metrics``
counts what the deliverer delivered and failed, and a stopping server leaves no deliverer
behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from conveyor.config import Settings
from conveyor.metrics import LAG_BUCKETS, Counter, Histogram
from conveyor.notify.deliverer import Setup
from conveyor.notify.supervisor import Supervisor
from conveyor.server import Running, running
from tests.api.test_metrics import scrape, value
from tests.conftest import make_client
from tests.e2e.serverproc import free_port
from tests.e2e.test_crash import alive, conveyor
from tests.notify.receiver import receiving
from tests.notify.test_delivery import FAILED, failing_pipeline, of, rule, run_again
from tests.support.engine import wait_for

DELIVERER = b"conveyor.notify.deliverer"


def deliverers(parent: int | None = None) -> list[int]:
    """The deliverers ``parent`` (this process) started: its children running the deliverer."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            theirs = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if theirs == parent and DELIVERER in command:
            found.append(int(entry.name))
    return found


def test_a_killed_deliverer_is_started_again_and_sends_what_was_left(
    server: Running, client: Any, tmp_path: Path
) -> None:
    failing_pipeline(client, tmp_path)
    with receiving() as receiver:
        rule(server.endpoint, receiver.url, EventTypeIds=[FAILED])
        first = run_again(client)
        wait_for(lambda: of(receiver, first), what="the first notification")
        # The server's process has no sender of its own: the deliverer sent it.
        assert not [t for t in threading.enumerate() if t.name.startswith("conveyor-notify")]
        (killed,) = deliverers()
        os.kill(killed, signal.SIGKILL)
        wait_for(lambda: not [p for p in deliverers() if p == killed], what="the kill")
        second = run_again(client)  # committed while no deliverer runs
        notes = wait_for(lambda: of(receiver, second), timeout=30, what="the second one")
        assert notes[0]["detail"]["state"] == "FAILED"
        (again,) = deliverers()
        assert again != killed


def test_metrics_count_what_the_deliverer_delivered_and_failed(
    server: Running, client: Any, tmp_path: Path
) -> None:
    failing_pipeline(client, tmp_path)
    with receiving(failures=2, status=503) as receiver:
        rule(server.endpoint, receiver.url, EventTypeIds=[FAILED])
        execution = run_again(client)
        wait_for(lambda: of(receiver, execution), timeout=60, what="the notification")

        def counted() -> Any:
            _, samples = scrape(server.endpoint)
            lag = "conveyor_notification_delivery_lag_seconds_count"
            return value(samples, lag, kind="Webhook") >= 1 and samples

        samples = wait_for(counted, what="the delivery in /metrics")
    failures = value(samples, "conveyor_notification_delivery_failures_total", kind="Webhook")
    assert failures == 2


def test_a_server_starts_its_deliverer_once_there_is_something_to_deliver(
    settings: Settings, tmp_path: Path
) -> None:
    with running(settings) as server:
        failing_pipeline(make_client(server.endpoint), tmp_path)
        assert not deliverers()  # no rule, nothing pending: no process, no start-up paid
        rule(server.endpoint, "http://127.0.0.1:9/hook")
        wait_for(lambda: len(deliverers()) == 1, what="the deliverer, within a look")
    assert not deliverers()  # the stopped server leaves none


def test_a_server_started_with_a_rule_starts_its_deliverer_at_once(
    settings: Settings, tmp_path: Path
) -> None:
    with running(settings) as server:
        failing_pipeline(make_client(server.endpoint), tmp_path)
        rule(server.endpoint, "http://127.0.0.1:9/hook")
    with running(settings):
        assert len(deliverers()) == 1


def test_a_server_that_dies_takes_its_deliverer_with_it(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    port = free_port()
    with conveyor(tmp_path / "home", port, None, log) as server:
        endpoint = f"http://127.0.0.1:{port}"
        failing_pipeline(make_client(endpoint), tmp_path)
        rule(endpoint, "http://127.0.0.1:9/hook")
        (deliverer,) = wait_for(lambda: deliverers(server.pid), what="the deliverer")
        server.kill()
        server.wait()
        # Its input closed with the server: it stops as asked, without a traceback.
        wait_for(lambda: not alive([deliverer]), timeout=30, what="the deliverer's end")
    assert "Traceback" not in log.read_text()


def test_a_deliverer_stopped_before_it_is_ready_is_not_waited_for(tmp_path: Path) -> None:
    # A database that takes the connection and never answers: the deliverer never starts.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        database = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/never"
        setup = Setup(database, str(tmp_path), None, "http://127.0.0.1", "us-east-1", 2.0, 60.0)
        supervisor = Supervisor(setup)
        supervisor.start()
        wait_for(lambda: supervisor.pid in deliverers(), what="the deliverer")
        assert not supervisor.ready(0.5)
        began = time.monotonic()
        supervisor.stop()
        # Not the time-out and its grace: it had sent nothing, and was ended at once.
        assert time.monotonic() - began < setup.timeout
    assert not deliverers()


def test_a_supervisor_tells_once_its_deliverer_is_ready(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'ready.db'}"
    setup = Setup(database, str(tmp_path), None, "http://127.0.0.1", "us-east-1", 2.0, 60.0)
    supervisor = Supervisor(setup)
    assert not supervisor.ready(0.1)  # not started
    supervisor.start()
    try:
        assert supervisor.ready(30)
        assert supervisor.pid in deliverers()
    finally:
        supervisor.stop()
    assert not deliverers()


def test_counts_taken_in_one_process_add_up_in_another() -> None:
    here, there = Histogram(LAG_BUCKETS), Histogram(LAG_BUCKETS)
    for lag in (0.02, 0.02, 3.0):
        here.observe(("Webhook",), lag)
    for labels, (counts, total) in here.take().items():
        there.add(labels, counts, total)
    assert here.take() == {}  # taken: the next take starts from nothing
    (series,) = there.series()
    assert series.count == 3 and series.total == 3.04
    assert dict(series.buckets)[0.05] == 2
    counter = Counter()
    counter.inc(("SNS",), 2)
    assert counter.take() == {("SNS",): 2} and counter.take() == {}


def test_the_deliverer_starts_without_the_aws_libraries() -> None:
    # What the deliverer imports to run an outbox; boto3 only comes with a first SNS publish.
    script = (
        "import sys\n"
        "from conveyor.notify import deliverer, outbox, targets\n"
        "from conveyor.store import Store\n"
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"
