"""Test reports: the buildspec's ``reports`` groups, JUnit XML files counted into results.

Each group's files are chosen like artifacts (``files`` globs under ``base-directory``). JUnit
XML (CodeBuild's default ``file-format``) is read case by case: a ``<testcase>`` with a
``<failure>`` or ``<error>`` failed, one with ``<skipped>`` was skipped, any other passed.
Other formats are named in the log and skipped. As in CodeBuild, failed tests do not fail the
build by themselves; the summary says how many there were.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from conveyor.actions.codebuild.buildspec import ReportSpec
from conveyor.actions.codebuild.files import base_directories, select

__all__ = ["GroupResult", "collect", "summary"]

_MAX_REPORT_BYTES = 64 << 20


@dataclass(frozen=True, slots=True)
class GroupResult:
    group: str
    files: int
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped

    def describe(self) -> str:
        noun = "test" if self.total == 1 else "tests"
        text = f"{self.total} {noun}: {self.passed} passed, {self.failed} failed"
        if self.skipped:
            text += f", {self.skipped} skipped"
        return f"{text} (report group {self.group})"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _junit(path: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) in one JUnit XML file; raises ValueError if unreadable."""
    from xml.etree import ElementTree  # here: only builds with reports need it

    if path.stat().st_size > _MAX_REPORT_BYTES:
        raise ValueError(f"larger than {_MAX_REPORT_BYTES >> 20} MB")
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise ValueError(f"not valid XML: {error}") from error
    if _local(root.tag) not in ("testsuites", "testsuite"):
        raise ValueError(f"the root element is <{_local(root.tag)}>, not <testsuites>")
    passed = failed = skipped = 0
    for case in root.iter():
        if _local(case.tag) != "testcase":
            continue
        children = {_local(child.tag) for child in case}
        if children & {"failure", "error"}:
            failed += 1
        elif "skipped" in children:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def collect(spec: ReportSpec, source: Path, note: Callable[[str], None]) -> GroupResult | None:
    """Count the results of one report group; None when it has no usable file."""
    if spec.file_format != "JUNITXML":
        note(f"Report group {spec.group}: file-format {spec.file_format} is not read; skipped")
        return None
    paths: list[str] = []
    for base in base_directories(source, spec.base_directory):
        chosen = select(base, spec.files, within=source.parent)
        paths += [entry.source for entry in chosen if entry.kind == "file"]
    passed = failed = skipped = files = 0
    for path in paths:
        try:
            counts = _junit(Path(path))
        except (OSError, ValueError) as error:
            note(f"Report group {spec.group}: {os.path.relpath(path, source)}: {error}; skipped")
            continue
        files += 1
        passed, failed, skipped = passed + counts[0], failed + counts[1], skipped + counts[2]
    if not files:
        note(f"Report group {spec.group}: no report files found ({', '.join(spec.files)})")
        return None
    note(
        f"Report group {spec.group}: {files} file{'s' if files != 1 else ''}, "
        f"{passed + failed + skipped} tests, {failed} failed"
    )
    return GroupResult(spec.group, files, passed, failed, skipped)


def summary(results: Sequence[GroupResult]) -> str | None:
    return "; ".join(result.describe() for result in results) or None
