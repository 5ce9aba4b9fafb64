"""Run one child process for a provider: its own process group, output streamed, stoppable.

`run_process` starts the child in a new session, writes its output to the job log a line at a
time while keeping the last lines for error messages, optionally captures stdout or a side
pipe, and kills the whole group when the job is cancelled or runs out of time. Exit is
detected with a pidfd (no polling), and stragglers left in the group are killed before the
child is reaped, so the group id cannot have been reused by then.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["ProcessResult", "run_process"]

TAIL_LINES = 20
_POLL = 0.1  # seconds between checks of the cancel flag
_GRACE = 2.0  # seconds between SIGTERM and SIGKILL when stopping a process group
_LONG_LINE = 1 << 16
_CHUNK = 1 << 16
_DRAIN_CHUNKS = 256  # after exit, read at most this many chunks left in a pipe


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """How a child ended: exit status (negative: killed by that signal), or why it was stopped
    (``"cancelled"``, ``"timed out"``), with the last lines it logged and what was captured."""

    returncode: int
    stopped: str | None
    tail: tuple[str, ...]
    stdout: bytes = b""
    side: bytes = b""


class _LogLines:
    """Decodes output incrementally and writes it to the log a whole line at a time."""

    def __init__(self, log: TextIO) -> None:
        self.log = log
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.partial = ""
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def feed(self, data: bytes, final: bool = False) -> None:
        lines = (self.partial + self.decoder.decode(data, final)).split("\n")
        self.partial = lines.pop()
        if len(self.partial) > _LONG_LINE or (final and self.partial):
            lines.append(self.partial)
            self.partial = ""
        if lines:
            self.log.write("\n".join(lines) + "\n")
            self.log.flush()
            self.tail.extend(lines)


def _exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


class _Watch:
    """The event loop over one child: its pipes, its exit, the cancel flag and the deadline."""

    def __init__(self, proc: subprocess.Popen[bytes], log: TextIO, sinks: dict[int, str]) -> None:
        self.proc = proc
        self.lines = _LogLines(log)
        self.sinks = sinks
        self.captured: dict[str, list[bytes]] = {"stdout": [], "side": []}
        self.selector = selectors.DefaultSelector()
        for fd in sinks:
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ)
        try:
            self.pidfd: int | None = os.pidfd_open(proc.pid)
            self.selector.register(self.pidfd, selectors.EVENT_READ)
        except (AttributeError, OSError):
            self.pidfd = None

    def read(self, fd: int) -> bool:
        """Read one chunk from ``fd``; False when nothing is left for now or for good."""
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return False
        if not data:
            self.selector.unregister(fd)
            return False
        if self.sinks[fd] == "log":
            self.lines.feed(data)
        else:
            self.captured[self.sinks[fd]].append(data)
        return True

    def wait(self, cancelled: threading.Event, deadline: float | None) -> str | None:
        """Stream output until the child exits; returns why it was stopped, if it was."""
        stopped: str | None = None
        stopping_since = 0.0
        while True:
            now = time.monotonic()
            if stopped is None:
                if cancelled.is_set():
                    stopped = "cancelled"
                elif deadline is not None and now >= deadline:
                    stopped = "timed out"
                if stopped is not None:
                    _signal_group(self.proc.pid, signal.SIGTERM)
                    stopping_since = now
            elif now - stopping_since >= _GRACE:
                return stopped
            timeout = _POLL
            if stopped is None and deadline is not None:
                timeout = max(0.0, min(_POLL, deadline - now))
            if self.pidfd is None and not self.selector.get_map():
                timeout = 0.002
            exited = False
            for key, _ in self.selector.select(timeout):
                if key.fd == self.pidfd:
                    exited = True
                else:
                    self.read(key.fd)
            if exited or (self.pidfd is None and _exited(self.proc.pid)):
                return stopped

    def finish(self) -> int:
        """Kill what is left of the group, drain the pipes, reap the child; its exit status."""
        _signal_group(self.proc.pid, signal.SIGKILL)
        for fd in [key.fd for key in self.selector.get_map().values()]:
            for _ in range(_DRAIN_CHUNKS):
                if fd == self.pidfd or not self.read(fd):
                    break
        self.selector.close()
        returncode = self.proc.wait()
        self.lines.feed(b"", final=True)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        for fd, sink in self.sinks.items():
            if sink == "side":
                os.close(fd)
        if self.pidfd is not None:
            os.close(self.pidfd)
        return returncode


def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: TextIO,
    cancelled: threading.Event,
    deadline: float | None = None,
    capture_stdout: bool = False,
    side: tuple[int, int] | None = None,
    started: Callable[[int], None] | None = None,
) -> ProcessResult:
    """Run ``argv`` in a new process group and stream its output to ``log``.

    With ``capture_stdout`` only stderr is logged and stdout is returned. ``side`` is a pipe
    (read end, write end) whose write end the child inherits; this call closes both ends and
    returns what the child wrote to it. On ``cancelled`` or at ``deadline`` (`time.monotonic`)
    the group gets SIGTERM, then SIGKILL after a grace period. ``started`` is told the process
    group's id as soon as it exists.
    """
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if capture_stdout else subprocess.STDOUT,
            start_new_session=True,
            pass_fds=(side[1],) if side else (),
        )
    except BaseException:
        if side:
            os.close(side[0])
        raise
    else:
        if started is not None:
            started(proc.pid)
    finally:
        if side:
            os.close(side[1])
    assert proc.stdout is not None
    sinks = {proc.stdout.fileno(): "stdout" if capture_stdout else "log"}
    if proc.stderr is not None:
        sinks[proc.stderr.fileno()] = "log"
    if side:
        sinks[side[0]] = "side"
    watch = _Watch(proc, log, sinks)
    stopped = watch.wait(cancelled, deadline)
    returncode = watch.finish()
    return ProcessResult(
        returncode=returncode,
        stopped=stopped,
        tail=tuple(watch.lines.tail),
        stdout=b"".join(watch.captured["stdout"]),
        side=b"".join(watch.captured["side"]),
    )
