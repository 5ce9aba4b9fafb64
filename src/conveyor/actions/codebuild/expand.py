"""Environment variables in the buildspec's paths: ``artifacts`` and ``reports`` globs, cache paths.

CodeBuild evaluates ``artifacts.files``, ``base-directory`` and ``name`` (of the primary and of
each secondary artifact), ``reports.<group>.files`` and ``base-directory``, and ``cache.paths``
with the shell at build time, so ``$VERSION``, ``${CODEBUILD_BUILD_NUMBER}`` or ``$(date +%F)``
there take the values the build gave them. `texts` lists those fields in one fixed order; the
build shell evaluates the ones that hold ``$`` or a backquote in its final state (see
`phases`), with parameter expansion and command substitution but neither word splitting nor
globbing, so a glob stays a glob; `apply` puts the values back into a copy of the buildspec.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from conveyor.actions.codebuild.model import ArtifactSpec, BuildSpec

__all__ = ["apply", "needs_expansion", "texts"]


def needs_expansion(text: str) -> bool:
    return "$" in text or "`" in text


def _artifact(spec: ArtifactSpec, each: Callable[[str], str]) -> ArtifactSpec:
    files = tuple(each(text) for text in spec.files)
    base = None if spec.base_directory is None else each(spec.base_directory)
    name = None if spec.name is None else each(spec.name)
    return dataclasses.replace(spec, files=files, base_directory=base, name=name)


def _walk(spec: BuildSpec, each: Callable[[str], str]) -> BuildSpec:
    """A copy of ``spec`` with ``each`` applied to every expandable text, in `texts` order."""
    artifacts = None if spec.artifacts is None else _artifact(spec.artifacts, each)
    secondary = {key: _artifact(value, each) for key, value in spec.secondary_artifacts.items()}
    reports = tuple(
        dataclasses.replace(
            report,
            files=tuple(each(text) for text in report.files),
            base_directory=None if report.base_directory is None else each(report.base_directory),
        )
        for report in spec.reports
    )
    cache = (
        None
        if spec.cache is None
        else dataclasses.replace(spec.cache, paths=tuple(each(text) for text in spec.cache.paths))
    )
    return dataclasses.replace(
        spec, artifacts=artifacts, secondary_artifacts=secondary, reports=reports, cache=cache
    )


def texts(spec: BuildSpec) -> list[str]:
    """The expandable texts of ``spec``, in the order `apply` reads values for them."""
    found: list[str] = []

    def record(text: str) -> str:
        found.append(text)
        return text

    _walk(spec, record)
    return found


def apply(spec: BuildSpec, values: Mapping[int, str]) -> BuildSpec:
    """``spec`` with the text at each index of ``values`` replaced by its value."""
    if not values:
        return spec
    counter = iter(range(1 << 30))

    def value(text: str) -> str:
        return values.get(next(counter), text)

    return _walk(spec, value)
