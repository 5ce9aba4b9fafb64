"""Delivering notifications: at least once, in order per pipeline and target, never in the
engine's way.

One thread in each server's deliverer, a process of the server's own
(`conveyor.notify.deliverer`), and on one server only (a PostgreSQL advisory lock of its own,
as change detection holds one). A pass comes when events commit (at most every 100 ms) and every
half second anyway; each pass

1. reads the events after the outbox's cursor, in a read transaction, with the bodies only of
   those that may make a delivery (pipelines with rules, approval actions, and with commit
   statuses on, pipelines' and sources' events), and makes the deliveries each makes
   (`conveyor.notify.fanout`: notifications, approval notices, commit statuses). They go to
   the senders in memory (`conveyor.notify.fresh`); only those joining a queue with rows kept
   are written, with the cursor, in one short write. Otherwise the cursor moves in memory and
   is written at most every second (and when the outbox stops), up to the first event with a
   notification still in memory: a restart reads again what is after it, and makes that
   again; a server with no rules costs the engine's database no write. An event
   whose sequence number leaves a gap behind it waits a few seconds for the transaction
   still writing the missing one; a gap older than that was rolled back.
2. keeps in the store the queues in memory that failed or fell behind, records in one write
   the kept notifications delivered since the last pass, then hands the due kept ones,
   grouped by pipeline and target, to a small pool of senders
   (`conveyor.notify.senders`): a group is sent in order, and stops at its first failure; a
   target that hangs holds up only itself.

The work shares the machine with the engine, so it is kept small: a notification's JSON is
made once for all the targets of its rule and sent as kept, a POST is one write on a kept
connection, and the store sees a few statements a pass, whatever the number of
notifications. A failed
attempt is tried again after 1 s, 2 s, 4 s, … (at most an hour) until the retry time is over,
then kept as ``FAILED``; `conveyor notifications retry` sends it again. A server that stops
mid-send leaves its deliveries pending, and those delivered but not yet recorded: the next
pass sends them again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from conveyor.domain.events import PIPELINE
from conveyor.engine.clock import Clock
from conveyor.metrics import Recorder
from conveyor.notify.fanout import calls_for_notice, deliveries_of
from conveyor.notify.senders import SENDERS, Senders
from conveyor.notify.statuses import StatusHost
from conveyor.notify.targets import Sender
from conveyor.store import Store, Tx
from conveyor.store.errors import DuplicateKey
from conveyor.store.notifications import RuleRecord

log = logging.getLogger("conveyor.notify")
LOCK = "notification_lock_key"
# Seconds an event waits behind a gap in the sequence numbers before the gap is taken as a
# rolled-back transaction.
GAP_WAIT = 5.0
BATCH = 500
# Seconds between passes at the least: events committing many times a second are taken a
# batch a pass, not one write transaction each.
QUIET = 0.1
# Seconds at most between writes of the cursor when it moved with no delivery kept (after a
# restart, the events after it are read again, and what they made in memory made again).
CURSOR_EVERY = 1.0
# Notifications in memory, not yet delivered, past which a pass reads no more events.
HELD_MOST = 50_000


def worth_waking(events: list[tuple[str, dict[str, Any]]], statuses: bool, any_rule: bool) -> bool:
    """Whether committed events may make a delivery: any may with commit statuses on or a
    rule enabled; otherwise only an approval's start (its notice)."""
    return statuses or any_rule or calls_for_notice(events)


def _by_resource(rules: list[RuleRecord]) -> dict[str, list[RuleRecord]]:
    found: dict[str, list[RuleRecord]] = {}
    for rule in rules:
        if rule.enabled:
            found.setdefault(rule.resource, []).append(rule)
    return found


class Outbox:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        sender: Sender,
        retry_for: float = 24 * 3600.0,
        concurrency: int = SENDERS,
        first_delay: float = 1.0,
        console: str = "",
        hosts: Mapping[str, StatusHost] | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._store = store
        self._hosts = dict(hosts or {})
        self._clock = clock
        self._console = console
        self._leadership = store.leadership(LOCK)
        self._senders = Senders(
            store, clock, sender, retry_for, concurrency, first_delay, self._hosts, recorder
        )
        # Set when events commit: the next pass comes at once.
        self._news = threading.Event()
        # How far the events were read (None: as the store says), and when the cursor was
        # last written (`fan_out`).
        self._cursor: int | None = None
        self._cursor_written = time.monotonic()
        # Whether this server delivered at its last pass, and whether any rule was enabled
        # (until a pass has read them: as if one was).
        self._leading = False
        self._any_rule = True

    # -- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event, tick: float = 0.5) -> None:
        failing: str | None = None
        try:
            while not stop.is_set():
                try:
                    leading = self._leadership.hold()
                    if leading:
                        self._leading = True
                        self.tick()
                    elif self._leading:
                        # Another server's now: it reads from the cursor written.
                        self._leading = False
                        self._cursor = None
                        self._senders.forget()
                    failing = None
                except Exception as exc:  # keep delivering: one bad pass must not end it
                    if str(exc) != failing:
                        log.exception("notification delivery pass failed")
                    failing = str(exc)
                # Passes at most every QUIET seconds, and at least every ``tick``: sooner
                # when events commit (`wake`).
                stop.wait(QUIET)
                self._news.wait(max(tick - QUIET, 0.0))
                self.woken()
        finally:
            # Every sender ends (a request under way within its time-out) before the store
            # may close: none is left holding a connection.
            self._senders.stop()
            self._keep_cursor()
            try:
                self.record_sent()
            except Exception:  # the database away: sent again at the next start
                log.warning("cannot record the notifications delivered", exc_info=True)
            self._leadership.release()

    def _keep_cursor(self) -> None:
        """Write the cursor as far as the events read are settled (it saves the next start
        reading again; what was left in memory, it makes again)."""
        if self._cursor is None or not self._leading:
            return
        try:
            self._write_cursor(self._senders.settled(self._cursor))
        except Exception:  # the database away: the next start reads a little more
            log.warning("cannot keep how far notifications were read", exc_info=True)

    def wake(self, events: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        """Events committed (a store's ``on_events``): pass now rather than at the tick, when
        they may make a delivery (with no rule, only an approval's start does). Costs the
        committing thread a look at each event's kind and an event's set; no argument: a pass
        now, whatever."""
        if events is None or worth_waking(events, bool(self._hosts), self._any_rule):
            self._news.set()

    def held(self) -> int:
        """How many notifications the senders hold in memory, not yet delivered."""
        return self._senders.held()

    @property
    def any_rule(self) -> bool:
        """Whether a rule was enabled at the last pass (until a pass has read them: True)."""
        return self._any_rule

    def woken(self) -> bool:
        """Whether the next pass comes now (events that may make a delivery committed), and
        no longer: the pass takes it."""
        found = self._news.is_set()
        self._news.clear()
        return found

    def prime(self) -> None:
        prime(self._store)

    def tick(self) -> None:
        self._senders.keep_fresh()
        # The kept queues first: which queues are kept decides where the new notifications go.
        self.send_due()
        while self.fan_out() == BATCH:
            pass

    # -- 1. events to deliveries ---------------------------------------------------------

    def fan_out(self) -> int:
        """Turn the events after the cursor into deliveries; how many events were taken (those
        behind a gap wait for the next pass).

        The events are read, and their deliveries made, in a read transaction, and handed
        to the senders; a write follows only for deliveries joining a kept queue (with the
        cursor moved in the same transaction). Otherwise the cursor moves in memory, and is
        written now and then, no further than the deliveries settled: reading again the
        events after it (after a restart, or on the server that takes delivery over) makes
        again what was left in memory.
        """
        if self._senders.held() >= HELD_MOST:
            return 0  # the senders are behind: what is read waits in the events table
        with self._store.read() as tx:
            written = tx.deliveries.cursor()
            if written is None:
                return self._first_cursor()
            cursor = written if self._cursor is None else max(self._cursor, written)
            rows, reached, taken = self._read(tx, cursor)
        kept = self._senders.hand(rows) if rows else []
        settled = max(self._senders.settled(reached), written)
        if kept:
            with self._store.write() as tx:
                if tx.deliveries.cursor() != written:
                    self._cursor = None  # another server moved it: read from there
                    return 0
                tx.deliveries.add(kept)
                tx.deliveries.move_cursor(settled, first=False)
            self._cursor_written = time.monotonic()
        elif settled != written and time.monotonic() - self._cursor_written >= CURSOR_EVERY:
            # Also when nothing new came: what was in memory was delivered since.
            self._write_cursor(settled)
        self._cursor = reached
        return taken

    def _read(self, tx: Tx, cursor: int) -> tuple[list[dict[str, Any]], int, int]:
        """The deliveries made by the events after ``cursor``, how far they were read, and
        how many were taken."""
        rows: list[dict[str, Any]] = []
        if tx.events.last_seq() <= cursor:
            return rows, cursor, 0  # nothing new
        now = self._clock.now()
        rules = _by_resource(tx.notifications.all())
        self._any_rule = bool(rules)
        events = tx.events.after_reading(cursor, BATCH, **self._wanted(rules))
        known: dict[str, list[Any]] = {}
        reached, taken = cursor, 0
        for event in events:
            if event.seq != reached + 1 and time.time() - event.time < GAP_WAIT:
                break
            reached, taken = event.seq, taken + 1
            if not event.body:
                continue  # nothing asks for it
            resource = (event.body.get("resources") or [""])[0]
            rows.extend(
                deliveries_of(
                    tx, event, rules.get(resource, ()), now, self._hosts, self._console, known
                )
            )
        return rows, reached, taken

    def _wanted(self, rules: Mapping[str, list[RuleRecord]]) -> dict[str, Any]:
        """Which events' bodies a pass reads: those of pipelines with rules, those of
        approval actions, and (with commit statuses on) pipelines' and sources' events."""
        pipelines = {arn.rsplit(":", 1)[-1] for arn in rules}
        containing = ["Approval"]
        kinds: list[str] = []
        if self._hosts:
            kinds.append(PIPELINE)
            containing.append("Source")
        return {"pipelines": pipelines, "kinds": kinds, "containing": containing}

    def _first_cursor(self) -> int:
        with self._store.write() as tx:
            if tx.deliveries.cursor() is None:
                tx.deliveries.move_cursor(tx.events.last_seq(), first=True)
        return 0

    def _write_cursor(self, seq: int) -> None:
        """Write the cursor read in memory, unless another server moved it past."""
        with self._store.write() as tx:
            written = tx.deliveries.cursor()
            if written is not None and written < seq:
                tx.deliveries.move_cursor(seq, first=False)
        self._cursor_written = time.monotonic()

    # -- 2. deliveries to targets (`conveyor.notify.senders`) ----------------------------

    def send_due(self) -> list[Any]:
        """Record what was delivered, and hand what is due to the senders; the futures of
        the groups handed out."""
        return self._senders.send_due()

    def record_sent(self) -> None:
        """Record the notifications delivered since the last pass, in one write."""
        self._senders.record_sent()


def prime(store: Store) -> None:
    """Put the cursor after the last event, unless it is somewhere already: what happened
    before delivery first ran is history, not news."""
    try:
        with store.write() as tx:
            if tx.deliveries.cursor() is None:
                tx.deliveries.move_cursor(tx.events.last_seq(), first=True)
    except DuplicateKey:
        pass  # another server put it there first
