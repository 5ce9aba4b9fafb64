"""Trees of files: what one holds, a copy of it, and a used copy made like new again.

`manifest` lists an unpacked artifact's tree. `copy_tree` copies it somewhere else, file by
file (a reflink where the file system has them, a kernel copy otherwise), and returns the
copy's *marks*: the inode and change time of every path as the copy left it. Hard links would
be cheaper than a copy but are not safe: an action that writes a file in place would change
what the next action reads.

`restore` takes a copy that an action has used and makes it equal to the tree again, touching
only what the action changed. The change time (ctime) of a path moves with every change to it
— its data, mode, times, links, extended attributes — and cannot be set back by a program, and
a folder's moves whenever a name in it is added, removed or renamed. So a path whose inode and
change time still match its mark is exactly as the copy left it, and only the folders whose
mark moved need their names read. A copy an action did not touch costs one `lstat` per path.
Those times come from a coarse clock: `_settle` says how marks made within its last tick are
handled.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass

__all__ = ["Copier", "Entry", "Marks", "NoSource", "copy_tree", "manifest", "marks_of", "restore"]

_FICLONE = 0x40049409  # ioctl: make the target share the source's extents (copy-on-write)
_NOT_CLONED = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS}
_TICK_WAIT = 0.05  # the longest `_settle` waits for the file system's clock to move, seconds

# Relative path → (inode, change time in ns) of each path of a copy, as the copy left it.
Marks = dict[str, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Entry:
    """One path in a tree: relative name, kind (``d``, ``f``, ``l``), mode, mtime in ns
    (files), size (files) or link target (links)."""

    rel: str
    kind: str
    mode: int
    mtime_ns: int = 0
    size: int = 0
    target: str = ""


def manifest(root: str) -> tuple[tuple[Entry, ...], bool]:
    """The tree under ``root``, parents before children; whether it can be copied as it is:
    every link relative, every file readable and every folder searchable by its owner."""
    entries: list[Entry] = []
    portable = True
    pending = [""]
    while pending:
        prefix = pending.pop()
        with os.scandir(os.path.join(root, prefix) if prefix else root) as scan:
            for child in scan:
                rel = prefix + child.name
                info = child.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    entries.append(Entry(rel, "d", stat.S_IMODE(info.st_mode)))
                    portable = portable and info.st_mode & 0o500 == 0o500
                    pending.append(rel + "/")
                elif stat.S_ISLNK(info.st_mode):
                    target = os.readlink(child.path)
                    portable = portable and not os.path.isabs(target)
                    entries.append(Entry(rel, "l", 0, target=target))
                else:
                    mode = stat.S_IMODE(info.st_mode)
                    portable = portable and mode & 0o400 != 0
                    entries.append(Entry(rel, "f", mode, info.st_mtime_ns, info.st_size))
    return tuple(entries), portable


def children(entries: tuple[Entry, ...]) -> dict[str, frozenset[str]]:
    """Each folder's names (``""`` is the root's), for finding what an action added."""
    names: dict[str, set[str]] = {"": set()}
    for entry in entries:
        parent, _, name = entry.rel.rpartition("/")
        names.setdefault(parent, set()).add(name)
        if entry.kind == "d":
            names.setdefault(entry.rel, set())
    return {folder: frozenset(found) for folder, found in names.items()}


class Copier:
    """Copies files by reflink while the file system takes them, by the kernel otherwise."""

    def __init__(self) -> None:
        self.clone = True

    def copy(self, source: str, target: str, entry: Entry) -> tuple[int, int]:
        """Copy one file; its mark (inode, change time) once its mode and times are set."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        reader = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        try:
            writer = os.open(target, flags, 0o600)
            try:
                if entry.size:
                    self._data(reader, writer, entry.size)
                os.fchmod(writer, entry.mode)
                os.utime(writer, ns=(entry.mtime_ns, entry.mtime_ns))
                info = os.fstat(writer)
                return info.st_ino, info.st_ctime_ns
            finally:
                os.close(writer)
        finally:
            os.close(reader)

    def _data(self, reader: int, writer: int, size: int) -> None:
        if self.clone:
            try:
                fcntl.ioctl(writer, _FICLONE, reader)
                return
            except OSError as error:
                if error.errno not in _NOT_CLONED:
                    raise
                self.clone = False
        left = size
        while left > 0:
            copied = os.copy_file_range(reader, writer, left)
            if copied == 0:
                break
            left -= copied
        if left > 0:  # the file was shorter than it was unpacked: cannot happen unless changed
            raise OSError(errno.EIO, "unpacked file changed size")


def _mark(path: str) -> tuple[int, int]:
    info = os.lstat(path)
    return info.st_ino, info.st_ctime_ns


class NoSource(OSError):
    """A file must be made again and there is no tree to copy it from."""


def _make(copier: Copier, root: str | None, target: str, entry: Entry, marks: Marks) -> None:
    """Make one path of the tree in the copy (a folder's mode and mark come at the end)."""
    path = os.path.join(target, entry.rel)
    if entry.kind == "f" and root is None:
        raise NoSource(errno.ENOENT, "no tree to copy from", entry.rel)
    if entry.kind == "d":
        os.mkdir(path, 0o700)
    elif entry.kind == "l":
        os.symlink(entry.target, path)
        marks[entry.rel] = _mark(path)
    else:
        assert root is not None
        marks[entry.rel] = copier.copy(os.path.join(root, entry.rel), path, entry)


def _seal(target: str, folders: list[Entry], marks: Marks) -> None:
    """Give folders their modes, children first, and mark them once nothing more changes."""
    for entry in sorted(folders, key=lambda e: e.rel.count("/"), reverse=True):
        path = os.path.join(target, entry.rel)
        os.chmod(path, entry.mode)
        marks[entry.rel] = _mark(path)


def _settle(marks: Marks, clock: str) -> None:
    """Return once the marks can be trusted: once the file system's clock has moved past them.

    File times come from a clock that ticks every few milliseconds, so a change made in the
    same tick as a mark would leave the mark as it was. Touching ``clock`` (a file on the
    same file system) reads that clock; while it has not moved past the newest mark, wait
    (a tick at most, and only when something was just made). Should it not move, the newest
    marks are kept with no time, so those paths are checked again by their contents next
    time (made again or, for a folder, its names read).
    """
    newest = max((changed for _, changed in marks.values()), default=-1)
    deadline = time.monotonic() + _TICK_WAIT
    while True:
        os.utime(clock)
        now = os.lstat(clock).st_ctime_ns
        if now > newest:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.0005)
    for rel, (inode, changed) in marks.items():
        if changed >= now:
            marks[rel] = (inode, -1)


def copy_tree(
    copier: Copier, root: str, entries: tuple[Entry, ...], target: str, clock: str
) -> Marks:
    """Copy the tree at ``root`` (listed by ``entries``) into ``target``; the copy's marks.
    ``clock`` is a file on the same file system, touched to read its clock."""
    os.makedirs(target, exist_ok=True)
    marks: Marks = {}
    for entry in entries:
        _make(copier, root, target, entry, marks)
    _seal(target, [entry for entry in entries if entry.kind == "d"], marks)
    _settle(marks, clock)
    return marks


def remove_tree(path: str) -> None:
    """Remove the folder ``path`` and what is in it, never following a link out of it (one is
    removed, not its target), however deep it goes (Python's own removal recurses)."""
    try:
        shutil.rmtree(path)
    except RecursionError:
        done = subprocess.run(
            ["rm", "-rf", "--one-file-system", "--", path], capture_output=True, check=False
        )
        if done.returncode != 0:
            raise OSError(errno.EIO, done.stderr.decode(errors="replace").strip(), path) from None


def _remove(path: str, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        remove_tree(path)
    else:
        os.unlink(path)


def marks_of(target: str, entries: tuple[Entry, ...], clock: str) -> Marks:
    """The marks of a tree that is at ``target`` as ``entries`` list it (just unpacked)."""
    held = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        marks: Marks = {}
        for entry in entries:
            found = os.stat(entry.rel, dir_fd=held, follow_symlinks=False)
            marks[entry.rel] = (found.st_ino, found.st_ctime_ns)
    finally:
        os.close(held)
    _settle(marks, clock)
    return marks


def _untouched(entries: tuple[Entry, ...], target: str, marks: Marks) -> bool:
    """Whether every path of the copy still has its mark (names added aside)."""
    held = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in entries:
            try:
                found = os.stat(entry.rel, dir_fd=held, follow_symlinks=False)
            except OSError:
                return False
            if marks.get(entry.rel) != (found.st_ino, found.st_ctime_ns):
                return False
        return True
    finally:
        os.close(held)


def _drop_extra_names(folder: str, expected: frozenset[str]) -> bool:
    """Remove what is in ``folder`` beyond the ``expected`` names; whether there was any."""
    with os.scandir(folder) as scan:
        extra = [child for child in scan if child.name not in expected]
    for child in extra:
        _remove(child.path, child.stat(follow_symlinks=False))
    return bool(extra)


def restore(
    copier: Copier,
    root: str | None,
    entries: tuple[Entry, ...],
    names: dict[str, frozenset[str]],
    target: str,
    marks: Marks,
    mode: int,
    clock: str,
) -> None:
    """Make the used copy at ``target`` (a folder of mode ``mode``) equal to the tree at
    ``root`` again, updating ``marks`` (``clock`` as for `copy_tree`); raises `OSError` when
    it cannot (the caller then makes a new copy): `NoSource` when a file must be made again
    and ``root`` is None (the tree is not at hand; names an action added can go without)."""
    info = os.lstat(target)
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", target)
    if stat.S_IMODE(info.st_mode) != mode:
        os.chmod(target, mode)
    if _untouched(entries, target, marks):
        _drop_extra_names(target, names.get("", frozenset()))
        return
    _repair(copier, root, entries, names, target, marks)
    _settle(marks, clock)


def _repair(
    copier: Copier,
    root: str | None,
    entries: tuple[Entry, ...],
    names: dict[str, frozenset[str]],
    target: str,
    marks: Marks,
) -> None:
    """Make again each path whose mark moved; read the names of each folder whose did."""
    changed: set[str] = set()  # folders this changes something in, opened for writing
    folders = {entry.rel: entry for entry in entries if entry.kind == "d"}

    def opened(folder: str) -> str:
        if folder not in changed:
            changed.add(folder)
            if folder:  # the root keeps the mode the copy was made with
                os.chmod(os.path.join(target, folder), 0o700)
        return os.path.join(target, folder) if folder else target

    reread = [""]  # folders whose names must be read: the root always (moving it marks it)
    for entry in entries:
        parent = entry.rel.rpartition("/")[0]
        if entry.rel not in marks and parent in changed and parent not in reread:
            opened(parent)  # under a folder made again just now: nothing there yet
            _make(copier, root, target, entry, marks)
            if entry.kind == "d":
                opened(entry.rel)
            continue
        path = os.path.join(target, entry.rel)
        try:
            found: os.stat_result | None = os.lstat(path)
        except FileNotFoundError:
            found = None
        mark = marks.get(entry.rel)
        if found is not None and mark == (found.st_ino, found.st_ctime_ns):
            continue
        same_folder = entry.kind == "d" and found is not None and stat.S_ISDIR(found.st_mode)
        if same_folder and mark is not None and found is not None and mark[0] == found.st_ino:
            reread.append(entry.rel)  # the same folder: its names or its mode changed
            if stat.S_IMODE(found.st_mode) != entry.mode:
                opened(entry.rel)
            continue
        opened(parent)
        if found is not None:
            _remove(path, found)
        marks.pop(entry.rel, None)
        if entry.kind == "d":  # what the tree has under it goes with it
            below = entry.rel + "/"
            for rel in [rel for rel in marks if rel.startswith(below)]:
                del marks[rel]
        _make(copier, root, target, entry, marks)
        if entry.kind == "d":
            opened(entry.rel)
    for folder in reread:
        path = os.path.join(target, folder) if folder else target
        expected = names.get(folder, frozenset())
        with os.scandir(path) as scan:
            if any(child.name not in expected for child in scan):
                _drop_extra_names(opened(folder), expected)
    _seal(target, [folders[rel] for rel in changed if rel in folders], marks)
