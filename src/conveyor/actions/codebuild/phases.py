"""The build as one shell script: phases, commands, ``finally`` blocks and phase transitions.

`script` turns the buildspec's phases into the source of ONE shell (bash, or /bin/sh), so the
working directory and exported variables carry across commands and phases. Each command runs
with ``eval`` in that shell and only its own exit status counts; the first failing command skips
the rest of its phase's ``commands``, then the phase's ``finally`` runs. After a failed phase
the shell follows CodeBuild's transitions: INSTALL and PRE_BUILD go straight to finalizing, a
failed BUILD still runs POST_BUILD and the upload (with ``CODEBUILD_BUILD_SUCCEEDING=0``);
``on-failure`` ABORT stops, CONTINUE goes on, RETRY asks for a new attempt when the error
matches. Progress goes to a side pipe as NUL-separated records that `read_outcome` decodes.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from conveyor.actions.codebuild.buildspec import PHASES, Phase
from conveyor.actions.shell import VARIABLE_NAME

__all__ = ["Command", "Outcome", "read_outcome", "script"]

# What a failed phase leads to when on-failure does not say: INSTALL and PRE_BUILD skip to
# finalizing (nothing uploaded), BUILD goes on to POST_BUILD, POST_BUILD ends the build.
_DEFAULT = ("skip", "skip", "go", "end")

_MATCH = "import re,sys; sys.exit(0 if re.search(sys.argv[1], sys.argv[2]) else 1)"

_BASH_LOG = (
    "__cb_log() { local t=$EPOCHREALTIME; "
    'printf \'[Container] %(%Y/%m/%d %H:%M:%S)T.%s %s\\n\' "${t%[.,]*}" "${t#*[.,]}" "$1"; }'
)
_SH_LOG = "__cb_log() { printf '[Container] %s %s\\n' \"$(date '+%Y/%m/%d %H:%M:%S')\" \"$1\"; }"

_PLUMBING = """\
__cb_side() {{ printf '%s\\0' "$@" >&{fd}; }}
__cb_stop=0 __cb_upload=1 __cb_ok=1 __cb_fok=1 __cb_fc= __cb_fs=0 __cb_c= __cb_m= __cb_a=
__cb_phase() {{
  __cb_ok=1; __cb_fok=1; __cb_fc=; __cb_fs=0
  __cb_side "P$1"; __cb_log "Entering phase $2"
}}
__cb_cmd() {{ __cb_c=$2; __cb_side "C$1"; __cb_log "Running command $2"; }}
__cb_done() {{
  if [ "$2" -ne 0 ]; then
    if [ -z "$__cb_fc" ]; then __cb_fc=$__cb_c; __cb_fs=$2; __cb_side "F$1:$2"; fi
    if [ "$3" = 1 ]; then __cb_fok=0; else __cb_ok=0; fi
    __cb_log "Command did not exit successfully $__cb_c exit status $2"
  fi
}}
__cb_match() {{ {python} -I -S -c {match} "$1" "$2" {fd}>&-; }}
__cb_end() {{
  if [ "$__cb_ok" = 1 ] && [ "$__cb_fok" = 1 ]; then
    __cb_side "E$1:0"; __cb_log "Phase complete: $2 State: SUCCEEDED"
    __cb_log "Phase context status code:  Message: "
    return 0
  fi
  __cb_side "E$1:1"; __cb_log "Phase complete: $2 State: FAILED"
  __cb_m="Error while executing command: $__cb_fc. Reason: exit status $__cb_fs"
  __cb_log "Phase context status code: COMMAND_EXECUTION_ERROR Message: $__cb_m"
  CODEBUILD_BUILD_SUCCEEDING=0; export CODEBUILD_BUILD_SUCCEEDING
  __cb_a=$3
  if [ "$__cb_a" = retry ]; then
    if [ -z "$4" ] || __cb_match "$4" "$__cb_m"; then
      __cb_log "on-failure $6: the build will be retried"
      __cb_side R; __cb_stop=1; __cb_upload=0; return 0
    fi
    __cb_log "The error does not match on-failure $6: not retrying"
    __cb_a=$5
  fi
  case $__cb_a in
    skip) __cb_stop=1; __cb_upload=0 ;;
    end) __cb_stop=1 ;;
    abort) __cb_stop=1; __cb_upload=0; __cb_side A ;;
  esac
  return 0
}}
"""


@dataclass(frozen=True, slots=True)
class Command:
    phase: str
    text: str
    in_finally: bool


@dataclass(slots=True)
class Outcome:
    """What the shell reported: phases entered and how they ended, the first failure..."""

    entered: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    command: int = 0  # the last command started (1-based), 0 for none
    failure: tuple[int, int] | None = None  # first failing command and its exit status
    retry: bool = False
    aborted: bool = False
    upload: bool = False
    done: bool = False
    exit_status: int | None = None
    variables: dict[str, str] = field(default_factory=dict)


def _side_variables(names: Sequence[str], fd: int) -> list[str]:
    return [
        f'  [ -z "${{{name}+x}}" ] || printf \'V%s\\0%s\\0\' {name} "${name}" 2>/dev/null >&{fd}'
        for name in names
        if VARIABLE_NAME.match(name)
    ]


def script(
    phases: Sequence[Phase],
    *,
    shell: str,
    fd: int,
    attempt: int,
    exported: Sequence[str],
) -> tuple[str, tuple[Command, ...]]:
    """The shell source of the whole build and the commands it numbers (1-based)."""
    lines = [
        _BASH_LOG if shell == "bash" else _SH_LOG,
        _PLUMBING.format(fd=fd, python=shlex.quote(sys.executable), match=shlex.quote(_MATCH)),
        "__cb_exit() {",
        "  __cb_s=$?",
        # A command that ran `exit` ended the shell with the report closed: say nothing then.
        f"  printf 'X%s\\0' \"$__cb_s\" 2>/dev/null >&{fd}",
        *_side_variables(exported, fd),
        "}",
        "trap __cb_exit EXIT",
    ]
    commands: list[Command] = []
    for phase in phases:
        index = PHASES.index(phase.name)
        upper = phase.name.upper()
        lines += ['if [ "$__cb_stop" = 0 ]; then', f"__cb_phase {index} {upper}"]
        for in_finally, block in ((False, phase.commands), (True, phase.finally_commands)):
            for text in block:
                commands.append(Command(upper, text, in_finally))
                number = len(commands)
                flag = "__cb_fok" if in_finally else "__cb_ok"
                lines.append(
                    f'if [ "${flag}" = 1 ]; then __cb_cmd {number} {shlex.quote(text)}; '
                    f'eval "$__cb_c" {fd}>&-; __cb_done {number} $? {int(in_finally)}; fi'
                )
        rule = phase.on_failure
        default = _DEFAULT[index]
        action = {"ABORT": "abort", "CONTINUE": "go"}.get(rule.action, default)
        if rule.action == "RETRY":
            action = "retry" if attempt < rule.retries else default
        lines += [
            f"__cb_end {index} {upper} {action} {shlex.quote(rule.pattern or '')} {default} "
            f"{shlex.quote(rule.text)}",
            "fi",
        ]
    lines += ['if [ "$__cb_upload" = 1 ]; then __cb_side U; fi', "__cb_side D", ""]
    return "\n".join(lines), tuple(commands)


def read_outcome(side: bytes) -> Outcome:
    """Decode the side pipe's records."""
    outcome = Outcome()
    fields = side.split(b"\0")
    index = 0
    while index < len(fields):
        record = fields[index].decode("utf-8", "replace")
        kind, value = record[:1], record[1:]
        if kind == "P" and value.isdigit():
            outcome.entered.append(int(value))
        elif kind == "C" and value.isdigit():
            outcome.command = int(value)
        elif kind == "F" and outcome.failure is None:
            number, _, status = value.partition(":")
            if number.isdigit() and status.isdigit():
                outcome.failure = (int(number), int(status))
        elif kind == "E":
            number, _, failed = value.partition(":")
            if number.isdigit() and failed == "1":
                outcome.failed.append(int(number))
        elif record in ("R", "A", "U", "D"):
            outcome.retry |= record == "R"
            outcome.aborted |= record == "A"
            outcome.upload |= record == "U"
            outcome.done |= record == "D"
        elif kind == "X" and value.lstrip("-").isdigit():
            outcome.exit_status = int(value)
        elif kind == "V" and index + 1 < len(fields):
            index += 1
            outcome.variables[value] = fields[index].decode("utf-8", "replace")
        index += 1
    return outcome
