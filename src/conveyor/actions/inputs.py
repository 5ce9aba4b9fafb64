"""One input artifact made into files in the workspace, through the shared unpacked copy.

Commands, CodeBuild and S3 deploy all need an input artifact's files in a folder of the job's
workspace. With an `Unpacked` (the server shares one among its providers) the artifact is
unpacked once and copied from there, and the copy is handed back when the action is over;
without one it is fetched and unpacked in place.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from conveyor.actions.base import ArtifactLocation, JobContext
from conveyor.artifacts.archive import unpack
from conveyor.artifacts.unpacked import Unpacked

__all__ = ["unpack_input"]


def unpack_input(
    context: JobContext,
    artifact: ArtifactLocation,
    target: Path,
    *,
    scratch: Path,
    max_bytes: int | None,
    unpacked: Unpacked | None,
) -> int:
    """Put ``artifact``'s files under ``target``; the archive's entry count. ``scratch`` is
    where the zip goes meanwhile when there is no shared unpacked copy."""
    if unpacked is not None:
        store = context.artifacts
        count = unpacked.materialise(store, artifact.bucket, artifact.key, target, scratch=scratch)
        context.when_done.append(partial(unpacked.reclaim, target))
        return count
    context.artifacts.get(artifact.bucket, artifact.key, scratch)
    try:
        return unpack(scratch, target, max_bytes=max_bytes)
    finally:
        scratch.unlink(missing_ok=True)
