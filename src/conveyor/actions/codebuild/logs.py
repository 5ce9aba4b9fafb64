"""The build log: CodeBuild-style ``[Container]`` lines, and secrets masked as ``***``.

`container` writes one timestamped line the way CodeBuild's agent does; the shell's own lines
for phases and commands arrive without a time (marked by `SHELL_LINE`) and `ScriptLog` stamps
them the same way as they arrive. `MaskedLog` stands in for the job log while a build with
secret values runs: every write has each secret replaced before it reaches the real log.
`ScriptLog` stands in for it while the build shell runs: the shell's error lines, which
name the generated script and its line (``/…/build-1.sh: line 52: yum: command not found``),
are told as the buildspec's (``command not found: yum (buildspec.yml line 12, phase
install)``). bash numbers an error by the script line of the ``eval`` plus the line within the
command, which `phases` keeps apart for each command; plain sh numbers it within the command,
so the command running is followed through the shell's ``Running command`` lines.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TextIO

from conveyor.actions.codebuild.phases import Command

__all__ = ["MaskedLog", "ScriptLog", "container", "mask"]

MASK = "***"
# After "<script>: ", bash says "line 52: …" (or "eval: line 52: …"), sh "52: …".
_BASH_ERROR = re.compile(r"(?:eval: )?line (\d+): (.*)\Z", re.DOTALL)
_SH_ERROR = re.compile(r"(\d+): (.*)\Z", re.DOTALL)
_MISSING = re.compile(r"(?:eval: )?(.+?): (?:command )?not found")


# What starts a line the build shell logs for itself; `ScriptLog` makes it a [Container] line.
SHELL_LINE = "\x1f"
_RUNNING = "Running command "


def _line(message: str) -> str:
    return f"[Container] {datetime.now().strftime('%Y/%m/%d %H:%M:%S.%f')} {message}"


def container(log: TextIO, message: str) -> None:
    log.write(_line(message) + "\n")
    log.flush()


def _fragments(secrets: Iterable[str]) -> tuple[str, ...]:
    """Each secret, and each line of a multi-line one, longest first."""
    found: set[str] = set()
    for secret in secrets:
        if secret:
            found.add(secret)
            found.update(line for line in secret.splitlines() if len(line.strip()) > 1)
    return tuple(sorted(found, key=len, reverse=True))


def mask(text: str, fragments: Iterable[str]) -> str:
    for fragment in fragments:
        if fragment in text:
            text = text.replace(fragment, MASK)
    return text


class MaskedLog(io.StringIO):
    """A write-through log that replaces secret values before they are written."""

    def __init__(self, log: TextIO, secrets: Iterable[str]) -> None:
        super().__init__()
        self.target = log
        self.fragments = _fragments(secrets)

    def write(self, text: str) -> int:
        self.target.write(mask(text, self.fragments))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def mask(self, text: str) -> str:
        return mask(text, self.fragments)


class ScriptLog(io.StringIO):
    """A write-through log that tells the build shell's error lines as the buildspec's."""

    def __init__(
        self, log: TextIO, path: str, commands: Sequence[Command], name: str, *, bash: bool
    ) -> None:
        super().__init__()
        self.target = log
        self.commands = tuple(commands)
        self.name = name
        self.bash = bash
        self.prefix = f"{path}: "
        self.pattern = _BASH_ERROR if bash else _SH_ERROR
        self.current = 0  # index of the command running, following "Running command" lines

    def write(self, text: str) -> int:
        self.target.write("\n".join(self.rewrite(line) for line in text.split("\n")))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def _follow(self, head: str) -> None:
        for index in range(self.current, len(self.commands)):
            if self.commands[index].text.split("\n", 1)[0] == head:
                self.current = index
                return

    def _command(self, number: int) -> tuple[Command, int] | None:
        """The command an error line numbered ``number`` comes from, and the line within it."""
        if self.bash:
            for command in self.commands:
                if command.eval_line <= number <= command.eval_line + command.line_count:
                    return command, number - command.eval_line
            return None
        if not self.commands:
            return None
        return self.commands[self.current], number - 1

    def rewrite(self, line: str) -> str:
        if line.startswith(SHELL_LINE):
            message = line[1:]
            if message.startswith(_RUNNING):
                self._follow(message[len(_RUNNING) :])
            return _line(message)
        if not line.startswith(self.prefix):
            return line
        found = self.pattern.match(line, len(self.prefix))
        if found is None:
            return line
        located = self._command(int(found[1]))
        rest = found[2]
        if located is None:
            return f"{self.name}: {rest}"
        command, offset = located
        where = self.name
        if command.line:
            where += f" line {command.line + min(max(offset, 0), command.line_count - 1)}"
        where += f", phase {command.phase_key}"
        if self.bash:
            rest = rest.removeprefix("eval: ")
        missing = _MISSING.fullmatch(rest)
        if missing:
            return f"command not found: {missing[1]} ({where})"
        return f"{where}: {rest.removeprefix('eval: ')}"
