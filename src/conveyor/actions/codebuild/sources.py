"""The build's inputs: which artifact is primary, where each is unpacked, which buildspec.

The primary source (``PrimarySource``, needed when there is more than one input) is unpacked
into ``<workspace>/src`` (``CODEBUILD_SRC_DIR``), every other input into
``<workspace>/src_<ArtifactName>`` (``CODEBUILD_SRC_DIR_<ArtifactName>``), so that none lands
inside another and ``**/*`` artifacts hold the primary source only; Conveyor's own files go in
``<workspace>/.conveyor``. The buildspec is ``BuildspecOverride``, else ``BuildSpec``, else the
buildspec of the action's CodeBuild project, else ``buildspec.yml`` at the primary source's
root; one that `buildspec.is_inline` calls inline is the buildspec itself (so a broken one is
reported as a YAML error, not as a missing file), an ``arn:aws:s3:::bucket/key`` is read from
the artifact store, anything else is a path in the primary source.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from conveyor.actions.base import JobContext
from conveyor.actions.codebuild.buildspec import is_inline
from conveyor.actions.codebuild.environment import Misconfigured
from conveyor.actions.inputs import unpack_input
from conveyor.actions.shell import ARTIFACT_NAME
from conveyor.artifacts import ArtifactError
from conveyor.artifacts.unpacked import Unpacked

__all__ = ["Layout", "layout", "read_buildspec", "unpack_inputs"]

MAX_INPUTS = 5
_MAX_BUILDSPEC_BYTES = 1 << 20
_S3_ARN = re.compile(r"arn:aws[a-z-]*:s3:::([^/]+)/(.+)\Z")


@dataclass(frozen=True, slots=True)
class Layout:
    workspace: Path
    primary: str | None
    sources: Mapping[str, Path]  # input artifact name -> its folder

    @property
    def source(self) -> Path:
        return self.workspace / "src"

    @property
    def scratch(self) -> Path:
        return self.workspace / ".conveyor"


def layout(context: JobContext) -> Layout:
    """Where each input goes; raises `Misconfigured` for a missing or unknown primary."""
    inputs = context.input_artifacts
    if len(inputs) > MAX_INPUTS:
        raise Misconfigured(f"a CodeBuild action takes at most {MAX_INPUTS} input artifacts")
    for artifact in inputs:
        if not ARTIFACT_NAME.match(artifact.name):
            raise Misconfigured(f"invalid input artifact name {artifact.name!r}")
    names = [a.name for a in inputs]
    primary = (context.configuration.get("PrimarySource") or "").strip() or None
    if primary is None and len(inputs) > 1:
        raise Misconfigured(
            f"PrimarySource is required when the action has more than one input artifact "
            f"(inputs: {', '.join(names)})"
        )
    if primary is not None and primary not in names:
        raise Misconfigured(
            f"PrimarySource {primary} is not one of the input artifacts ({', '.join(names)})"
        )
    primary = primary or (names[0] if names else None)
    workspace = context.workspace
    sources = {
        name: workspace / "src" if name == primary else workspace / f"src_{name}" for name in names
    }
    return Layout(workspace, primary, sources)


def unpack_inputs(
    context: JobContext, where: Layout, max_bytes: int | None, unpacked: Unpacked | None = None
) -> int:
    """(Re)create the source folders from the input artifacts; total entries unpacked."""
    where.scratch.mkdir(parents=True, exist_ok=True)
    for folder in (where.source, *where.sources.values()):
        shutil.rmtree(folder, ignore_errors=True)
    where.source.mkdir()
    total = 0
    for index, artifact in enumerate(context.input_artifacts):
        try:
            total += unpack_input(
                context,
                artifact,
                where.sources[artifact.name],
                scratch=where.scratch / f"input-{index}.zip",
                max_bytes=max_bytes,
                unpacked=unpacked,
            )
        except ArtifactError as error:
            raise ArtifactError(f"Input artifact {artifact.name}: {error}") from error
    return total


def _read(path: Path, what: str) -> str:
    try:
        if path.stat().st_size > _MAX_BUILDSPEC_BYTES:
            raise Misconfigured(f"{what} is larger than {_MAX_BUILDSPEC_BYTES >> 10} KB")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Misconfigured(f"{what} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise Misconfigured(f"cannot read {what}: {error}") from error


def read_buildspec(context: JobContext, where: Layout, project: str = "") -> tuple[str, str]:
    """The buildspec text and a label saying where it came from; ``project`` is the buildspec
    of the action's CodeBuild project (a path, inline YAML, or "": none)."""
    choices = [
        (key, context.configuration.get(key) or "") for key in ("BuildspecOverride", "BuildSpec")
    ]
    choices.append(("the project's buildspec", project))
    for key, given in choices:
        value = given.strip()
        if not value:
            continue
        if is_inline(value):
            return value, f"{key} (inline)"
        s3 = _S3_ARN.match(value)
        if s3:
            target = where.scratch / "buildspec-s3.yml"
            try:
                context.artifacts.get(s3[1], s3[2], target)
            except ArtifactError as error:
                raise Misconfigured(f"{key} {value}: {error}") from error
            return _read(target, f"{key} {value}"), f"{key} {value}"
        path = (where.source / value).resolve()
        if not path.is_relative_to(where.workspace.resolve()):
            raise Misconfigured(f"{key} {value} is outside the build's folders")
        return _read(path, f"{key} {value} (in the primary source)"), f"{key} {value}"
    label = f"buildspec.yml of the primary source {where.primary or ''}".rstrip()
    default = where.source / "buildspec.yml"
    if not default.is_file():
        raise Misconfigured(
            f"no buildspec: {label} does not exist, and neither BuildSpec nor "
            "BuildspecOverride is set"
        )
    return _read(default, label), "buildspec.yml"
