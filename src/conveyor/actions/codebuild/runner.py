"""One attempt of a build: make the phase script, run it in one shell, say what happened.

The script runs in ONE process group through `run_process` (streamed log, cancel flag,
deadline, the process group reported through ``started``); progress comes back through a
report file the shell appends to (see `phases`); ``shell: /bin/sh`` runs the same script in
/bin/sh. The log goes through `logs.ScriptLog`, so that the shell's errors point at the
buildspec's lines; the failure names the first failing command and its line.
`Attempt.expanded` gives the buildspec with its paths' variables as the build left them.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from conveyor.actions.base import OutputArtifact
from conveyor.actions.codebuild import expand
from conveyor.actions.codebuild.buildspec import ArtifactSpec, BuildSpec
from conveyor.actions.codebuild.logs import ScriptLog
from conveyor.actions.codebuild.outputs import plan_outputs
from conveyor.actions.codebuild.phases import Command, Outcome, read_outcome, script
from conveyor.actions.process import ProcessResult, run_process
from conveyor.actions.shell import bash, shorten

__all__ = ["Attempt", "run_attempt"]

# The longest script bash is given as its -c string (Linux takes at most 128 KiB an argument).
_MAX_INLINE = 100_000


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: Outcome
    process: ProcessResult
    commands: tuple[Command, ...]
    name: str = "buildspec.yml"

    def _command(self, number: int) -> Command | None:
        return self.commands[number - 1] if 0 < number <= len(self.commands) else None

    def failure(self) -> tuple[str, str] | None:
        """(headline, detail) when the shell reported a failure; None when there is none.
        The headline names the first command that failed, whatever failed after it."""
        outcome = self.outcome
        if outcome.failure is not None and outcome.failed:
            number, status = outcome.failure
            failing = self.commands[number - 1]
            where = "finally block of " if failing.in_finally else ""
            line = f" line {failing.line}" if failing.line else ""
            return (
                f"Build failed in {where}phase {failing.phase}: "
                f"{shorten(failing.text)} exited with {status}",
                f" (the command at {self.name}{line}, phase {failing.phase_key})",
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

    def expanded(
        self, spec: BuildSpec, plan: Sequence[tuple[OutputArtifact, ArtifactSpec]]
    ) -> tuple[BuildSpec, list[tuple[OutputArtifact, ArtifactSpec]]]:
        """``spec`` (and its output plan) with the variables of its artifact, report and cache
        paths expanded in the build's final state."""
        if not self.outcome.expanded:
            return spec, list(plan)
        done = expand.apply(spec, self.outcome.expanded)
        return done, plan_outputs(done, [output for output, _ in plan])


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
    sh = spec.env.shell == "sh"
    name = f"build-{attempt + 1}"
    path, report = scratch / f"{name}.sh", scratch / f"{name}.report"
    state = scratch / f"{name}.state"
    texts = [text if expand.needs_expansion(text) else "" for text in expand.texts(spec)]
    source, commands = script(
        spec.phases,
        shell=spec.env.shell,
        report=str(report),
        attempt=attempt,
        exported=exported,
        path=str(path),
        state=str(state),
        one_shell=spec.one_shell,
        expand=texts,
    )
    # bash takes the script as its -c string, named as the file would be (its errors name
    # it so, and a resumed shell takes it again from BASH_EXECUTION_STRING): no file to write.
    # /bin/sh, and a script too long for one argument, read it from the file.
    inline = not sh and len(source.encode("utf-8")) <= _MAX_INLINE
    if not inline:
        path.write_text(source, encoding="utf-8")
    # The shell makes both as it first writes them: the state (where a shell that a command
    # ended leaves its variables, secrets too) the owner's only.
    report.unlink(missing_ok=True)
    state.unlink(missing_ok=True)
    shell_log = ScriptLog(log, str(path), commands, spec.name, bash=not sh)
    if sh:
        argv = ["/bin/sh", str(path)]
    elif inline:
        argv = [bash(), "--noprofile", "--norc", "-c", source, str(path)]
    else:
        argv = [bash(), "--noprofile", "--norc", str(path)]
    process = run_process(
        argv,
        cwd=cwd,
        env=env,
        log=shell_log,
        cancelled=cancelled,
        deadline=deadline,
        started=started,
    )
    try:
        records = report.read_bytes()
    except OSError:
        records = b""
    state.unlink(missing_ok=True)
    told = tuple(shell_log.rewrite(line) for line in process.tail)
    process = dataclasses.replace(process, tail=told)
    return Attempt(read_outcome(records), process, commands, spec.name)
