"""Buckets as folders on the local disk: the `ArtifactStore` a single-host Conveyor uses.

Bucket ``B`` is the folder ``root / B`` and key ``a/b.zip`` the file ``root / B / a / b.zip``.
Objects are written atomically (a temporary name, then a rename) and are never changed in
place afterwards, so `put` and `get` hard-link instead of copying whenever the file system
allows it. Bucket names and keys that could reach outside ``root`` are refused.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from conveyor.artifacts import ArtifactError

__all__ = ["LocalBuckets"]


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class LocalBuckets:
    """An `ArtifactStore` keeping each bucket as a folder under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, bucket: str, key: str) -> Path:
        """Where the object ``key`` of ``bucket`` lives (whether or not it exists)."""
        if not bucket or bucket in (".", "..") or any(c in bucket for c in "/\\\x00"):
            raise ArtifactError(f"Invalid bucket name {bucket!r}")
        parts = key.split("/")
        if "\x00" in key or any(part in ("", ".", "..") for part in parts):
            raise ArtifactError(f"Invalid object key {key!r} in bucket {bucket}")
        return self.root.joinpath(bucket, *parts)

    def put(self, bucket: str, key: str, source: Path) -> None:
        """Store ``source`` as ``key``; readers see the old object or the new one, never half."""
        target = self.path(bucket, key)
        partial = target.with_name(f".{target.name}.{secrets.token_hex(6)}.partial")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(source, partial)
            os.replace(partial, target)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise ArtifactError(f"Cannot store {key} in bucket {bucket}: {error}") from error

    def get(self, bucket: str, key: str, destination: Path) -> None:
        """Make ``destination`` a copy of the object (a hard link when on the same disk)."""
        source = self.path(bucket, key)
        if not source.is_file():
            raise ArtifactError(f"No object {key} in bucket {bucket}")
        try:
            destination.unlink(missing_ok=True)
            _link_or_copy(source, destination)
        except OSError as error:
            raise ArtifactError(f"Cannot fetch {key} from bucket {bucket}: {error}") from error

    def exists(self, bucket: str, key: str) -> bool:
        return self.path(bucket, key).is_file()
