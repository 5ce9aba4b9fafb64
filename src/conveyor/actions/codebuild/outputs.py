"""The build's output artifacts: which buildspec section feeds which output, and the zips.

CodePipeline's mapping: an action with one output artifact takes the top-level ``artifacts``;
with more than one, each output artifact's name must be a ``secondary-artifacts`` identifier.
Each artifact is chosen by `files.select` from its ``base-directory`` folders (``files`` globs,
``exclude-paths``), zipped straight from where the files are by `archive.pack_entries` (in
the order `archive.pack` gives a folder; ``discard-paths`` flattens) and stored with
``context.artifacts.put``. Without ``enable-symlinks`` symbolic
links are stored as the files they point to, as CodeBuild does; with it, links that stay
inside the base directory are kept as links. Links leading out of the build's folders are
left out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from conveyor.actions.base import OutputArtifact
from conveyor.actions.codebuild.buildspec import ArtifactSpec, BuildSpec
from conveyor.actions.codebuild.environment import Misconfigured
from conveyor.actions.codebuild.files import Entry, base_directories, select
from conveyor.artifacts import ArtifactError, ArtifactStore
from conveyor.artifacts.archive import PackEntry, pack_entries

__all__ = ["plan_outputs", "upload"]


def plan_outputs(
    spec: BuildSpec, outputs: Sequence[OutputArtifact]
) -> list[tuple[OutputArtifact, ArtifactSpec]]:
    """Pair each output artifact with its buildspec section; raises `Misconfigured`."""
    if not outputs:
        return []
    if len(outputs) == 1:
        output = outputs[0]
        if spec.artifacts is not None:
            return [(output, spec.artifacts)]
        if output.name in spec.secondary_artifacts:
            return [(output, spec.secondary_artifacts[output.name])]
        raise Misconfigured(
            f"the action has output artifact {output.name}, but the buildspec has no "
            "artifacts section (artifacts.files)"
        )
    missing = [o.name for o in outputs if o.name not in spec.secondary_artifacts]
    if missing:
        have = ", ".join(spec.secondary_artifacts) or "none"
        raise Misconfigured(
            f"the action has {len(outputs)} output artifacts, so each must be named by an "
            f"identifier under artifacts.secondary-artifacts; missing: {', '.join(missing)} "
            f"(the buildspec has: {have})"
        )
    return [(o, spec.secondary_artifacts[o.name]) for o in outputs]


def _entries(source: Path, spec: ArtifactSpec) -> list[Entry]:
    bases = base_directories(source, spec.base_directory)
    if not bases:
        raise ArtifactError(f"base-directory {spec.base_directory} matches no folder")
    chosen: dict[str, Entry] = {}
    for base in bases:
        for entry in select(
            base,
            spec.files,
            spec.exclude_paths,
            keep_links=spec.enable_symlinks,
            within=source.parent,
        ):
            chosen.setdefault(entry.rel, entry)
    return list(chosen.values())


def _packed(entries: Sequence[Entry]) -> list[PackEntry]:
    """The zip's entries: files as the files they are (a link followed), kept links with their
    target, empty folders; in the order of a walk of the folders by name, as `pack` has it."""
    out: list[PackEntry] = []
    for entry in sorted(entries, key=lambda e: e.rel.split("/")):
        if entry.kind == "link":
            out.append((entry.rel, entry.source, os.lstat(entry.source), entry.target or None))
        else:
            out.append((entry.rel, entry.source, os.stat(entry.source), None))
    return out


def upload(
    plan: Sequence[tuple[OutputArtifact, ArtifactSpec]],
    source: Path,
    scratch: Path,
    store: ArtifactStore,
) -> Mapping[str, int]:
    """Zip and store each planned artifact; how many entries each holds."""
    counts: dict[str, int] = {}
    for output, spec in plan:
        entries = _entries(source, spec)
        if not entries:
            raise ArtifactError(
                f"Output artifact {output.name}: no matching artifact paths found "
                f"({', '.join(spec.files)})"
            )
        archive = scratch / f"{output.name}.zip"
        try:
            try:
                packed = _packed(entries)
            except OSError as error:
                raise ArtifactError(f"Output artifact {output.name}: {error}") from error
            counts[output.name] = pack_entries(packed, archive, spec.discard_paths)
            store.put(output.bucket, output.key, archive)
        finally:
            archive.unlink(missing_ok=True)
    return counts
