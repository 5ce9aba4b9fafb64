"""Artifact storage: zips in buckets, as CodePipeline keeps them in S3.

`ArtifactStore` is the contract; `LocalBuckets` keeps bucket ``B`` in the folder
``$CONVEYOR_HOME/buckets/B``. `archive` packs folders into zips and unpacks them safely,
keeping file modes and symbolic links.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ArtifactError(Exception):
    """An artifact that cannot be stored, found or unpacked; the message says which and why."""


class ArtifactStore(Protocol):
    def put(self, bucket: str, key: str, source: Path) -> None:
        """Store the file ``source`` (a zip) as ``key`` in ``bucket``."""
        ...

    def get(self, bucket: str, key: str, destination: Path) -> None:
        """Copy the object ``key`` of ``bucket`` to the file ``destination``."""
        ...

    def exists(self, bucket: str, key: str) -> bool: ...
