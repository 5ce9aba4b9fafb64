"""Artifacts unpacked once per execution and lent to each action that reads them.

Every action of an execution that reads the same artifact would otherwise fetch and unpack the
same zip, checking every entry again; with a source of thousands of files that dominates the
action. `Unpacked` keeps each object it has unpacked (named by bucket, key and the object's ETag,
size and version, so a rewritten object is never taken for the old one) with a manifest of what
is there, and `materialise` lends a copy of it to a destination instead.

Once the action is over, the worker hands the copy back (`reclaim`), and the next action that
reads the same artifact gets it made like new by `trees.restore`, which touches only what the
action changed (with an untouched source of thousands of files that is one `lstat` each,
instead of creating them all again). The first action takes the unpacked folder itself; a
copy of a folder (`trees.copy_tree`) is made only for actions that run at the same time, or
once an action has changed one of the tree's files, since a changed file is made again from
such a folder (names an action only added are simply removed). Modes, modification times and
symbolic links come out exactly as `archive.unpack` leaves them. A copy is not taken back while
a process works in it (one the action left behind, having escaped its process group), and what
the action added at its top is moved out as it is handed back and removed in the background.
An archive with a link to an absolute path, one that cannot be unpacked, or a destination that
already has something in it, is unpacked directly as before, since only a plain unpack checks
those against the destination itself.

Unpacked objects are kept up to a bound, least recently used first out, and removed off the
caller's path; one being copied is never removed. Each instance works in a folder of its own,
held by a lock file, so folders left by a process that died are recognised and removed.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import threading
import weakref
import zipfile
from collections import OrderedDict
from pathlib import Path

from conveyor.artifacts import ArtifactError, ArtifactStore
from conveyor.artifacts.archive import align, unpack
from conveyor.artifacts.copies import LOCK, Copy, in_background, in_use, remove_stale
from conveyor.artifacts.trees import (
    Copier,
    Entry,
    NoSource,
    children,
    copy_tree,
    manifest,
    marks_of,
    remove_tree,
    restore,
)

__all__ = ["Unpacked"]

_KEPT = 64  # unpacked objects kept
_KEPT_BYTES = 2 << 30  # and the most their files may take together, copies kept included
_SPARES = 4  # used copies kept for each unpacked object
_Key = tuple[str, str, str, int, str | None]


class _Tree:
    """An unpacked object: its folder (None while it is lent out itself), its manifest, how
    many calls are using it, and the used copies handed back, ready to be made like new."""

    def __init__(
        self, folder: Path, count: int, entries: tuple[Entry, ...], portable: bool
    ) -> None:
        self.folder: Path | None = folder
        self.count = count  # what `archive.unpack` counted: the archive's entries
        self.entries = entries
        self.names = children(entries)
        self.portable = portable
        self.size = sum(entry.size for entry in entries)
        self.users = 0
        self.out = 0  # copies lent and not handed back yet
        self.spares: list[Copy] = []
        # While no action has changed a file of the tree, its folder is lent out itself and a
        # copy made only for actions that run at the same time; once one has, a folder is kept
        # to make changed files again from.
        self.lend_own = True
        self.unpacking = threading.Lock()

    @property
    def kept_bytes(self) -> int:
        return self.size * (len(self.spares) + (self.folder is not None))


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
        # Destination → the tree and copy lent there, until the copy is handed back.
        self._lent: dict[str, tuple[_Tree, Copy]] = {}
        self._lock = threading.Lock()
        self._copier = Copier()
        self._clock_file: str | None = None

    def _work(self) -> Path:
        """This instance's folder, made (and its lock taken) the first time it is needed."""
        with self._lock:
            if self._folder is None:
                name = secrets.token_hex(8)
                try:
                    self._root.mkdir(parents=True, exist_ok=True)
                    lock = self._root / f"{name}{LOCK}"
                    held = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    weakref.finalize(self, os.close, held)  # held for as long as this lives
                    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    (self._root / name).mkdir()
                except OSError as error:
                    raise ArtifactError(f"Cannot keep unpacked artifacts: {error}") from error
                self._folder = self._root / name
                in_background(remove_stale, self._root)
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
            return self._lend(store, name, tree, destination)
        finally:
            self._release(name, tree)

    def adopt(self, store: ArtifactStore, bucket: str, key: str, tree: Path, archive: Path) -> bool:
        """Keep ``tree`` as the unpacked object at ``key``, which was just stored from
        ``archive``, itself just packed from the whole of ``tree`` (a source's checkout): the
        first action to read the object then finds it unpacked, where it would have made
        every file again. The tree is moved here, its modes and times made as unpacking the
        archive sets them, and kept only if it then lists exactly as the archive would
        unpack. Whether it was kept: one that was not is removed, or left where it is when
        it cannot be moved."""
        info = store.stat(bucket, key)
        if info is None:
            return False
        name: _Key = (bucket, key, info.etag, info.size, info.version_id)
        folder = self._work() / secrets.token_hex(8)
        try:
            os.rename(tree, folder)
        except OSError:
            return False  # not on this file system, say: unpacked when first read instead
        try:
            count, shape = align(archive, folder)
            entries, portable = manifest(str(folder))
        except (OSError, ArtifactError, zipfile.BadZipFile):
            in_background(remove_tree, folder)
            return False
        listed = {e.rel: (e.kind, e.mode, e.mtime_ns, e.size) for e in entries}
        kept = _Tree(folder, count, entries, portable)
        fits = self.max_bytes is None or kept.size <= self.max_bytes
        evicted: list[_Tree] = []
        with self._lock:
            new = name not in self._trees and name not in self._unpacking
            adopted = new and listed == shape and portable and fits
            if adopted:
                self._trees[name] = kept
                evicted = self._evict()
        if not adopted:
            in_background(remove_tree, folder)
        for old in evicted:
            _remove(old)
        return adopted

    def reclaim(self, destination: Path) -> None:
        """Take back the copy lent at ``destination`` (its action is over) to make it like new
        for the next action; what cannot be kept is left where it is, to be removed."""
        with self._lock:
            lent = self._lent.pop(str(destination), None)
            if lent is not None:
                lent[0].out -= 1
        if lent is None:
            return
        tree, copy = lent
        with self._lock:
            wanted = self._kept_tree(tree) and len(tree.spares) < _SPARES
        if not wanted:
            copy.release()
            return
        try:
            if not copy.is_at(destination):
                return  # the action put a folder of its own there
            if in_use(str(destination), copy.lent_at):
                return  # a process the action left behind still works in it
            folder = str(self._work() / secrets.token_hex(8))
            os.rename(destination, folder)
            self._sweep(folder, tree.names.get("", frozenset()))
        except (OSError, ArtifactError):
            return
        finally:
            copy.release()
        copy.folder = folder
        with self._lock:
            kept = self._kept_tree(tree)
            if kept:
                tree.spares.append(copy)
            evicted = self._evict()
        if not kept:  # evicted meanwhile
            in_background(remove_tree, folder)
        for old in evicted:
            _remove(old)

    def _sweep(self, folder: str, expected: frozenset[str]) -> None:
        """Move what the action added at the top of a copy handed back (its build's output,
        typically) out of the way, to be removed off everyone's path."""
        with os.scandir(folder) as scan:
            added = [child.name for child in scan if child.name not in expected]
        if not added:
            return
        trash = self._work() / f"{secrets.token_hex(8)}.trash"
        trash.mkdir()
        for name in added:
            os.rename(os.path.join(folder, name), trash / name)
        in_background(remove_tree, str(trash))

    def _clock(self) -> str:
        """A file on the same file system as the copies, touched to read its clock (made
        once)."""
        if self._clock_file is None:
            clock = self._work() / ".clock"
            clock.touch()
            self._clock_file = str(clock)
        return self._clock_file

    def _kept_tree(self, tree: _Tree) -> bool:
        """Whether ``tree`` is still one of those kept (caller holds the lock)."""
        return any(kept is tree for kept in self._trees.values())

    def _unpack_directly(
        self, store: ArtifactStore, bucket: str, key: str, destination: Path, scratch: Path
    ) -> int:
        # A copy lent is moved to its destination whole; this needs the folders made first.
        destination.mkdir(parents=True, exist_ok=True)
        scratch.parent.mkdir(parents=True, exist_ok=True)
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
                except BaseException:
                    with self._lock:
                        self._unpacking.pop(name, None)
                    raise
                with self._lock:  # kept and the guard dropped at once: no one unpacks it again
                    self._unpacking.pop(name, None)
                    self._trees[name] = tree
                    tree.users += 1
                    evicted = self._evict()
                for old in evicted:
                    _remove(old)
                return tree

    def _unpack(self, store: ArtifactStore, name: _Key) -> _Tree:
        folder, count = self._unpack_folder(store, name)
        try:
            entries, portable = manifest(str(folder))
        except OSError:
            entries, portable = (), False
        return _Tree(folder, count, entries, portable)

    def _unpack_folder(self, store: ArtifactStore, name: _Key) -> tuple[Path, int]:
        """The object unpacked into a new folder of this instance's; its entry count."""
        folder = self._work() / secrets.token_hex(8)
        try:
            return folder, self._unpack_into(store, name, folder)
        except BaseException:
            in_background(remove_tree, folder)
            raise

    def _unpack_into(self, store: ArtifactStore, name: _Key, folder: Path) -> int:
        archive = self._work() / f"{secrets.token_hex(8)}.zip"
        try:
            store.get(name[0], name[1], archive)
            return unpack(archive, folder, max_bytes=self.max_bytes)
        finally:
            archive.unlink(missing_ok=True)

    def _release(self, name: _Key, tree: _Tree) -> None:
        with self._lock:
            tree.users -= 1
            evicted = self._evict()
        for old in evicted:
            _remove(old)

    def _evict(self) -> list[_Tree]:
        """Drop the least recently used unused trees beyond the bound (caller holds the lock)."""
        evicted: list[_Tree] = []
        size = sum(tree.kept_bytes for tree in self._trees.values())
        for name in list(self._trees):
            if len(self._trees) <= self._kept and size <= self._kept_bytes:
                break
            if self._trees[name].users == 0:
                tree = self._trees.pop(name)
                size -= tree.kept_bytes
                evicted.append(tree)
        return evicted

    def _lend(self, store: ArtifactStore, name: _Key, tree: _Tree, destination: Path) -> int:
        """Put a copy of ``tree`` at ``destination``, the cheapest way there is: a used copy
        made like new, the unpacked folder itself, the object unpacked again, or a copy of
        the folder; whichever it is, `reclaim` takes it back."""
        target = str(destination)
        try:
            copy = (
                self._used_copy(tree, target)
                or self._own_folder(tree, target)
                or self._copied(store, name, tree, target)
            )
        except OSError as error:
            raise ArtifactError(f"Cannot copy the unpacked artifact: {error}") from error
        try:
            copy.hold()
        except OSError:
            return tree.count  # not handed back: removed with the workspace
        with self._lock:
            previous = self._lent.pop(target, None)
            self._lent[target] = (tree, copy)
            tree.out += 1
            if previous is not None:  # lent there before and never handed back
                previous[0].out -= 1
        if previous is not None:
            previous[1].release()
        return tree.count

    def _used_copy(self, tree: _Tree, target: str) -> Copy | None:
        """A used copy of ``tree`` made like new and moved to ``target``, if there is one; one
        that cannot be made like new is dropped."""
        while True:
            with self._lock:
                if not tree.spares:
                    return None
                copy = tree.spares.pop()
                root = None if tree.folder is None else str(tree.folder)
            try:
                restore(
                    self._copier,
                    root,
                    tree.entries,
                    tree.names,
                    copy.folder,
                    copy.marks,
                    copy.mode,
                    self._clock(),
                )
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.rename(copy.folder, target)
            except Exception as error:  # whatever the action left, a new copy is made instead
                if isinstance(error, NoSource):
                    tree.lend_own = False  # its actions change its files: keep a folder
                in_background(remove_tree, copy.folder)
                continue
            copy.folder = target
            return copy

    def _own_folder(self, tree: _Tree, target: str) -> Copy | None:
        """The unpacked folder itself, moved to ``target``, when it is the only copy wanted
        (no other call is using the tree, no copy is out) and no action has changed the
        tree's files."""
        with self._lock:
            alone = tree.users == 1 and tree.out == 0
            if not tree.lend_own or tree.folder is None or not alone:
                return None
            folder, tree.folder = tree.folder, None
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(folder, target)
        except OSError:
            with self._lock:
                tree.folder = folder
            return None
        marks = marks_of(target, tree.entries, self._clock())
        return Copy.at(target, marks)

    def _copied(self, store: ArtifactStore, name: _Key, tree: _Tree, target: str) -> Copy:
        """A new copy of the unpacked folder at ``target``; the object is unpacked again first
        when its folder is lent out itself."""
        with tree.unpacking:  # one folder made again, however many calls want one
            with self._lock:
                folder = tree.folder
            if folder is None:
                folder, _ = self._unpack_folder(store, name)
                with self._lock:
                    tree.folder = folder
        marks = copy_tree(self._copier, str(folder), tree.entries, target, self._clock())
        return Copy.at(target, marks)


def _has_content(folder: Path) -> bool:
    try:
        with os.scandir(folder) as scan:
            return next(scan, None) is not None
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        return True


def _remove(tree: _Tree) -> None:
    """Remove an evicted tree and the copies kept with it, off the caller's path."""
    own = [] if tree.folder is None else [str(tree.folder)]
    for folder in [*own, *(copy.folder for copy in tree.spares)]:
        in_background(remove_tree, folder)
