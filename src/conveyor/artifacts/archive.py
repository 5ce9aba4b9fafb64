"""Zip artifacts: pack a folder into a zip and unpack a zip safely, keeping modes and symlinks.

`pack` stores regular files with their Unix modes, symbolic links as links (never followed)
and empty folders, in a deterministic order; `pack_entries` zips a list of chosen paths the
same way, wherever on disk they are. `unpack` checks every entry before it writes
anything: no absolute or escaping path, no write through a symbolic link that leaves the
destination, no link left pointing outside it, and an optional bound on the unpacked size.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import threading
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

from conveyor.artifacts import ArtifactError

__all__ = ["PackEntry", "Shape", "align", "pack", "pack_entries", "unpack"]

_UNIX = 3  # ZipInfo.create_system for Unix: external_attr holds st_mode in its high 16 bits.
_DIR_FLAG = 0x10  # MS-DOS directory attribute, set alongside S_IFDIR for other unzip tools.
_MAX_LINK_TARGET = 4096
_SMALL_FILE = 4 << 20  # Files up to this size are read whole; larger ones are streamed.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # The earliest date a zip entry can carry.
_Entry = tuple[str, str, os.stat_result]
# An entry to zip: its path in the zip, its path on disk, its lstat, a link's target or None.
PackEntry = tuple[str, str, os.stat_result, str | None]
EVERYTHING = re.compile(".*", re.DOTALL)


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := segment.find("]", i + 2)) != -1:
            body = segment[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def glob_regex(patterns: Sequence[str]) -> re.Pattern[str]:
    """One regex matching any path (relative, ``/``-separated) that one of the globs matches."""
    alternatives: list[str] = []
    for raw in patterns:
        pattern = raw.strip().strip("/")
        while pattern.startswith("./"):
            pattern = pattern[2:]
        if pattern in ("", ".", "**", "**/*"):
            return EVERYTHING
        segments = pattern.split("/")
        regex = ""
        for index, segment in enumerate(segments):
            last = index == len(segments) - 1
            if segment == "**":
                regex += ".*" if last else "(?:[^/]+/)*"
            else:
                regex += _segment_regex(segment) + ("" if last else "/")
        alternatives.append(regex)
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.DOTALL)


def _collect(
    folder: str,
    prefix: str,
    include: re.Pattern[str],
    exclude: re.Pattern[str] | None,
    skip: str | None,
    taken: bool,
    out: list[_Entry],
) -> None:
    with os.scandir(folder) as scan:
        children = sorted(scan, key=lambda e: e.name)
    for child in children:
        rel = prefix + child.name
        if rel == skip or (exclude is not None and exclude.fullmatch(rel)):
            continue
        info = child.stat(follow_symlinks=False)
        wanted = taken or include.fullmatch(rel) is not None
        if stat.S_ISDIR(info.st_mode):
            before = len(out)
            _collect(child.path, rel + "/", include, exclude, skip, wanted, out)
            if wanted and len(out) == before:
                out.append((rel, child.path, info))
        elif not wanted:
            continue
        elif stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
            out.append((rel, child.path, info))
        else:
            raise ArtifactError(f"Cannot archive {rel}: not a file, folder or symbolic link")


def _zip_info(name: str, info: os.stat_result) -> zipfile.ZipInfo:
    moment = time.localtime(info.st_mtime)[:6]
    entry = zipfile.ZipInfo(name, date_time=moment if moment[0] >= 1980 else _ZIP_EPOCH)
    entry.create_system = _UNIX
    entry.external_attr = (info.st_mode & 0xFFFF) << 16
    return entry


def _write(
    archive: zipfile.ZipFile, name: str, path: str, info: os.stat_result, link: str | None
) -> None:
    if stat.S_ISDIR(info.st_mode):
        entry = _zip_info(name + "/", info)
        entry.external_attr |= _DIR_FLAG
        archive.writestr(entry, b"")
    elif stat.S_ISLNK(info.st_mode):
        held = os.readlink(os.fsencode(path)) if link is None else os.fsencode(link)
        archive.writestr(_zip_info(name, info), held)
    else:
        entry = _zip_info(name, info)
        entry.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as source:
            if info.st_size <= _SMALL_FILE:
                archive.writestr(entry, source.read())
                return
            entry.file_size = info.st_size
            with archive.open(entry, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)


def pack(
    root: Path,
    destination: Path,
    patterns: Sequence[str] = ("**/*",),
    *,
    exclude: Sequence[str] = (),
    discard_paths: bool = False,
) -> int:
    """Zip the files under ``root`` matching ``patterns`` into ``destination``; count entries.

    Patterns are globs relative to ``root`` (``*`` stays within a folder, ``**`` crosses
    folders); a pattern naming a folder takes its whole content. ``exclude`` patterns win.
    ``destination`` is replaced atomically and, when it lies under ``root``, left out.
    """
    base = os.path.realpath(root)
    target = os.path.realpath(destination)
    inside = target.startswith(base + os.sep)
    skip = os.path.relpath(target, base).replace(os.sep, "/") if inside else None
    include, leave_out = glob_regex(patterns), glob_regex(exclude) if exclude else None
    entries: list[_Entry] = []
    try:
        _collect(base, "", include, leave_out, skip, False, entries)
    except OSError as error:
        raise ArtifactError(f"Cannot read {root}: {error}") from error
    return pack_entries([(r, p, i, None) for r, p, i in entries], destination, discard_paths)


def pack_entries(
    entries: Sequence[PackEntry], destination: Path, discard_paths: bool = False
) -> int:
    """Zip ``entries`` (in their order) into ``destination``, replaced atomically; how many.

    Each entry is its path in the zip, its path on disk, its ``lstat`` (a folder is stored as
    an empty folder, a link as a link) and, for a link, the target to store (None: the one
    on disk). With ``discard_paths`` files and links are stored by their base names, and two
    of the same name are refused."""
    if discard_paths:
        entries = [
            (posixpath.basename(r), p, i, t)
            for r, p, i, t in entries
            if stat.S_ISREG(i.st_mode) or stat.S_ISLNK(i.st_mode)
        ]
        seen: set[str] = set()
        for name, _, _, _ in entries:
            if name in seen:
                raise ArtifactError(f"Two files are named {name} once paths are discarded")
            seen.add(name)
    target = os.path.realpath(destination)
    partial = f"{target}.{os.getpid()}-{threading.get_ident()}.partial"
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, path, info, link in entries:
                _write(archive, name, path, info, link)
        os.replace(partial, target)
    except (OSError, ValueError) as error:
        Path(partial).unlink(missing_ok=True)
        raise ArtifactError(f"Cannot write {destination}: {error}") from error
    return len(entries)


def _relative_name(name: str) -> str:
    """The entry's path inside the destination, normalised; raises when it is not safe."""
    if "\x00" in name:
        raise ArtifactError(f"Unsafe entry {name!r}: the name contains a NUL character")
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise ArtifactError(f"Unsafe entry {name!r}: the path is absolute")
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../"):
        raise ArtifactError(f"Unsafe entry {name!r}: the path leaves the destination")
    return "" if normal == "." else normal


class _Extractor:
    """Writes entries under one destination, checking every folder it writes into."""

    def __init__(self, destination: Path) -> None:
        destination.mkdir(parents=True, exist_ok=True)
        self.root = os.path.realpath(destination)
        self.folders: dict[str, str] = {"": self.root}  # checked relative folder -> real path
        self.links: list[tuple[str, str]] = []

    def inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + os.sep)

    def folder(self, rel: str, name: str) -> str:
        """The real path of folder ``rel``, made if missing; raises if it leaves the root."""
        known = self.folders.get(rel)
        if known is not None:
            return known
        head, _, tail = rel.rpartition("/")
        path = os.path.join(self.folder(head, name), tail)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            os.mkdir(path, 0o755)
            mode = stat.S_IFDIR
        if stat.S_ISLNK(mode):
            path = os.path.realpath(path)
            if not self.inside(path):
                raise ArtifactError(f"Unsafe entry {name!r}: {rel} links outside the destination")
            mode = os.stat(path).st_mode
        if not stat.S_ISDIR(mode):
            raise ArtifactError(f"Cannot unpack {name!r}: {rel} is not a folder")
        self.folders[rel] = path
        return path

    def clear(self, path: str, name: str) -> None:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            raise ArtifactError(f"Cannot unpack {name!r}: a folder of that name exists")
        os.unlink(path)

    def link(self, rel: str, name: str, target: bytes) -> None:
        parent = self.folder(posixpath.dirname(rel), name)
        text = os.fsdecode(target)
        if not text or "\x00" in text:
            raise ArtifactError(f"Unsafe entry {name!r}: empty or invalid link target")
        if not self.inside(os.path.realpath(os.path.join(parent, text))):
            raise ArtifactError(f"Unsafe entry {name!r}: links to {text}, outside the destination")
        path = os.path.join(parent, posixpath.basename(rel))
        self.clear(path, name)
        os.symlink(text, path)
        self.folders = {"": self.root}  # a new link may change where known folders resolve
        self.links.append((path, name))

    def check_links(self) -> None:
        """Refuse links that now resolve outside (a later entry may have redirected them)."""
        for path, name in self.links:
            if os.path.islink(path) and not self.inside(os.path.realpath(path)):
                os.unlink(path)
                raise ArtifactError(f"Unsafe entry {name!r}: it resolves outside the destination")


def unpack(archive: Path, destination: Path, *, max_bytes: int | None = None) -> int:
    """Extract ``archive`` under ``destination``, refusing anything unsafe; count entries."""
    try:
        with zipfile.ZipFile(archive) as source:
            return _unpack(source, destination, max_bytes)
    except ArtifactError:
        raise
    except (
        OSError,
        zipfile.BadZipFile,
        RuntimeError,
        ValueError,
        EOFError,
        OverflowError,
    ) as error:
        raise ArtifactError(f"Cannot unpack {archive}: {error}") from error


def _unpack(source: zipfile.ZipFile, destination: Path, max_bytes: int | None) -> int:
    entries = source.infolist()
    names = [_relative_name(entry.filename) for entry in entries]
    total = 0
    for entry in entries:
        total += entry.file_size
        if max_bytes is not None and total > max_bytes:
            raise ArtifactError(
                f"Entry {entry.filename!r} takes the unpacked size over {max_bytes} bytes"
            )
    extractor = _Extractor(destination)
    folder_modes: list[tuple[str, int]] = []
    for entry, rel in zip(entries, names, strict=True):
        mode = _mode(entry)
        if entry.is_dir() or stat.S_ISDIR(mode):
            if rel:
                path = extractor.folder(rel, entry.filename)
                folder_modes.append((path, _folder_mode(mode)))
        elif not rel:
            raise ArtifactError(f"Unsafe entry {entry.filename!r}: a file without a name")
        elif stat.S_ISLNK(mode):
            if entry.file_size > _MAX_LINK_TARGET:
                raise ArtifactError(f"Unsafe entry {entry.filename!r}: link target too long")
            extractor.link(rel, entry.filename, source.read(entry))
        else:
            parent = extractor.folder(posixpath.dirname(rel), entry.filename)
            path = os.path.join(parent, posixpath.basename(rel))
            extractor.clear(path, entry.filename)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with source.open(entry) as data, open(os.open(path, flags, 0o600), "wb") as out:
                shutil.copyfileobj(data, out, 1 << 20)
                out.flush()  # a write after the utime below would set the time to now
                os.fchmod(out.fileno(), _file_mode(mode))
                moment = _moment(entry)
                os.utime(out.fileno(), ns=(moment, moment))
    extractor.check_links()
    for path, folder_mode in reversed(folder_modes):
        os.chmod(path, folder_mode)
    return len(entries)


def _mode(entry: zipfile.ZipInfo) -> int:
    """The Unix mode an entry carries (0: none, as from a zip made elsewhere)."""
    return entry.external_attr >> 16 if entry.create_system == _UNIX else 0


def _file_mode(mode: int) -> int:
    return mode & 0o777 or 0o644


def _folder_mode(mode: int) -> int:
    return mode & 0o777 or 0o755


def _moment(entry: zipfile.ZipInfo) -> int:
    """The modification time an unpacked file gets, in nanoseconds."""
    return int(time.mktime((*entry.date_time, 0, 0, -1))) * 1_000_000_000


# Relative path → (kind, mode, modification time in ns, size) of each path in a tree, as
# `conveyor.artifacts.trees.manifest` lists them: a mode and a time for files, a mode for
# folders, neither for links.
Shape = dict[str, tuple[str, int, int, int]]


def align(archive: Path, folder: Path) -> tuple[int, Shape]:
    """Make ``folder``, the tree ``archive`` was just packed from whole, what `unpack` of the
    archive would leave (modes and modification times as unpacking sets them), without
    writing its files again; count the archive's entries, and say what the tree must now be.
    The caller checks the tree against that shape: a tree that changed since it was packed,
    or was packed only in part, does not match it."""
    with zipfile.ZipFile(archive) as source:
        entries = source.infolist()
    made = _made_folder_mode(folder.parent)
    shape: Shape = {}
    moments: dict[tuple[int, ...], int] = {}  # files packed in the same second share one
    for entry in entries:
        rel = _relative_name(entry.filename)
        mode = _mode(entry)
        parent = posixpath.dirname(rel)
        while parent and parent not in shape:  # folders unpacking makes on the way
            shape[parent] = ("d", made, 0, 0)
            parent = posixpath.dirname(parent)
        path = os.path.join(folder, rel)
        if entry.is_dir() or stat.S_ISDIR(mode):
            if rel:
                shape[rel] = ("d", _folder_mode(mode), 0, 0)
        elif stat.S_ISLNK(mode):
            shape[rel] = ("l", 0, 0, 0)
        else:
            moment = moments.get(entry.date_time)
            if moment is None:
                moment = moments[entry.date_time] = _moment(entry)
            shape[rel] = ("f", _file_mode(mode), moment, entry.file_size)
            if mode & 0o7777 != _file_mode(mode):  # else packed from a file of that mode
                os.chmod(path, _file_mode(mode), follow_symlinks=False)
            os.utime(path, ns=(moment, moment), follow_symlinks=False)
    for rel, (kind, mode, _, _) in shape.items():
        if kind == "d":
            os.chmod(os.path.join(folder, rel), mode)
    return len(entries), shape


def _made_folder_mode(where: Path) -> int:
    """The mode `unpack` gives a folder it makes on the way (0o755 less the umask), read off
    a folder made for the purpose, since the umask cannot be read without setting it."""
    probe = where / f".folder-mode-{os.getpid()}-{threading.get_ident()}"
    os.mkdir(probe, 0o755)
    try:
        return stat.S_IMODE(os.lstat(probe).st_mode)
    finally:
        os.rmdir(probe)
