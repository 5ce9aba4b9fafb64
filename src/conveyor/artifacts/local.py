"""Buckets as folders on the local disk: the `ArtifactStore` a single-host Conveyor uses.

Bucket ``B`` is the folder ``root / B`` and key ``a/b.zip`` the file ``root / B / a / b.zip``.
Objects are written atomically (a temporary name, then a rename) and are never changed in
place afterwards, so `put` and `get` hard-link instead of copying whenever the file system
allows it (a copy keeps the file's mode). Bucket names and keys that could reach outside
``root`` are refused. There are no versions: `stat` reports none, and the ETag is the content's
MD5 hex, as S3 gives for a single-part upload (remembered per file, since files never change in
place). Content type, Cache-Control and canned ACLs mean nothing on a disk and are ignored.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import secrets
import shutil
import threading
from pathlib import Path

from conveyor.artifacts import ArtifactError, ObjectInfo

__all__ = ["LocalBuckets"]

_PARTIAL = ".partial"
_DIGESTS_KEPT = 1024
_FileId = tuple[int, int, int, int]


def link_or_copy(source: Path, target: Path) -> None:
    """Make ``target`` a hard link to ``source``; a copy (with its mode) across disks."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
        shutil.copymode(source, target)


class LocalBuckets:
    """An `ArtifactStore` keeping each bucket as a folder under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._digests: dict[_FileId, str] = {}
        self._lock = threading.Lock()

    def path(self, bucket: str, key: str) -> Path:
        """Where the object ``key`` of ``bucket`` lives (whether or not it exists)."""
        if not bucket or bucket in (".", "..") or any(c in bucket for c in "/\\\x00"):
            raise ArtifactError(f"Invalid bucket name {bucket!r}")
        parts = key.split("/")
        if "\x00" in key or any(part in ("", ".", "..") for part in parts):
            raise ArtifactError(f"Invalid object key {key!r} in bucket {bucket}")
        return self.root.joinpath(bucket, *parts)

    def put(
        self,
        bucket: str,
        key: str,
        source: Path,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        acl: str | None = None,
    ) -> None:
        """Store ``source`` as ``key``; readers see the old object or the new one, never half."""
        target = self.path(bucket, key)
        partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}{_PARTIAL}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(source, partial)
            os.replace(partial, target)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise ArtifactError(f"Cannot store {key} in bucket {bucket}: {error}") from error

    def get(
        self, bucket: str, key: str, destination: Path, *, version_id: str | None = None
    ) -> None:
        """Make ``destination`` a copy of the object (a hard link when on the same disk)."""
        source = self.path(bucket, key)
        if version_id is not None:
            raise ArtifactError(f"No version {version_id} of {key} in bucket {bucket}")
        if not source.is_file():
            raise ArtifactError(f"No object {key} in bucket {bucket}")
        try:
            destination.unlink(missing_ok=True)
            link_or_copy(source, destination)
        except OSError as error:
            raise ArtifactError(f"Cannot fetch {key} from bucket {bucket}: {error}") from error

    def exists(self, bucket: str, key: str) -> bool:
        return self.path(bucket, key).is_file()

    def stat(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo | None:
        path = self.path(bucket, key)
        if version_id is not None:
            return None
        try:
            with open(path, "rb") as file:
                info = os.fstat(file.fileno())
                file_id = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
                with self._lock:
                    etag = self._digests.get(file_id)
                if etag is None:
                    etag = hashlib.file_digest(file, "md5").hexdigest()
                    with self._lock:
                        if len(self._digests) >= _DIGESTS_KEPT:
                            self._digests.clear()
                        self._digests[file_id] = etag
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as error:
            raise ArtifactError(f"Cannot read {key} in bucket {bucket}: {error}") from error
        return ObjectInfo(info.st_size, etag, None, info.st_mtime)

    def list(self, bucket: str, prefix: str = "") -> builtins.list[str]:
        folder = self.path(bucket, "x").parent
        keys: builtins.list[str] = []
        for parent, folders, files in os.walk(folder):
            folders.sort()
            base = os.path.relpath(parent, folder).replace(os.sep, "/")
            for name in files:
                key = name if base == "." else f"{base}/{name}"
                partial = name.startswith(".") and name.endswith(_PARTIAL)
                if key.startswith(prefix) and not partial:
                    keys.append(key)
        return sorted(keys)
