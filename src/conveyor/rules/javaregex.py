"""Java regular expressions, as CodePipeline's VariableCheck MATCHES reads them, in Python's re.

CodePipeline's regular expressions follow ``java.util.regex.Pattern``. Python's ``re`` shares most
of that syntax; `compile_java` rewrites the constructs that are spelt differently and refuses
the ones ``re`` has no equivalent for, naming them, rather than matching something else.

Rewritten: named groups ``(?<name>...)`` and back-references ``\\k<name>``; quoting
``\\Q...\\E``; ``\\z`` and ``\\Z``; ``\\h``, ``\\H``, ``\\v``, ``\\V``, ``\\R``, ``\\e``,
``\\cX``, octal ``\\0nnn``; the POSIX and ``java`` classes ``\\p{Alpha}``, ``\\p{Digit}``
and the like, and their ``\\P{...}`` negations.
Java's defaults are kept: ``\\d``, ``\\w``, ``\\s``, ``\\b`` and case-insensitive matching are
ASCII-only, as without Java's UNICODE_CHARACTER_CLASS and UNICODE_CASE flags.

Refused: class intersections (``&&``), Unicode scripts, blocks and categories (``\\p{L}``,
``\\p{IsLatin}``), and the inline flags ``u``, ``U``, ``d`` and ``c``.

Still differing: ``.`` and ``$`` treat only ``\\n`` as a line end, where Java also counts
``\\r``, ``\\u0085``, ``\\u2028`` and ``\\u2029``.
"""

from __future__ import annotations

import re

__all__ = ["JavaRegexError", "compile_java"]


class JavaRegexError(ValueError):
    """The expression is not valid, or uses a construct Python's re cannot match alike."""


_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1f\\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0b\\f\\r",
    "javaLowerCase": "a-z",
    "javaUpperCase": "A-Z",
    "javaWhitespace": " \\t\\n\\x0b\\f\\r\\x1c-\\x1f",
}
_HORIZONTAL = " \\t\\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000"
_VERTICAL = "\\n\\x0b\\f\\r\\x85\\u2028\\u2029"
_LINEBREAK = f"(?:\\r\\n|[{_VERTICAL}])"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_FLAGS = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?[:)]")


def compile_java(pattern: str) -> re.Pattern[str]:
    """Compile a Java regular expression; `JavaRegexError` says why one cannot be."""
    try:
        return re.compile(_translate(pattern), re.ASCII)
    except re.error as error:
        raise JavaRegexError(f"{error.msg} at position {error.pos}") from None


def _translate(pattern: str) -> str:
    out: list[str] = []
    in_class = 0
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            if i + 1 >= n:
                raise JavaRegexError("a trailing backslash ends the expression")
            text, i = _escape(pattern, i + 1, in_class > 0)
            out.append(text)
            continue
        if in_class:
            if char == "[":
                raise JavaRegexError("nested character classes are not supported")
            if pattern.startswith("&&", i):
                raise JavaRegexError("character class intersection (&&) is not supported")
            if char == "]":
                in_class = 0
            out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = 1
            out.append(char)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a leading ] is a literal, as in Java
                out.append("\\]")
                i += 1
            continue
        if pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
            out.append("(?P<")
            i += 3
            continue
        flags = _FLAGS.match(pattern, i)
        if flags is not None:
            unsupported = set((flags.group(1) or "") + (flags.group(2) or "")) & set("uUdc")
            if unsupported:
                raise JavaRegexError(f"the inline flag {min(unsupported)} is not supported")
        out.append(char)
        i += 1
    return "".join(out)


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """The Python spelling of the escape whose letter is at ``pattern[i]``; where it ends."""
    letter = pattern[i]
    if letter == "Q":
        end = pattern.find("\\E", i + 1)
        quoted = pattern[i + 1 :] if end < 0 else pattern[i + 1 : end]
        return re.escape(quoted), (len(pattern) if end < 0 else end + 2)
    if letter == "E":
        return "", i + 1
    if letter in "pP":
        return _property(pattern, i, in_class)
    if letter == "k":
        name = _NAME.match(pattern, i + 2) if pattern.startswith("<", i + 1) else None
        if name is None or not pattern.startswith(">", name.end()):
            raise JavaRegexError("\\k must be followed by <name>")
        return f"(?P={name.group()})", name.end() + 1
    if letter == "c":
        if i + 1 >= len(pattern):
            raise JavaRegexError("\\c must be followed by a character")
        return f"\\x{ord(pattern[i + 1]) ^ 64:02x}", i + 2
    simple = {
        "z": "\\Z",
        "Z": "(?=\\n?\\Z)",
        "e": "\\x1b",
        "h": _HORIZONTAL if in_class else f"[{_HORIZONTAL}]",
        "H": f"[^{_HORIZONTAL}]",
        "v": _VERTICAL if in_class else f"[{_VERTICAL}]",
        "V": f"[^{_VERTICAL}]",
        "R": _LINEBREAK,
    }
    if letter in simple:
        if in_class and letter in "zZRHV":
            raise JavaRegexError(f"\\{letter} is not allowed in a character class")
        return simple[letter], i + 1
    if letter == "0":
        # Java's octal escape: \0 then one to three octal digits, at most \0377.
        digits = re.match(r"[0-3]?[0-7]{1,2}|[0-7]", pattern[i + 1 : i + 4])
        if digits is None:
            raise JavaRegexError("\\0 must be followed by octal digits")
        return f"\\x{int(digits.group(), 8):02x}", i + 1 + digits.end()
    if letter == "x" and pattern.startswith("{", i + 1):
        end = pattern.find("}", i + 2)
        if end < 0:
            raise JavaRegexError("\\x{ is not closed")
        try:
            code = int(pattern[i + 2 : end], 16)
        except ValueError:
            raise JavaRegexError("\\x{...} needs a hexadecimal code point") from None
        return f"\\U{code:08x}", end + 1
    return "\\" + letter, i + 1


def _property(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    negated = pattern[i] == "P"
    if pattern.startswith("{", i + 1):
        end = pattern.find("}", i + 2)
        if end < 0:
            raise JavaRegexError(f"\\{pattern[i]}{{ is not closed")
        name, after = pattern[i + 2 : end], end + 1
    else:
        name, after = pattern[i + 1 : i + 2], i + 2
    name = name.removeprefix("Is") if name.removeprefix("Is") in _POSIX else name
    if name not in _POSIX:
        raise JavaRegexError(f"the character property \\p{{{name}}} is not supported")
    members = _POSIX[name]
    if in_class:
        if negated:
            raise JavaRegexError("a negated property inside a character class is not supported")
        return members, after
    return f"[{'^' if negated else ''}{members}]", after
