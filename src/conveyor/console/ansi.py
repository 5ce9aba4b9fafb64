"""ANSI colour codes in a log turned into HTML spans, everything else escaped.

Build tools colour their output with SGR sequences (``ESC[1;31m``). The log page keeps the
colours as CSS classes (``fg1`` … ``fg15``, ``bg0`` … ``bg7``, ``b``, ``u``) so that each
theme picks its own shades, and drops every other control sequence (cursor moves, titles).
The state (colour, bold) carries from one chunk of a followed log to the next.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

_ESCAPE = re.compile(r"\x1b\[([0-9;]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b.")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Ansi:
    """A converter that remembers the style between calls."""

    fg: int | None = None
    bg: int | None = None
    flags: set[str] = field(default_factory=set)

    def _classes(self) -> str:
        names = sorted(self.flags)
        if self.fg is not None:
            names.append(f"fg{self.fg}")
        if self.bg is not None:
            names.append(f"bg{self.bg}")
        return " ".join(names)

    def _apply(self, params: str) -> None:
        codes = [int(p) if p else 0 for p in params.split(";")] if params else [0]
        for code in codes:
            if code == 0:
                self.fg, self.bg, self.flags = None, None, set()
            elif code == 1:
                self.flags.add("b")
            elif code == 4:
                self.flags.add("u")
            elif code == 22:
                self.flags.discard("b")
            elif code == 24:
                self.flags.discard("u")
            elif 30 <= code <= 37:
                self.fg = code - 30
            elif 90 <= code <= 97:
                self.fg = code - 90 + 8
            elif code == 39:
                self.fg = None
            elif 40 <= code <= 47:
                self.bg = code - 40
            elif code == 49:
                self.bg = None

    def _text(self, text: str) -> str:
        text = html.escape(_CONTROL.sub("", text), quote=False)
        if not text:
            return ""
        classes = self._classes()
        return f'<span class="{classes}">{text}</span>' if classes else text

    def convert(self, text: str) -> str:
        """``text`` as HTML, styled as its escape sequences say."""
        out = []
        position = 0
        for match in _ESCAPE.finditer(text):
            out.append(self._text(text[position : match.start()]))
            if match[2] == "m":
                self._apply(match[1])
            position = match.end()
        out.append(self._text(text[position:]))
        return "".join(out)


def to_html(text: str) -> str:
    return Ansi().convert(text)
