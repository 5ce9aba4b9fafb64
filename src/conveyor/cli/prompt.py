"""Asking for a manual approval at the terminal while the run goes on.

Nothing stops for the question: the watch loop reads the terminal as keys arrive (it waits on
standard input beside the engine's wake-ups), so the live view keeps redrawing, its clock
keeps running, other actions keep reporting, and Ctrl-C still stops the run. Under the live
view the terminal gives keys one at a time with its echo off, and the view draws what is
typed; under plain lines the terminal is left as it is, edits the line itself, and hands it
over when Enter is pressed.
"""

from __future__ import annotations

import codecs
import os
import termios
from dataclasses import dataclass, field

from conveyor.cli.rows import Row

_ERASE = ("\x7f", "\b")
_KILL = "\x15"  # Ctrl-U
_EOF = "\x04"  # Ctrl-D


class Keys:
    """The terminal at ``fd`` giving keys as they are pressed, unechoed, until `close`.

    Signals still work (Ctrl-C is a SIGINT), so the run's handlers keep their say.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._saved = termios.tcgetattr(fd)
        mode = termios.tcgetattr(fd)
        mode[3] &= ~(termios.ICANON | termios.ECHO)
        mode[6][termios.VMIN] = 1
        mode[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, mode)

    def close(self) -> None:
        termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)


@dataclass
class Line:
    """The line being typed: `feed` it what the terminal sent, get back the lines ended.

    A line ends with Enter; None stands for the end of input (Ctrl-D on an empty line, or a
    terminal that closed). Escape sequences (arrow keys and the like) are dropped.
    """

    text: str = ""
    _decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace")
    )
    _escape: bool = False

    def feed(self, data: bytes) -> list[str | None]:
        if not data:
            return [None]
        ended: list[str | None] = []
        for char in self._decoder.decode(data):
            if self._escape:
                self._escape = char in "[O0123456789;?"
            elif char == "\x1b":
                self._escape = True
            elif char in "\r\n":
                ended.append(self.text)
                self.text = ""
            elif char in _ERASE:
                self.text = self.text[:-1]
            elif char == _KILL:
                self.text = ""
            elif char == _EOF:
                if not self.text:
                    ended.append(None)
            elif char.isprintable():
                self.text += char
        return ended


@dataclass
class Question:
    """One approval being asked: approve or not, then an optional comment."""

    row: Row
    line: Line = field(default_factory=Line)
    approved: bool | None = None

    @property
    def prompt(self) -> str:
        return "Approve? [y/N] " if self.approved is None else "Comment (optional): "

    def request(self) -> list[str]:
        """What the approval asks, shown once before the first prompt."""
        lines = [f"{self.row.name} waits for your approval."]
        for key, label in (("CustomData", "Comments"), ("ExternalEntityLink", "Review")):
            if self.row.configuration.get(key):
                lines.append(f"  {label}: {self.row.configuration[key]}")
        return lines

    def take(self, line: str | None) -> tuple[bool, str] | None:
        """Take one line typed; the decision and comment once both are in, else None.

        The end of input rejects, as a question nobody can answer must not approve.
        """
        if line is None:
            return False, ""
        if self.approved is None:
            self.approved = line.strip().lower() in ("y", "yes")
            return None
        return self.approved, line.strip()


def read_available(fd: int) -> bytes:
    """What the terminal has for us now (``b""``: it is closed)."""
    try:
        return os.read(fd, 1024)
    except BlockingIOError:
        return b"\x00"  # nothing after all: a byte `Line` ignores
    except OSError:
        return b""
