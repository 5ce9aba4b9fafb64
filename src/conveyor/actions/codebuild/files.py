"""Choosing files by buildspec globs, and laying them out for packing or caching.

`select` walks a folder for the paths that ``files``/``paths`` globs choose (``*`` within a
folder, ``**`` across folders, a pattern naming a folder takes its whole content; each pattern
walks only from its literal leading folders) minus the ``exclude-paths`` globs. Symbolic links
that stay inside the folder are kept as links when asked; any other link is followed, so the
file it points to is taken instead, as long as it lies within the build's folders (a runner
on a shared host must not pack the host's files); loops are skipped. `stage` hard-links (or
copies) a selection into a fresh folder.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from conveyor.artifacts.archive import EVERYTHING, glob_regex

__all__ = ["Entry", "base_directories", "select", "stage"]

_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class Entry:
    """A chosen path: ``kind`` is ``file``, ``link`` (kept as a link, ``target`` relative) or
    ``dir`` (an empty folder)."""

    rel: str
    source: str
    kind: str
    target: str = ""


class _Walk:
    def __init__(
        self, base: str, within: str, exclude: re.Pattern[str] | None, links: bool
    ) -> None:
        self.base = base
        self.within = within
        self.include = EVERYTHING
        self.exclude = exclude
        self.links = links
        self.out: dict[str, Entry] = {}

    def folder(self, path: str, real: str, prefix: str, taken: bool) -> None:
        try:
            with os.scandir(path) as scan:
                names = sorted(entry.name for entry in scan)
        except OSError:
            return
        for name in names:
            self.visit(os.path.join(path, name), real, prefix + name, taken)

    def visit(self, path: str, parent_real: str, rel: str, taken: bool) -> None:
        if self.exclude is not None and self.exclude.fullmatch(rel):
            return
        wanted = taken or self.include.fullmatch(rel) is not None
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return
        if stat.S_ISLNK(mode):
            self.link(path, parent_real, rel, wanted)
        elif stat.S_ISDIR(mode):
            self.subfolder(path, os.path.join(parent_real, os.path.basename(path)), rel, wanted)
        elif stat.S_ISREG(mode) and wanted:
            self.out.setdefault(rel, Entry(rel, path, "file"))

    def subfolder(self, path: str, real: str, rel: str, wanted: bool) -> None:
        before = len(self.out)
        self.folder(path, real, rel + "/", wanted)
        if wanted and len(self.out) == before:
            self.out.setdefault(rel, Entry(rel, path, "dir"))

    def link(self, path: str, parent_real: str, rel: str, wanted: bool) -> None:
        target = os.path.realpath(path)
        if self.links and (target == self.base or target.startswith(self.base + os.sep)):
            if wanted:
                here = os.path.dirname(os.path.join(self.base, rel))
                relative = os.path.relpath(target, here)
                self.out.setdefault(rel, Entry(rel, path, "link", relative))
            return
        if not (target == self.within or target.startswith(self.within + os.sep)):
            return  # it leads out of the build's folders
        if os.path.isdir(target):
            if parent_real == target or parent_real.startswith(target + os.sep):
                return  # a loop back to a folder being walked
            self.subfolder(target, target, rel, wanted)
        elif os.path.isfile(target) and wanted:
            self.out.setdefault(rel, Entry(rel, target, "file"))


def _split(pattern: str) -> tuple[str, bool]:
    """A glob's literal leading folders, and whether the whole glob is literal."""
    parts = [part for part in pattern.strip().strip("/").split("/") if part not in ("", ".")]
    literal: list[str] = []
    while parts and not _MAGIC.search(parts[0]):
        literal.append(parts.pop(0))
    return "/".join(literal), not parts


def select(
    base: Path,
    patterns: Iterable[str],
    exclude: Sequence[str] = (),
    *,
    keep_links: bool = False,
    within: Path | None = None,
) -> list[Entry]:
    """The entries under ``base`` that ``patterns`` choose and ``exclude`` does not; links
    are followed only to targets under ``within`` (default: ``base``)."""
    real = os.path.realpath(base)
    bound = real if within is None else os.path.realpath(within)
    walk = _Walk(real, bound, glob_regex(exclude) if exclude else None, keep_links)
    for pattern in patterns:
        prefix, literal = _split(pattern)
        if ".." in prefix.split("/"):
            continue
        walk.include = glob_regex([pattern])
        if literal and prefix:
            parent = os.path.realpath(os.path.join(real, os.path.dirname(prefix)))
            walk.visit(os.path.join(real, prefix), parent, prefix, False)
            continue
        start = os.path.join(real, prefix) if prefix else real
        if os.path.isdir(start):
            walk.folder(start, os.path.realpath(start), f"{prefix}/" if prefix else "", False)
    return sorted(walk.out.values(), key=lambda entry: entry.rel)


def base_directories(root: Path, pattern: str | None) -> list[Path]:
    """``base-directory``: the folders under ``root`` its glob names (``root`` when None)."""
    if not pattern:
        return [root]
    clean = pattern.strip().strip("/")
    if clean.startswith("/") or ".." in clean.split("/"):
        return []
    return sorted(p for p in root.glob(clean) if p.is_dir())


def _place(entry: Entry, target: Path, hardlink: bool) -> None:
    path = target / entry.rel
    if path.exists() or path.is_symlink():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if entry.kind == "dir":
        path.mkdir()
    elif entry.kind == "link":
        os.symlink(entry.target or os.readlink(entry.source), path)
    else:
        if hardlink:
            try:
                os.link(entry.source, path)
                return
            except OSError:
                pass
        shutil.copy2(entry.source, path)


def stage(entries: Iterable[Entry], target: Path, *, hardlink: bool = True) -> int:
    """Lay ``entries`` out under ``target`` (hard links when possible); how many."""
    count = 0
    for entry in entries:
        _place(entry, target, hardlink)
        count += 1
    return count
