"""Watching the one execution `conveyor run` started, until it ends.

The watch reads the execution's state when the engine reports a change (a callback after
each commit writes to a pipe), not on a timer: a run that waits costs nothing, and a busy one
is read at most every `COALESCE` seconds however many actions finish meanwhile. The same
wait wakes for signals (Python's wake-up fd writes to the pipe) and for keys typed at an
approval question, which is asked without stopping the run (`conveyor.cli.prompt`).

Signals: the first Ctrl-C stops the execution and lets running actions finish, the second
abandons them; SIGTERM and SIGHUP abandon at once, as a service manager or a closed
terminal expects. Either way the running actions' processes are killed before the command
exits; a third Ctrl-C (or a second SIGTERM) leaves without waiting for the engine to say so.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from conveyor.cli.prompt import Keys, Question, read_available
from conveyor.cli.rows import Row, rows
from conveyor.domain.errors import ConveyorError

if TYPE_CHECKING:  # rich, the engine and SQLAlchemy are imported only once a run starts
    from conveyor.cli.live import Display
    from conveyor.engine.services import Services
    from conveyor.store import ExecutionRecord

CALLER = "conveyor run"
NO_TERMINAL = "No terminal to ask at: run again with --approve, or answer at a terminal"
INTERRUPTED = 128 + signal.SIGINT
STOPPING = ("SIGINT", "SIGTERM", "SIGHUP")
COALESCE = 0.05  # seconds: the least time between two reads of a busy execution
BACKSTOP = 1.0  # seconds: the longest time between two reads, in case a wake-up was lost
_ACTIVE = ("InProgress", "Stopping")


@dataclass
class Signals:
    """The signals that asked the run to stop: Ctrl-Cs counted, SIGTERM or SIGHUP noted."""

    interrupts: int = 0
    terminated: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            self.interrupts += 1
            if self.interrupts >= 3:
                raise KeyboardInterrupt  # leave now; stopping the engine kills the rest
        elif self.terminated is None:
            self.terminated = signum
        else:
            raise SystemExit(128 + signum)  # leave now, as for a third Ctrl-C

    def exit_status(self) -> int | None:
        """128 + the signal, as a shell reports a process ended by it; None: no signal."""
        if self.terminated is not None:
            return 128 + self.terminated
        return INTERRUPTED if self.interrupts else None


class Wakeup:
    """A pipe whose read end the watch waits on; any thread (or signal) may write to it."""

    def __init__(self) -> None:
        self._read, self.fd = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self.fd, False)

    def __call__(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake-up is pending already
            os.write(self.fd, b"!")

    def wait(self, timeout: float, terminal: int | None) -> tuple[bool, bool]:
        """Wait up to ``timeout`` seconds; (woken, keys typed at ``terminal``)."""
        watched = [self._read] if terminal is None else [self._read, terminal]
        ready = select.select(watched, [], [], max(0.0, timeout))[0]
        if self._read in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._read, 512):
                    pass
        return self._read in ready, terminal is not None and terminal in ready

    def close(self) -> None:
        os.close(self._read)
        os.close(self.fd)


@contextlib.contextmanager
def signals_handled(signals: Signals, wakeup: Wakeup) -> Iterator[None]:
    """Route the stopping signals to ``signals``, each also waking ``wakeup``'s waiter."""
    previous = {name: signal.signal(getattr(signal, name), signals) for name in STOPPING}
    earlier_fd = signal.set_wakeup_fd(wakeup.fd, warn_on_full_buffer=False)
    try:
        yield
    finally:
        signal.set_wakeup_fd(earlier_fd)
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


@dataclass
class Watch:
    """One execution being watched: answers its approvals and passes on stop signals."""

    services: Services
    pipeline: str
    execution_id: str
    display: Display
    approve_all: bool
    interactive: bool
    signals: Signals
    wakeup: Wakeup
    answered: set[str] = field(default_factory=set)
    _waiting: list[Row] = field(default_factory=list)
    _question: Question | None = None
    _keys: Keys | None = None
    _stops: int = 0
    _terminating: bool = False

    def until_done(self, logs: Path) -> tuple[list[Row], ExecutionRecord]:
        """Follow the execution until it ends; the engine's notifier must wake `wakeup` on
        every change (``notifier.on_change(wakeup)``) from before the execution started."""
        try:
            while True:
                self._stop_if_asked()
                _, execution = self.services.views.execution(self.pipeline, self.execution_id)
                snapshot = rows(self.services.views.state(self.pipeline), self.execution_id, logs)
                if execution.status not in _ACTIVE:
                    return snapshot, execution
                self.display.feed(snapshot, execution)
                self._approvals(snapshot)
                self._wait()
        finally:
            self._ask(None)

    def _wait(self) -> None:
        """Until a change (but not sooner than `COALESCE`), a signal, or the `BACKSTOP`."""
        started = time.monotonic()
        changed = False
        while not self._stop_pending():
            now = time.monotonic()
            until = started + (COALESCE if changed else BACKSTOP)
            if now >= until:
                return
            terminal = sys.stdin.fileno() if self._question is not None else None
            woken, typed = self.wakeup.wait(until - now, terminal)
            changed = changed or woken
            if typed:
                self._typed()

    # -- stopping -----------------------------------------------------------------------------

    def _stop_pending(self) -> bool:
        terminating = self.signals.terminated is not None and not self._terminating
        return self._stops < self.signals.interrupts or terminating

    def _stop_if_asked(self) -> None:
        """Stop on the first Ctrl-C, abandon on the next (two in a row count as both), and
        abandon on SIGTERM or SIGHUP."""
        while self._stops < self.signals.interrupts:
            self._stops += 1
            first = self._stops == 1
            reason = "Stopped with Ctrl-C" if first else "Abandoned with Ctrl-C"
            if not self._stop(abandon=not first, reason=reason):
                continue
            if first:
                self.display.message(
                    "Stopping: running actions finish first; press Ctrl-C again to abandon them.",
                    "yellow",
                )
                self._reject_waiting()
            else:
                self.display.message("Abandoning the running actions.", "yellow")
        if self.signals.terminated is not None and not self._terminating:
            self._terminating = True
            name = signal.Signals(self.signals.terminated).name
            if self._stop(abandon=True, reason=f"Abandoned on {name}"):
                self.display.message(f"{name}: abandoning the running actions.", "yellow")

    def _stop(self, *, abandon: bool, reason: str) -> bool:
        self._ask(None)
        try:
            self.services.executions.stop(
                self.pipeline, self.execution_id, abandon=abandon, reason=reason
            )
        except ConveyorError:
            return False  # it ended meanwhile, or is already abandoning
        return True

    def _reject_waiting(self) -> None:
        """A stop waits for running actions: approvals waiting for an answer are rejected."""
        self._waiting.clear()
        state = self.services.views.state(self.pipeline)
        for row in rows(state, self.execution_id, Path()):
            if row.waiting and row.token:
                self.answered.add(row.token)
                self._answer(row, False, "Stopped with Ctrl-C")

    # -- approvals ----------------------------------------------------------------------------

    def _approvals(self, snapshot: list[Row]) -> None:
        """Answer new approvals, or queue them to be asked one at a time."""
        waiting = {row.token: row for row in snapshot if row.waiting}
        if self._question is not None and self._question.row.token not in waiting:
            self._ask(None)  # answered elsewhere, timed out or stopped
        self._waiting = [row for row in self._waiting if row.token in waiting]
        for token, row in waiting.items():
            if token is None or token in self.answered:
                continue
            self.answered.add(token)
            if self._stops:
                self._answer(row, False, "Stopped with Ctrl-C")
            elif self.approve_all:
                self._answer(row, True, "Approved with --approve")
                self.display.message(f"{row.name}: approved (--approve)")
            elif not self.interactive:
                self.display.message(f"{row.name} waits for an approval. {NO_TERMINAL}.", "red")
                self._answer(row, False, NO_TERMINAL)
            else:
                self._waiting.append(row)
        if self._question is None and self._waiting:
            self._ask(Question(self._waiting.pop(0)))

    def _ask(self, question: Question | None) -> None:
        """Start asking ``question``, or stop asking (None); the terminal follows suit."""
        if self._keys is not None:
            self._keys.close()
            self._keys = None
        if question is not None and self.display.keys:
            self._keys = Keys(sys.stdin.fileno())
        self._question = question
        self.display.ask(question)

    def _typed(self) -> None:
        question = self._question
        assert question is not None
        for line in question.line.feed(read_available(sys.stdin.fileno())):
            answer = question.take(line)
            if line is None and not self.display.keys:
                self.display.message("")  # the terminal did not end the prompt's line
            if answer is not None:
                self._ask(None)
                approved, comment = answer
                verdict = "approved" if approved else "rejected"
                self.display.message(
                    f"{question.row.name}: {verdict}" + (f" ({comment})" if comment else "")
                )
                self._answer(question.row, approved, comment or verdict.capitalize())
                return
        self.display.prompted()

    def _answer(self, row: Row, approved: bool, summary: str) -> None:
        try:
            self.services.executions.approve(
                self.pipeline,
                row.stage,
                row.action,
                row.token or "",
                approved=approved,
                summary=summary,
                caller=CALLER,
            )
        except ConveyorError as exc:  # answered or timed out meanwhile
            self.display.message(f"{row.name}: {exc.message}", "yellow")
