"""Artifact storage: zips in buckets, as CodePipeline keeps them in S3.

`ArtifactStore` is the contract; `LocalBuckets` keeps bucket ``B`` in the folder
``$CONVEYOR_HOME/buckets/B`` and `S3Buckets` uses a real S3-compatible endpoint. `ObjectInfo`
describes a stored object as S3's HEAD does (size, ETag, version, last change); `archive` packs
folders into zips and unpacks them safely, keeping file modes and symbolic links.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class ArtifactError(Exception):
    """An artifact that cannot be stored, found or unpacked; the message says which and why."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """A stored object: its size in bytes, its ETag (no quotes; the content's MD5 hex for a
    single-part upload), its version id (None when the bucket keeps no versions) and when it
    was last written (seconds since the epoch)."""

    size: int
    etag: str
    version_id: str | None
    last_modified: float


class ArtifactStore(Protocol):
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
        """Store the file ``source`` as ``key`` in ``bucket``; stores that have no use for the
        HTTP headers or the canned ACL ignore them."""
        ...

    def get(
        self, bucket: str, key: str, destination: Path, *, version_id: str | None = None
    ) -> None:
        """Copy the object ``key`` of ``bucket`` (that version of it) to ``destination``."""
        ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def stat(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo | None:
        """What the object (that version of it) is; None when there is no such object."""
        ...

    def list(self, bucket: str, prefix: str = "") -> builtins.list[str]:
        """The keys in ``bucket`` starting with ``prefix``, sorted; none for a missing bucket."""
        ...
