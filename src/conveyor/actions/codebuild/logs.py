"""The build log: CodeBuild-style ``[Container]`` lines, and secrets masked as ``***``.

`container` writes one timestamped line the way CodeBuild's agent does (the shell writes the
same format for phases and commands). `MaskedLog` stands in for the job log while a build with
secret values runs: every write has each secret replaced before it reaches the real log.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime
from typing import TextIO

__all__ = ["MaskedLog", "container", "mask"]

MASK = "***"


def container(log: TextIO, message: str) -> None:
    stamp = datetime.now().strftime("%Y/%m/%d %H:%M:%S.%f")
    log.write(f"[Container] {stamp} {message}\n")
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
