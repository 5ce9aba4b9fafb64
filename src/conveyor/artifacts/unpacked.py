"""Artifacts unpacked once and copied into each action's workspace from there.

Every action of an execution that reads the same artifact would otherwise fetch and unpack the
same zip, checking every entry again; with a source of thousands of files that dominates the
action. `Unpacked` keeps each object it has unpacked (named by bucket, key and the object's ETag,
size and version, so a rewritten object is never taken for the old one) in a folder of its own
with a manifest of what is there, and `materialise` copies it into a destination instead.

The copy is one file at a time: a reflink where the file system has them (copy-on-write, no data
copied), a kernel copy otherwise. Hard links would be cheaper still but are not safe: an action
that writes a file in place (``echo x > file``) would change the unpacked copy that the next
action, or a concurrent one, reads. Modes, modification times and symbolic links come out
exactly as `archive.unpack` leaves them. An archive with a link to an absolute path, one that
cannot be unpacked, or a destination that already has something in it, is unpacked directly as
before, since only a plain unpack checks those against the destination itself.

Unpacked objects are kept up to a bound, least recently used first out, and removed off the
caller's path; one being copied is never removed. Each instance works in a folder of its own,
held by a lock file, so folders left by a process that died are recognised and removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
import stat
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from conveyor.artifacts import ArtifactError, ArtifactStore
from conveyor.artifacts.archive import unpack

__all__ = ["Unpacked"]

_FICLONE = 0x40049409  # ioctl: make the target share the source's extents (copy-on-write)
_NOT_CLONED = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS}
_KEPT = 64  # unpacked objects kept
_KEPT_BYTES = 2 << 30  # and the most their files may take together
_LOCK = ".lock"
_Key = tuple[str, str, str, int, str | None]


@dataclass(frozen=True, slots=True)
class _Entry:
    """One path in an unpacked tree: relative name, kind (``d``, ``f``, ``l``), mode, mtime in ns
    (files), size (files) or link target (links)."""

    rel: str
    kind: str
    mode: int
    mtime_ns: int = 0
    size: int = 0
    target: str = ""


class _Tree:
    """An unpacked object: its folder, its manifest, and how many copies are being made."""

    def __init__(
        self, folder: Path, count: int, entries: tuple[_Entry, ...], portable: bool
    ) -> None:
        self.folder = folder
        self.count = count  # what `archive.unpack` counted: the archive's entries
        self.entries = entries
        self.portable = portable
        self.size = sum(entry.size for entry in entries)
        self.users = 0


def _manifest(root: str) -> tuple[tuple[_Entry, ...], bool]:
    """The tree under ``root``, parents before children; whether it can be copied as it is:
    every link relative, every file readable and every folder searchable by its owner."""
    entries: list[_Entry] = []
    portable = True
    pending = [""]
    while pending:
        prefix = pending.pop()
        with os.scandir(os.path.join(root, prefix) if prefix else root) as scan:
            for child in scan:
                rel = prefix + child.name
                info = child.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    entries.append(_Entry(rel, "d", stat.S_IMODE(info.st_mode)))
                    portable = portable and info.st_mode & 0o500 == 0o500
                    pending.append(rel + "/")
                elif stat.S_ISLNK(info.st_mode):
                    target = os.readlink(child.path)
                    portable = portable and not os.path.isabs(target)
                    entries.append(_Entry(rel, "l", 0, target=target))
                else:
                    mode = stat.S_IMODE(info.st_mode)
                    portable = portable and mode & 0o400 != 0
                    entries.append(_Entry(rel, "f", mode, info.st_mtime_ns, info.st_size))
    return tuple(entries), portable


class _Copier:
    """Copies files by reflink while the file system takes them, by the kernel otherwise."""

    def __init__(self) -> None:
        self.clone = True

    def copy(self, source: str, target: str, entry: _Entry) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        reader = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        try:
            writer = os.open(target, flags, 0o600)
            try:
                if entry.size:
                    self._data(reader, writer, entry.size)
                os.fchmod(writer, entry.mode)
                os.utime(writer, ns=(entry.mtime_ns, entry.mtime_ns))
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


class Unpacked:
    """A bounded set of unpacked artifacts under ``root``, copied into workspaces on demand."""

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int | None = None,
        kept: int = _KEPT,
        kept_bytes: int = _KEPT_BYTES,
    ) -> None:
        self.max_bytes = max_bytes
        self._root = root
        self._kept = kept
        self._kept_bytes = kept_bytes
        self._folder: Path | None = None  # made on first use
        self._trees: OrderedDict[_Key, _Tree] = OrderedDict()
        self._unpacking: dict[_Key, threading.Lock] = {}
        self._lock = threading.Lock()
        self._copier = _Copier()

    def _work(self) -> Path:
        """This instance's folder, made (and its lock taken) the first time it is needed."""
        with self._lock:
            if self._folder is None:
                name = secrets.token_hex(8)
                try:
                    self._root.mkdir(parents=True, exist_ok=True)
                    lock = self._root / f"{name}{_LOCK}"
                    held = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    weakref.finalize(self, os.close, held)  # held for as long as this lives
                    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    (self._root / name).mkdir()
                except OSError as error:
                    raise ArtifactError(f"Cannot keep unpacked artifacts: {error}") from error
                self._folder = self._root / name
                _in_background(_remove_stale, self._root)
            return self._folder

    def materialise(
        self, store: ArtifactStore, bucket: str, key: str, destination: Path, *, scratch: Path
    ) -> int:
        """Make ``destination`` hold the artifact's files as `archive.unpack` would; count
        the entries (raises `ArtifactError` as unpacking does). ``scratch`` is where the zip
        may be put when it has to be unpacked directly."""
        info = store.stat(bucket, key)
        if info is None:
            raise ArtifactError(f"No object {key} in bucket {bucket}")
        name: _Key = (bucket, key, info.etag, info.size, info.version_id)
        if _has_content(destination):
            return self._unpack_directly(store, bucket, key, destination, scratch)
        try:
            tree = self._acquire(store, name)
        except ArtifactError:
            # Refused where it was unpacked for sharing; an absolute link may still be fine
            # where it is going, and otherwise the error names the destination as before.
            return self._unpack_directly(store, bucket, key, destination, scratch)
        try:
            if not tree.portable:
                return self._unpack_directly(store, bucket, key, destination, scratch)
            return self._copy(tree, destination)
        finally:
            self._release(name, tree)

    def _unpack_directly(
        self, store: ArtifactStore, bucket: str, key: str, destination: Path, scratch: Path
    ) -> int:
        store.get(bucket, key, scratch)
        try:
            return unpack(scratch, destination, max_bytes=self.max_bytes)
        finally:
            scratch.unlink(missing_ok=True)

    def _acquire(self, store: ArtifactStore, name: _Key) -> _Tree:
        """The unpacked tree of ``name``, unpacking it first if no one has; marked in use."""
        while True:
            with self._lock:
                tree = self._trees.get(name)
                if tree is not None:
                    self._trees.move_to_end(name)
                    tree.users += 1
                    return tree
                guard = self._unpacking.setdefault(name, threading.Lock())
            with guard:
                with self._lock:
                    if name in self._trees:
                        continue
                try:
                    tree = self._unpack(store, name)
                finally:
                    with self._lock:
                        self._unpacking.pop(name, None)
                with self._lock:
                    self._trees[name] = tree
                    tree.users += 1
                    evicted = self._evict()
                for old in evicted:
                    _in_background(shutil.rmtree, old.folder, True)
                return tree

    def _unpack(self, store: ArtifactStore, name: _Key) -> _Tree:
        bucket, key = name[0], name[1]
        folder = self._work() / secrets.token_hex(8)
        archive = folder.with_suffix(".zip")
        try:
            store.get(bucket, key, archive)
            count = unpack(archive, folder, max_bytes=self.max_bytes)
            try:
                entries, portable = _manifest(str(folder))
            except OSError:
                entries, portable = (), False
        except BaseException:
            _in_background(shutil.rmtree, folder, True)
            raise
        finally:
            archive.unlink(missing_ok=True)
        return _Tree(folder, count, entries, portable)

    def _release(self, name: _Key, tree: _Tree) -> None:
        with self._lock:
            tree.users -= 1
            evicted = self._evict()
        for old in evicted:
            _in_background(shutil.rmtree, old.folder, True)

    def _evict(self) -> list[_Tree]:
        """Drop the least recently used unused trees beyond the bound (caller holds the lock)."""
        evicted: list[_Tree] = []
        size = sum(tree.size for tree in self._trees.values())
        for name in list(self._trees):
            if len(self._trees) <= self._kept and size <= self._kept_bytes:
                break
            if self._trees[name].users == 0:
                tree = self._trees.pop(name)
                size -= tree.size
                evicted.append(tree)
        return evicted

    def _copy(self, tree: _Tree, destination: Path) -> int:
        root = str(tree.folder)
        target = str(destination)
        try:
            os.makedirs(target, exist_ok=True)
            for entry in tree.entries:
                source, path = os.path.join(root, entry.rel), os.path.join(target, entry.rel)
                if entry.kind == "d":
                    os.mkdir(path, 0o700)
                elif entry.kind == "l":
                    os.symlink(entry.target, path)
                else:
                    self._copier.copy(source, path, entry)
            for entry in reversed(tree.entries):
                if entry.kind == "d":
                    os.chmod(os.path.join(target, entry.rel), entry.mode)
        except OSError as error:
            raise ArtifactError(f"Cannot copy the unpacked artifact: {error}") from error
        return tree.count


def _has_content(folder: Path) -> bool:
    try:
        with os.scandir(folder) as scan:
            return next(scan, None) is not None
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        return True


def _remove_stale(root: Path) -> None:
    """Remove the folders of instances whose lock nobody holds any more (their process died)."""
    for lock in root.glob(f"*{_LOCK}"):
        try:
            with open(lock, "a") as held:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(root / lock.name.removesuffix(_LOCK), ignore_errors=True)
                lock.unlink()
        except OSError:
            continue


def _in_background(function: object, *args: object) -> None:
    """Run a clean-up off the caller's path; it must not fail loudly."""

    def run() -> None:
        with contextlib.suppress(Exception):
            function(*args)  # type: ignore[operator]

    threading.Thread(target=run, name="conveyor-unpacked-cleaner", daemon=True).start()
