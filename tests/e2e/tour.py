"""The README's tour as a list of commands, and one bash session that runs them in order.

The commands are the lines of the ``sh`` code blocks of the README section ``## A tour``. One
bash process runs them all, so ``cd``, ``export`` and ``$(…)`` work as they do for a person
typing them; each command's standard input is ``/dev/null``, so none can read the next ones. A
command ending in ``&`` runs in the background: the session keeps its pid and ends it (SIGTERM)
when it closes.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SECTION = "## A tour"
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def tour_commands(readme: Path) -> list[str]:
    """Every command of the tour, in order."""
    text = readme.read_text(encoding="utf-8")
    section = text.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    return [
        line.strip()
        for block in _BLOCK.findall(section)
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


class CommandFailed(AssertionError):
    """A command of the tour exited with a failure, or never finished."""


@dataclass
class Outcome:
    status: int
    output: str


@dataclass
class Session:
    """A bash process in ``folder`` with ``env``; `run` one command at a time."""

    folder: Path
    env: Mapping[str, str]
    background: list[int] = field(default_factory=list)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _process: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    def __enter__(self) -> Session:
        self._process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=self.folder,
            env=dict(self.env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for pid in self.background:
            self._end(pid)
        process = self._process
        if process is not None and process.stdin is not None:
            process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=30)
        if process is not None and process.stdout is not None:
            process.stdout.close()

    def _end(self, pid: int) -> None:
        """Stop a background command of this session; its shell waits until it has gone."""
        try:
            os.kill(pid, signal.SIGTERM)
            self.run(f"wait {pid}", timeout=60)
        except ProcessLookupError:
            pass
        except CommandFailed:
            os.kill(pid, signal.SIGKILL)

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def run(self, command: str, timeout: float = 600) -> Outcome:
        """Run ``command``; its exit status (its pid when it runs in the background)."""
        assert self._process is not None and self._process.stdin is not None
        mark = f"__done_{uuid.uuid4().hex}__"
        in_background = command.endswith("&") and not command.endswith("&&")
        status = "$!" if in_background else "$?"
        # The braces keep cd and export in this shell; the newline ends a trailing comment.
        self._process.stdin.write(f"{{ {command}\n}} </dev/null\necho {mark} {status}\n")
        self._process.stdin.flush()
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise CommandFailed(f"`{command}` did not finish:\n{''.join(output)}") from None
            if line is None:
                raise CommandFailed(f"the shell ended during `{command}`:\n{''.join(output)}")
            if line.startswith(mark):
                value = int(line.split()[1])
                if in_background:
                    self.background.append(value)
                    return Outcome(0, "".join(output))
                return Outcome(value, "".join(output))
            output.append(line)
