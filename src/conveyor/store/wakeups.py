"""Wake-ups across servers on one PostgreSQL database: LISTEN/NOTIFY on one channel per
schema (notifications reach the whole database, and servers of other schemas are not ours).

A server that queues jobs tells the others, so that an idle worker of any server (in-process,
or a remote worker's long poll) takes a job within milliseconds rather than at the next
sweep. The committing thread only hands a count to a queue; a sender thread of its own
sends one ``NOTIFY`` for whatever piled up (payload ``<instance>:<count>``), and a listener
thread, on a connection of its own in autocommit, wakes this server's workers for the
notifications of other instances (its own workers were woken in-process already). Jobs
cancelled (an execution stopped, an action abandoned) travel the same way (payload
``<instance>:cancel:<job id>,...``), so that the server whose worker runs one stops it at
once; a cancellation lost meanwhile reaches the worker at its next lease renewal.

Either connection may drop (the database restarting, an outage): each thread reconnects with
back-off and never ends before `stop`. A wake-up lost meanwhile only delays work until the
sweep, which wakes every server's workers while jobs wait; a listener that reconnects wakes
its workers at once, for whatever it may have missed.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("conveyor.wakeups")
CHANNEL = "conveyor_jobs"
# How long the listener waits for notifications before looking whether it must stop.
LISTEN_TICK = 0.5
MAX_PAUSE = 5.0
CANCEL = "cancel:"
# The most job ids one notification carries (a payload takes at most 8000 bytes).
IDS_PER_NOTE = 150


def channel_of(schema: str) -> str:
    """The channel of the servers whose tables are in ``schema``: a name PostgreSQL keeps
    whole (at most 63 bytes)."""
    named = f"{CHANNEL}.{schema}"
    if len(named.encode()) <= 63:
        return named
    return f"{CHANNEL}.{hashlib.sha256(schema.encode()).hexdigest()[:32]}"


def conninfo(url: sa.URL) -> str:
    """A libpq URL for psycopg from the store engine's SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class CrossWakeups:
    """``on_jobs(count)`` is called when another server queued ``count`` jobs, and with
    None when notifications may have been missed (wake every idle worker);
    ``on_cancelled(job_ids)`` when another server cancelled jobs."""

    def __init__(
        self,
        url: sa.URL,
        on_jobs: Callable[[int | None], None],
        on_cancelled: Callable[[list[str]], None] | None = None,
    ) -> None:
        self._conninfo = conninfo(url)
        self._channel = ""  # known once a connection tells the schema
        self._on_jobs = on_jobs
        self._on_cancelled = on_cancelled
        self.instance = secrets.token_hex(6)
        # Counts of jobs queued, tuples of job ids cancelled; None: stop.
        self._pending: queue.SimpleQueue[int | tuple[str, ...] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Set once the listener listens (tests and benchmarks wait for it).
        self.listening = threading.Event()

    def start(self) -> None:
        for target, name in ((self._listen, "listener"), (self._send, "sender")):
            thread = threading.Thread(target=target, name=f"conveyor-wakeup-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def queued(self, count: int) -> None:
        """Tell the other servers, soon, that ``count`` jobs were queued (never blocks)."""
        if count > 0:
            self._pending.put(count)

    def cancelled(self, job_ids: list[str]) -> None:
        """Tell the other servers, soon, that these jobs were cancelled (never blocks)."""
        if job_ids:
            self._pending.put(tuple(job_ids))

    def stop(self) -> None:
        self._stop.set()
        self._pending.put(None)
        self._wake_listener()
        for thread in self._threads:
            thread.join(5)

    def _wake_listener(self) -> None:
        """End the listener's wait for notifications now, not after up to `LISTEN_TICK`: with
        one of this instance's own, which it ignores as it ignores all of them (and which other
        servers ignore, counting no job)."""
        if not self.listening.is_set():
            return
        try:
            with self._open("stopper") as conn:
                conn.execute("SELECT pg_notify(%s, %s)", (self._channel, f"{self.instance}:0"))
        except Exception as exc:  # the database away: the listener ends at its next tick
            log.debug("cannot wake the listener to stop it: %s", exc)

    def application_name(self, role: str) -> str:
        """What ``pg_stat_activity`` shows for this instance's ``role`` connection."""
        return f"conveyor-{role}-{self.instance}"

    def _open(self, role: str) -> psycopg.Connection[tuple[Any, ...]]:
        import psycopg  # here: only servers on PostgreSQL need it

        conn = psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=5,
            application_name=self.application_name(role),
        )
        if not self._channel:
            try:
                found = conn.execute("SELECT current_schema()").fetchone()
            except BaseException:
                conn.close()
                raise
            self._channel = channel_of(str(found[0]) if found and found[0] else "public")
        return conn

    def _send(self) -> None:

        conn: psycopg.Connection[tuple[Any, ...]] | None = None
        pause = 0.1
        total, cancelled = 0, list[str]()
        while not self._stop.is_set():
            more: int | tuple[str, ...] | None = self._pending.get()
            while True:  # whatever piled up goes in as few notifications as it can
                if isinstance(more, tuple):
                    cancelled += more
                elif more:
                    total += more
                try:
                    more = self._pending.get_nowait()
                except queue.Empty:
                    break
            if not (total or cancelled) or self._stop.is_set():
                continue
            try:
                if conn is None or conn.closed:
                    conn = self._open("sender")
                for payload in self._payloads(total, cancelled):
                    conn.execute("SELECT pg_notify(%s, %s)", (self._channel, payload))
                total, cancelled, pause = 0, [], 0.1
            except Exception as exc:  # the database away, typically: never end the thread
                log.warning("cannot tell the other servers of new jobs: %s", exc)
                # Jobs queued meanwhile are found by the sweep; cancellations at the renewal.
                total, cancelled = 0, []
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(pause)
                pause = min(pause * 2, MAX_PAUSE)
        if conn is not None:
            conn.close()

    def _payloads(self, total: int, cancelled: list[str]) -> list[str]:
        payloads = [f"{self.instance}:{total}"] if total else []
        for start in range(0, len(cancelled), IDS_PER_NOTE):
            ids = ",".join(cancelled[start : start + IDS_PER_NOTE])
            payloads.append(f"{self.instance}:{CANCEL}{ids}")
        return payloads

    def _listen(self) -> None:
        from psycopg import sql  # here: only servers on PostgreSQL need it

        pause, first = 0.1, True
        while not self._stop.is_set():
            try:
                with self._open("listener") as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self.listening.set()
                    if not first:
                        self._on_jobs(None)  # what was queued while away
                    first, pause = False, 0.1
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=LISTEN_TICK):
                            self._heard(note.payload)
                            if self._stop.is_set():
                                break
            except Exception as exc:  # the database away, typically: never end the thread
                self.listening.clear()
                if not self._stop.is_set():
                    log.warning("not listening for other servers' jobs: %s; retrying", exc)
                self._stop.wait(pause)
                pause = min(pause * 2, MAX_PAUSE)

    def _heard(self, payload: str) -> None:
        instance, _, count = payload.partition(":")
        if instance == self.instance:
            return
        if count.startswith(CANCEL):
            if self._on_cancelled is not None:
                self._on_cancelled([i for i in count.removeprefix(CANCEL).split(",") if i])
            return
        try:
            jobs = int(count)
        except ValueError:
            self._on_jobs(None)
            return
        if jobs > 0:  # none: a listener being stopped
            self._on_jobs(jobs)
