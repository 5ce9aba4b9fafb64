"""One attempt of a build: write the phase script, run it in one shell, say what happened.

The script runs in ONE process group through `run_process` (streamed log, cancel flag,
deadline, the process group reported through ``started``); progress comes back through a side
pipe whose write end sits at a high descriptor in bash. For ``shell: /bin/sh`` a bash
trampoline moves that pipe to descriptor 9 (plain sh cannot name higher ones) and ``exec``\\ s
/bin/sh in the same process.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from conveyor.actions.codebuild.buildspec import BuildSpec
from conveyor.actions.codebuild.phases import Command, Outcome, read_outcome, script
from conveyor.actions.process import ProcessResult, run_process
from conveyor.actions.shell import SIDE_FD_MIN, bash, shorten

__all__ = ["Attempt", "run_attempt"]

_SH_FD = 9


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: Outcome
    process: ProcessResult
    commands: tuple[Command, ...]

    def _command(self, number: int) -> Command | None:
        return self.commands[number - 1] if 0 < number <= len(self.commands) else None

    def failure(self) -> tuple[str, str] | None:
        """(headline, detail) when the shell reported a failure; None when there is none."""
        outcome = self.outcome
        if outcome.failure is not None and outcome.failed:
            number, status = outcome.failure
            failing = self.commands[number - 1]
            where = "finally block of " if failing.in_finally else ""
            return (
                f"Build failed in {where}phase {failing.phase}: "
                f"{shorten(failing.text)} exited with {status}",
                "",
            )
        if outcome.done and not outcome.failed:
            return None
        status = self.process.returncode if outcome.exit_status is None else outcome.exit_status
        command = self._command(outcome.command)
        if command is None:
            return (f"Build failed: the build shell exited with {status}", "")
        return (
            f"Build failed in phase {command.phase}: {shorten(command.text)} exited with {status}",
            "; it ended the shell, so the rest of the build did not run",
        )

    def stopped_headline(self, elapsed: float) -> str:
        command = self._command(self.outcome.command)
        where = (
            f" in phase {command.phase} while running {shorten(command.text)}" if command else ""
        )
        if self.process.stopped == "timed out":
            return f"Build timed out after {elapsed:.0f} s{where}"
        return f"Build stopped: the job was cancelled{where}"


def run_attempt(
    spec: BuildSpec,
    *,
    attempt: int,
    cwd: Path,
    scratch: Path,
    env: Mapping[str, str],
    log: TextIO,
    cancelled: threading.Event,
    deadline: float | None,
    started: Callable[[int], None] | None,
    exported: Sequence[str],
) -> Attempt:
    """Run every phase of ``spec`` once; raises OSError when the shell cannot start."""
    read_end, write_end = os.pipe()
    try:
        side_fd = fcntl.fcntl(write_end, fcntl.F_DUPFD_CLOEXEC, SIDE_FD_MIN)
    finally:
        os.close(write_end)
    sh = spec.env.shell == "sh"
    source, commands = script(
        spec.phases,
        shell=spec.env.shell,
        fd=_SH_FD if sh else side_fd,
        attempt=attempt,
        exported=exported,
    )
    path = scratch / f"build-{attempt + 1}.sh"
    try:
        path.write_text(source, encoding="utf-8")
    except OSError:
        os.close(read_end)
        os.close(side_fd)
        raise
    argv = [bash(), "--noprofile", "--norc", str(path)]
    if sh:
        trampoline = f'exec {_SH_FD}>&{side_fd} {side_fd}>&- && exec /bin/sh "$1"'
        argv = [bash(), "--noprofile", "--norc", "-c", trampoline, "bash", str(path)]
    process = run_process(
        argv,
        cwd=cwd,
        env=env,
        log=log,
        cancelled=cancelled,
        deadline=deadline,
        side=(read_end, side_fd),
        started=started,
    )
    return Attempt(read_outcome(process.side), process, commands)
