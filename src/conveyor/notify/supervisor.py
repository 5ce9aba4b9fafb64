"""The server's side of the deliverer (`conveyor.notify.deliverer`): it starts the process,
wakes it when events that may make a delivery commit, adds what it reports to the server's
``/metrics``, starts it again when it ends on its own (after 1 s, 2 s, 4 s, … at most 30 s),
and stops it when the server stops.

The deliverer starts once there may be something to deliver: a rule enabled or a
notification pending (the store is looked at as the server starts, then every second, so a
rule made on any server sharing the database counts), commit statuses configured, or an
approval action started (its notice). Until then a server spends neither the process nor
its start-up (about 0.4 s of CPU, mostly imports); once started it runs until the server
stops. A rule makes notifications only of the events after its creation
(`conveyor.notify.fanout`), so a deliverer that starts late sends nothing stale.

What it costs the engine: a committing transaction looks at its events' kinds (with no rule
enabled and no commit statuses, only an approval's start wakes the deliverer) and writes a
byte to a pipe, which never blocks (a full pipe already holds a wake-up); a thread of its own
reads the deliverer's two lines a second.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

import conveyor
from conveyor.metrics import Recorder, chained
from conveyor.notify.deliverer import Setup
from conveyor.notify.fanout import calls_for_notice
from conveyor.notify.outbox import prime, worth_waking
from conveyor.store import Store

log = logging.getLogger("conveyor.notify")

RESTART_FIRST = 1.0
RESTART_MOST = 30.0
# A deliverer that ran this long before it ended is started again after RESTART_FIRST.
STEADY = 60.0
# Seconds between looks at the store for something to deliver, while no deliverer runs.
LOOK_EVERY = 1.0


class Supervisor:
    def __init__(
        self,
        setup: Setup,
        recorder: Recorder | None = None,
        statuses: bool = False,
        store: Store | None = None,
    ) -> None:
        """``statuses``: whether a connection posts commit statuses (every pipeline's and
        source's events then wake the deliverer). ``store``: where to look for something to
        deliver before the deliverer is started (None: it starts at once)."""
        self._setup = setup
        self._store = store
        self._recorder = recorder
        self._statuses = statuses
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._watcher: threading.Thread | None = None
        # As the deliverer last said (until it has: as if a rule was enabled).
        self._any_rule = True
        # Set once the running deliverer said it is ready (its first line).
        self._ready = threading.Event()
        # Set when the deliverer is to start (or the server stops before it has).
        self._wanted = threading.Event()
        if statuses or store is None:
            self._wanted.set()
        # The last failure to look at the store, told once.
        self._look_failed: str | None = None

    @property
    def pid(self) -> int | None:
        process = self._process
        return None if process is None else process.pid

    def start(self) -> None:
        """Start the deliverer now when there is something to deliver, else once there is."""
        if self._wanted.is_set() or self._something_to_deliver():
            with self._lock:
                self._process = self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="conveyor-deliverer", daemon=True)
        self._watcher.start()

    def ready(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the running deliverer to say it is ready (its
        first line: it delivers from then on); whether it did."""
        return self._ready.wait(timeout)

    def wake(self, events: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        """Events committed (a store's ``on_events``): the deliverer passes now when they may
        make a delivery (and starts, when not yet running, for an approval's notice)."""
        process = self._process
        if process is None:
            if events is None or calls_for_notice(events):
                self._wanted.set()
            return
        if events is not None and not worth_waking(events, self._statuses, self._any_rule):
            return
        if process.stdin is None:
            return
        # A full pipe holds a wake-up already; a closed one, a deliverer being started again.
        with suppress(ValueError, OSError):
            os.write(process.stdin.fileno(), b"\n")

    def stop(self) -> None:
        """Ask the deliverer to stop and wait for it (its senders within their time-out);
        one that has not said it is ready has sent nothing, and is ended at once."""
        self._stopping.set()
        self._wanted.set()  # a watcher still waiting for something to deliver ends
        with self._lock:
            process = self._process
            if process is not None and not self._ready.is_set():
                process.kill()
            if process is not None and process.stdin is not None:
                with suppress(OSError):
                    process.stdin.close()
        if process is not None:
            try:
                process.wait(self._setup.timeout + 5.0)
            except subprocess.TimeoutExpired:
                log.warning("notification delivery did not stop in time")
                process.kill()
                process.wait()
        if self._watcher is not None:
            self._watcher.join(5.0)

    def _spawn(self) -> subprocess.Popen[bytes]:
        self._ready.clear()
        environment = dict(os.environ)
        # This server's sources, wherever they are, before anything the environment adds.
        root = str(Path(conveyor.__file__).resolve().parent.parent)
        already = environment.get("PYTHONPATH")
        environment["PYTHONPATH"] = root + (os.pathsep + already if already else "")
        process = subprocess.Popen(
            [sys.executable, "-m", "conveyor.notify.deliverer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
        )
        assert process.stdin is not None
        try:
            process.stdin.write(self._setup.encoded())
            process.stdin.flush()
            os.set_blocking(process.stdin.fileno(), False)
        except OSError:
            pass  # it ended at once: the watcher says so and starts it again
        return process

    def _something_to_deliver(self) -> bool:
        """Whether the store holds an enabled rule or a pending notification."""
        if self._store is None:
            return True
        try:
            with self._store.read() as tx:
                enabled = any(rule.enabled for rule in tx.notifications.all())
                found = enabled or tx.deliveries.any_pending()
        except Exception as exc:  # the database away: look again later
            if str(exc) != self._look_failed:
                log.warning("cannot look for notifications to deliver: %s", exc)
            self._look_failed = str(exc)
            return False
        self._look_failed = None
        return found

    def _started(self) -> bool:
        """Start the deliverer once there is something to deliver, unless it runs already;
        False when the server stops first."""
        while self._process is None:
            if self._stopping.is_set():
                return False
            if self._wanted.wait(LOOK_EVERY) or self._something_to_deliver():
                with self._lock:
                    if self._stopping.is_set():
                        return False
                    self._process = self._spawn()
        return True

    def _watch(self) -> None:
        if not self._started():
            return
        delay = RESTART_FIRST
        while True:
            process = self._process
            assert process is not None and process.stdout is not None
            began = time.monotonic()
            with process.stdout:
                self._read(process.stdout)
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - began >= STEADY:
                delay = RESTART_FIRST
            log.warning(
                "notification delivery ended (status %s): starting it again in %.0f s",
                code,
                delay,
            )
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RESTART_MOST)
            with self._lock:
                if self._stopping.is_set():
                    return
                if process.stdin is not None:
                    process.stdin.close()
                self._process = self._spawn()

    def _read(self, lines: IO[bytes]) -> None:
        """Take the deliverer's reports until its output ends."""
        for line in lines:
            try:
                said = json.loads(line)
                self._ready.set()
                self._any_rule = bool(said["rules"])
                if self._recorder is not None:
                    for kind, (counts, total) in said["lag"].items():
                        self._recorder.delivery_lag.add((kind,), counts, total)
                    for kind, count in said["failed"].items():
                        self._recorder.delivery_failures.inc((kind,), count)
                    self._recorder.deliveries_held = int(said.get("held", 0))
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("notification delivery said something unexpected: %s", exc)


def start(
    store: Store, setup: Setup, recorder: Recorder | None = None, statuses: bool = False
) -> Supervisor:
    """Place the outbox's cursor when it has none (`conveyor.notify.outbox.prime`), start the
    deliverer (now, or once there is something to deliver), and wake it from the events
    ``store`` commits; `Supervisor.stop` ends it."""
    prime(store)
    supervisor = Supervisor(setup, recorder, statuses, store)
    supervisor.start()
    store.on_events = chained(store.on_events, supervisor.wake)
    return supervisor
