"""The build as a shell script: phases, commands, ``finally`` blocks and phase transitions.

`script` turns the buildspec's phases into the source of a shell (bash, or /bin/sh). Version
0.2 runs every command in that one shell, so the working directory and variables carry across
commands and phases; version 0.1 runs each command in a shell of its own (a subshell that
starts from the build's state and whose changes end with it). Each command runs with ``eval``
and only its own exit status counts; the first failing command skips the rest of its phase's
``commands``, then the phase's ``finally`` runs. After a failed phase the shell follows
CodeBuild's transitions: INSTALL and PRE_BUILD go straight to finalizing, a failed BUILD still
runs POST_BUILD and the upload (with ``CODEBUILD_BUILD_SUCCEEDING=0``); ``on-failure`` ABORT
stops, CONTINUE goes on, RETRY asks for a new attempt when the error matches.

A command that ends the shell (``exit 3``, or a failure under ``set -e``) fails like any other
command and the build goes on: the shell's EXIT trap saves its state (variables, functions,
options, working directory) and ``exec``\\ s a new shell in the same process that restores it
and carries on after that command. Nothing of this costs a build whose commands do not exit.

Each step is numbered (``__cb_pc``) so that a resumed shell skips what already ran. Command
texts are kept in variables at the top, so that every ``eval`` sits on a line of its own,
followed by blank lines for the command's own lines: `Command.eval_line` lets the log say which
buildspec line an error of the shell comes from. Progress is appended to a report file, by
path (no command inherits a descriptor of it, and a resumed shell goes on with it), as
NUL-separated records that `read_outcome` decodes; the values of ``expand`` (the buildspec's
texts that hold variables, see `expand`) are evaluated in the final state of the shell and
reported there too.
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

# The shell's own log lines start with a unit separator and carry no time: `logs.ScriptLog`
# stamps them as they arrive ("[Container] <time> <message>"), which costs the shell nothing
# (no strftime in bash, no ``date`` process per line in /bin/sh).
_LOG = "__cb_log() { printf '\\037%s\\n' \"$1\"; }"

_PLUMBING = """\
__cb_side() {{ printf '%s\\0' "$@" >> "$__cb_report"; }}
__cb_phase() {{
  __cb_ok=1; __cb_fok=1; __cb_fc=; __cb_fs=0
  __cb_side "P$1"; __cb_log "Entering phase $2"
}}
__cb_cmd() {{
  __cb_c=$2; __cb_run=$1; __cb_fin=$3; __cb_side "C$1"; __cb_log "Running command $2"
}}
__cb_done() {{
  __cb_run=0
  if [ "$2" -ne 0 ]; then
    if [ -z "$__cb_fc" ]; then __cb_fc=$__cb_c; __cb_fs=$2; __cb_side "F$1:$2"; fi
    if [ "$3" = 1 ]; then __cb_fok=0; else __cb_ok=0; fi
    __cb_log "Command did not exit successfully $__cb_c exit status $2"
  fi
}}
__cb_match() {{ {python} -I -S -c {match} "$1" "$2"; }}
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

# The state a resumed shell restores, written by the EXIT trap (in a subshell whose umask
# keeps the file the owner's only, since it may hold secrets). bash: every variable but its
# own read-only and special ones, functions, aliases and options; sh: variables and options
# (plain sh cannot list its functions).
_BASH_SAVE = """\
__cb_save() (
  umask 077
  {
    declare -p IFS 2>/dev/null
    local __cb_v IFS=$' \\t\\n'
    for __cb_v in $(compgen -v); do
      case $__cb_v in
        IFS|BASH*|EUID|PPID|UID|SHELLOPTS|FUNCNAME|GROUPS|LINENO|RANDOM|SECONDS|SRANDOM|EPOCH*\\
|HISTCMD|DIRSTACK|PIPESTATUS|COLUMNS|LINES|_|__CB_RESUME) continue ;;
      esac
      declare -p "$__cb_v" 2>/dev/null
    done
    declare -f; alias -p; set +o; shopt -p
    printf '__cb_s=%s\\n' "$1"
  } > "$__cb_state"
)
__cb_again() {
  export __CB_RESUME="$__cb_state"
  if [ -n "${BASH_EXECUTION_STRING+x}" ]; then
    exec "$BASH" --noprofile --norc -c "$BASH_EXECUTION_STRING" "$0"
  fi
  exec "$BASH" --noprofile --norc "$__cb_script"
}
"""
_SH_SAVE = """\
__cb_save() (
  umask 077
  { set | grep -v -e '^PPID=' -e '^__CB_RESUME='; set +o; printf '__cb_s=%s\\n' "$1"; } \
> "$__cb_state"
)
__cb_again() { export __CB_RESUME="$__cb_state"; exec /bin/sh "$__cb_script"; }
"""


@dataclass(frozen=True, slots=True)
class Command:
    phase: str
    text: str
    in_finally: bool
    line: int = 0  # the buildspec line its text starts on (0: not known)
    eval_line: int = 0  # the script line of its ``eval``

    @property
    def phase_key(self) -> str:
        """The phase as the buildspec names it (``pre_build``)."""
        return self.phase.lower()

    @property
    def line_count(self) -> int:
        return self.text.count("\n") + 1


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
    expanded: dict[int, str] = field(default_factory=dict)


class _Source:
    """Script lines with a running count, so each ``eval``'s line number is known."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0

    def add(self, *texts: str) -> int:
        """Append ``texts``; the line number the first one starts on."""
        first = self.count + 1
        for text in texts:
            self.lines.append(text)
            self.count += text.count("\n") + 1
        return first

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _final(exported: Sequence[str], expand: Sequence[str]) -> list[str]:
    """The EXIT trap's report: exit status, exported variables, expanded buildspec texts."""
    to = '2>/dev/null >> "$__cb_report"'
    lines = [f"  printf 'X%s\\0' \"$__cb_s\" {to}"]
    lines += [
        f'  [ -z "${{{name}+x}}" ] || printf \'V%s\\0%s\\0\' {name} "${name}" {to}'
        for name in exported
        if VARIABLE_NAME.match(name)
    ]
    for index, text in enumerate(expand):
        if not text or "__CB_EOF" in text or "\n" in text:
            continue
        lines.append(f"  __cb_v=$(cat <<__CB_EOF\n{text}\n__CB_EOF\n) 2>/dev/null || __cb_v=")
        lines.append(f"  printf 'S%s\\0%s\\0' {index} \"$__cb_v\" {to}")
    return lines


def script(
    phases: Sequence[Phase],
    *,
    shell: str,
    report: str,
    attempt: int,
    exported: Sequence[str],
    path: str,
    state: str,
    one_shell: bool = True,
    expand: Sequence[str] = (),
) -> tuple[str, tuple[Command, ...]]:
    """The shell source of the whole build (to be run as ``path``, appending its records to
    the file ``report`` and saving a resumed shell's state in ``state``) and the commands it
    numbers (1-based)."""
    bash = shell == "bash"
    out = _Source()
    out.add(
        _LOG,
        _PLUMBING.format(python=shlex.quote(sys.executable), match=shlex.quote(_MATCH)),
        _BASH_SAVE if bash else _SH_SAVE,
        "__cb_exit() {",
        "  __cb_s=$?",
        # A command ended the shell: carry on in a new one, from the state this one had;
        # not when the build is being stopped (a signal from the runner: timed out, cancelled).
        '  if [ "${__cb_run:-0}" != 0 ] && [ -z "${__cb_sig:-}" ]; then',
        '    __cb_save "$__cb_s" && __cb_again',
        "  fi",
        *_final(exported, expand),
        "}",
    )
    commands: list[Command] = []
    every = [text for p in phases for text in (*p.commands, *p.finally_commands)]
    texts = [f"__cb_t{number}={shlex.quote(text)}" for number, text in enumerate(every, 1)]
    out.add(
        f"__cb_script={shlex.quote(path)} __cb_state={shlex.quote(state)} "
        f"__cb_report={shlex.quote(report)}",
        *texts,
        'if [ -n "${__CB_RESUME:-}" ]; then',
        # The state may hold secrets: emptied once read.
        '  . "$__CB_RESUME" 2>/dev/null; : > "$__CB_RESUME"; unset __CB_RESUME',
        '  __cb_done "$__cb_run" "$__cb_s" "$__cb_fin"',
        "else",
        "  __cb_stop=0 __cb_upload=1 __cb_ok=1 __cb_fok=1 __cb_fc= __cb_fs=0 __cb_c= __cb_m=",
        "  __cb_a= __cb_pc=0 __cb_run=0 __cb_fin=0",
        "fi",
        "trap __cb_exit EXIT",
        "trap '__cb_sig=1; exit 143' TERM",
        "trap '__cb_sig=1; exit 129' HUP",
        "trap '__cb_sig=1; exit 130' INT",
    )
    step = 0

    def guarded(body: str) -> str:
        nonlocal step
        step += 1
        return f'if [ "$__cb_pc" -lt {step} ]; then __cb_pc={step}; {body}; fi'

    run = 'eval "$__cb_c"' if one_shell else '( eval "$__cb_c" )'
    for phase in phases:
        index = PHASES.index(phase.name)
        upper = phase.name.upper()
        out.add('if [ "$__cb_stop" = 0 ]; then', guarded(f"__cb_phase {index} {upper}"))
        for in_finally, block in ((False, phase.commands), (True, phase.finally_commands)):
            for position, text in enumerate(block):
                number = len(commands) + 1
                flag = "__cb_fok" if in_finally else "__cb_ok"
                eval_line = out.add(
                    guarded(
                        f'if [ "${flag}" = 1 ]; then __cb_cmd {number} "$__cb_t{number}" '
                        f"{int(in_finally)}; {run}; __cb_done {number} $? "
                        f"{int(in_finally)}; fi"
                    )
                )
                command = Command(
                    upper, text, in_finally, phase.line(position, in_finally), eval_line
                )
                commands.append(command)
                # Room for the command's own lines (and the one after), so that an error
                # line of the shell belongs to one command only.
                out.add("\n" * (command.line_count - 1))
        rule = phase.on_failure
        default = _DEFAULT[index]
        action = {"ABORT": "abort", "CONTINUE": "go"}.get(rule.action, default)
        if rule.action == "RETRY":
            action = "retry" if attempt < rule.retries else default
        out.add(
            guarded(
                f"__cb_end {index} {upper} {action} {shlex.quote(rule.pattern or '')} {default} "
                f"{shlex.quote(rule.text)}"
            ),
            "fi",
        )
    out.add('if [ "$__cb_upload" = 1 ]; then __cb_side U; fi', "__cb_side D")
    return out.text(), tuple(commands)


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
        elif kind in ("V", "S") and index + 1 < len(fields):
            index += 1
            text = fields[index].decode("utf-8", "replace")
            if kind == "V":
                outcome.variables[value] = text
            elif value.isdigit():
                outcome.expanded[int(value)] = text
        index += 1
    return outcome
