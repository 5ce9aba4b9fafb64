"""The ``Compute/AWS/Commands/1`` provider: run an action's shell commands over its artifacts.

Input artifacts are unpacked into the workspace (the first at its root, the others in folders
named after them; copied from the server's shared unpacked copy when it has one), then every
command runs in one bash process, in order, so ``cd`` and ``export`` carry over; the first
failing command stops the rest. Output goes to the job log as it comes; the output variables
are read from the shell once the commands are done, and the output artifact is zipped from the
workspace.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import time
from collections.abc import Sequence

from conveyor.actions.base import FailureType, JobContext, JobResult, ProviderConfig
from conveyor.actions.inputs import unpack_input
from conveyor.actions.process import ProcessResult, run_process
from conveyor.actions.shell import (
    ARTIFACT_NAME,
    INHERITED,
    SIDE_FD_MIN,
    VARIABLE_NAME,
    bash,
    shorten,
)
from conveyor.artifacts import ArtifactError
from conveyor.artifacts.archive import pack
from conveyor.artifacts.unpacked import Unpacked

__all__ = ["Commands"]


class _Misconfigured(Exception):
    pass


def _environment(context: JobContext) -> dict[str, str]:
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(
        CODEBUILD_CI="true",
        CODEBUILD_BUILD_ID=f"{context.pipeline_name}-{context.action_name}:"
        f"{context.action_execution_id}",
        CODEBUILD_BUILD_SUCCEEDING="1",
        CODEBUILD_INITIATOR=f"codepipeline/{context.pipeline_name}",
        CODEBUILD_START_TIME=str(int(time.time() * 1000)),
        CODEBUILD_SRC_DIR=str(context.workspace),
    )
    revision = context.input_artifacts[0].revision if context.input_artifacts else None
    if revision:
        env["CODEBUILD_RESOLVED_SOURCE_VERSION"] = env["CODEBUILD_SOURCE_VERSION"] = revision
    for artifact in context.input_artifacts[1:]:
        env[f"CODEBUILD_SRC_DIR_{artifact.name}"] = str(context.workspace / artifact.name)
    for variable in context.environment_variables:
        name = variable.name
        if variable.type == "SECRETS_MANAGER":
            raise _Misconfigured(
                f"Environment variable {name}: SECRETS_MANAGER is not supported yet"
            )
        if variable.type != "PLAINTEXT":
            raise _Misconfigured(f"Environment variable {name}: unsupported type {variable.type}")
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise _Misconfigured(f"Invalid environment variable name {name!r}")
        if name.startswith("CODEBUILD_"):
            raise _Misconfigured(
                f"Environment variable {name}: names starting CODEBUILD_ are reserved"
            )
        env[name] = variable.value
    return env


def _script(commands: Sequence[str], variables: Sequence[str], fd: int) -> str:
    """Bash source running each command in turn; progress and variables go to ``fd``."""
    report = [f"printf 'X%d\\0' \"$__conveyor_status\" >&{fd}"]
    for name in variables:
        if VARIABLE_NAME.match(name):
            report.append(
                f'[ -z "${{{name}+x}}" ] || printf \'V%s\\0%s\\0\' {name} "${name}" >&{fd}'
            )
    lines = [
        "__conveyor_exit() {",
        "  local __conveyor_status=$?",
        *("  " + line for line in report),
        "}",
        "trap __conveyor_exit EXIT",
    ]
    for number, command in enumerate(commands, 1):
        echo = "\n".join("+ " + line for line in command.split("\n"))
        lines.append(
            f"printf 'C{number}\\0' >&{fd}; printf '%s\\n' {shlex.quote(echo)}; "
            f"eval {shlex.quote(command)} {fd}>&-; __conveyor_status=$?; "
            f'[ "$__conveyor_status" -eq 0 ] || exit "$__conveyor_status"'
        )
    return "\n".join(lines) + "\n"


def _read_report(side: bytes) -> tuple[int, int | None, dict[str, str]]:
    """The last command started, the shell's exit status if it reported, the variables."""
    fields = side.split(b"\0")
    started, status, variables = 0, None, {}
    index = 0
    while index < len(fields):
        field = fields[index].decode("utf-8", "replace")
        number = field[1:]
        if field.startswith("C") and number.isdigit():
            started = int(number)
        elif field.startswith("X") and number.isdigit():
            status = int(number)
        elif field.startswith("V") and index + 1 < len(fields):
            index += 1
            variables[field[1:]] = fields[index].decode("utf-8", "replace")
        index += 1
    return started, status, variables


def _unpack_inputs(context: JobContext, max_bytes: int | None, unpacked: Unpacked | None) -> None:
    for index, artifact in enumerate(context.input_artifacts):
        if not ARTIFACT_NAME.match(artifact.name):
            raise ArtifactError(f"Invalid input artifact name {artifact.name!r}")
        try:
            unpack_input(
                context,
                artifact,
                context.workspace / artifact.name if index else context.workspace,
                scratch=context.workspace / f".conveyor-input-{index}.zip",
                max_bytes=max_bytes,
                unpacked=unpacked,
            )
        except ArtifactError as error:
            raise ArtifactError(f"Input artifact {artifact.name}: {error}") from error


def _pack_outputs(context: JobContext) -> None:
    for output in context.output_artifacts:
        archive = context.workspace / f".conveyor-output-{output.name}.zip"
        try:
            if pack(context.workspace, archive, output.files or ("**/*",)) == 0 and output.files:
                raise ArtifactError(
                    f"Output artifact {output.name}: no file matches {', '.join(output.files)}"
                )
            context.artifacts.put(output.bucket, output.key, archive)
        finally:
            archive.unlink(missing_ok=True)


class Commands:
    """Runs the action's commands in one bash process over its unpacked input artifacts."""

    # The first input's copy becomes the workspace (see `Provider`).
    makes_workspace = True

    def __init__(
        self, config: ProviderConfig | None = None, unpacked: Unpacked | None = None
    ) -> None:
        self._max_bytes = config.max_artifact_bytes if config else None
        self._unpacked = unpacked

    def run(self, context: JobContext) -> JobResult:
        started_at = time.monotonic()
        deadline = None if context.time_left is None else started_at + context.time_left
        if not context.commands:
            return JobResult.failed("The action has no commands", FailureType.CONFIGURATION_ERROR)
        try:
            env = _environment(context)
        except _Misconfigured as error:
            return JobResult.failed(str(error), FailureType.CONFIGURATION_ERROR)
        try:
            if self._unpacked is None:  # each input is unpacked in the workspace, zip and all
                context.workspace.mkdir(parents=True, exist_ok=True)
            _unpack_inputs(context, self._max_bytes, self._unpacked)
        except ArtifactError as error:
            return JobResult.failed(str(error))
        context.workspace.mkdir(parents=True, exist_ok=True)  # made already unless no input
        read_end, write_end = os.pipe()
        side_fd = fcntl.fcntl(write_end, fcntl.F_DUPFD_CLOEXEC, SIDE_FD_MIN)
        os.close(write_end)
        script = _script(context.commands, context.output_variables, side_fd)
        try:
            outcome = run_process(
                [bash(), "--noprofile", "--norc", "-c", script],
                cwd=context.workspace,
                env=env,
                log=context.log,
                cancelled=context.cancelled,
                deadline=deadline,
                side=(read_end, side_fd),
                started=context.process_started,
            )
        except OSError as error:
            return JobResult.failed(f"Cannot start bash: {error}", FailureType.SYSTEM_UNAVAILABLE)
        number, status, variables = _read_report(outcome.side)
        if status is None:
            status = outcome.returncode
        if outcome.stopped is not None or status != 0:
            return JobResult.failed(self._failure(context, outcome, number, status, started_at))
        try:
            _pack_outputs(context)
        except ArtifactError as error:
            return JobResult.failed(str(error))
        count = len(context.commands)
        return JobResult(
            succeeded=True,
            summary=f"Ran {count} command{'s' if count != 1 else ''}",
            output_variables=variables,
        )

    @staticmethod
    def _failure(
        context: JobContext, outcome: ProcessResult, number: int, status: int, started: float
    ) -> str:
        total = len(context.commands)
        which_command = (
            f"command {number} of {total} ({shorten(context.commands[number - 1])})"
            if 0 < number <= total
            else "the commands"
        )
        if outcome.stopped == "timed out":
            head = (
                f"Timed out after {time.monotonic() - started:.0f} s while running {which_command}"
            )
        elif outcome.stopped:
            head = f"Stopped: the job was cancelled while running {which_command}"
        elif status < 0:
            head = f"{which_command[0].upper()}{which_command[1:]} was killed by signal {-status}"
        else:
            head = f"{which_command[0].upper()}{which_command[1:]} failed with exit status {status}"
        return head + "\nLast lines of output:\n" + "\n".join(outcome.tail)
