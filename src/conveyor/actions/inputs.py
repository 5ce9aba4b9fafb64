"""One input artifact made into files in the workspace, through the shared unpacked copy; and
an output artifact made of one file.

Commands, CodeBuild and S3 deploy all need an input artifact's files in a folder of the job's
workspace. With an `Unpacked` (the server shares one among its providers) the artifact is
unpacked once and copied from there, and the copy is handed back when the action is over;
without one it is fetched and unpacked in place.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from conveyor.actions.base import ArtifactLocation, JobContext
from conveyor.artifacts.archive import pack, unpack
from conveyor.artifacts.unpacked import Unpacked

__all__ = ["input_file", "input_root", "put_output", "unpack_input"]


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


def input_root(
    context: JobContext,
    artifact: ArtifactLocation,
    *,
    max_bytes: int | None,
    unpacked: Unpacked | None,
) -> Path:
    """The folder of ``artifact``'s files in the workspace, unpacked the first time."""
    root = context.workspace / "inputs" / artifact.name
    if not root.exists():
        unpack_input(
            context,
            artifact,
            root,
            scratch=context.workspace / f".input-{artifact.name}.zip",
            max_bytes=max_bytes,
            unpacked=unpacked,
        )
    return root


def input_file(
    context: JobContext,
    artifact: ArtifactLocation,
    path: str,
    *,
    max_bytes: int | None,
    unpacked: Unpacked | None,
) -> Path | None:
    """The file ``path`` of ``artifact``, unpacked under the workspace; None when the artifact
    has no such file (or the path leads out of it)."""
    root = input_root(context, artifact, max_bytes=max_bytes, unpacked=unpacked)
    target = (root / path).resolve()
    if not path or not target.is_relative_to(root.resolve()) or not target.is_file():
        return None
    return target


def put_output(context: JobContext, name: str, content: str) -> None:
    """Make the action's first output artifact a zip of one file, ``name``."""
    folder = context.workspace / "outputs"
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content, encoding="utf-8")
    archive = context.workspace / ".output.zip"
    pack(folder, archive)
    output = context.output_artifacts[0]
    context.artifacts.put(output.bucket, output.key, archive)
