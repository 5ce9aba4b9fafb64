"""Test reports: the buildspec's ``reports`` groups, their files read case by case.

Each group's files are chosen like artifacts (``files`` globs under ``base-directory``) and
read in the group's ``file-format``: JUNITXML (CodeBuild's default), CUCUMBERJSON, TESTNGXML,
NUNITXML, NUNIT3XML and VISUALSTUDIOTRX. Each case gets CodeBuild's status (SUCCEEDED,
FAILED, ERROR, SKIPPED, UNKNOWN), its duration, its prefix (the class or suite) and the
failure message. As in CodeBuild, failed tests do not fail the build by themselves; the summary
says how many there were. Code coverage formats are named in the log and skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from conveyor.actions.codebuild.buildspec import ReportSpec
from conveyor.actions.codebuild.files import base_directories, select
from conveyor.domain.builds import CaseResult, ReportResult

__all__ = ["GroupResult", "collect", "read_file", "summary"]

_MAX_REPORT_BYTES = 64 << 20
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class GroupResult:
    group: str
    files: int
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    file_format: str = "JUNITXML"
    cases: tuple[CaseResult, ...] = ()

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped

    def describe(self) -> str:
        noun = "test" if self.total == 1 else "tests"
        text = f"{self.total} {noun}: {self.passed} passed, {self.failed} failed"
        if self.skipped:
            text += f", {self.skipped} skipped"
        return f"{text} (report group {self.group})"

    def report(self) -> ReportResult:
        return ReportResult(self.group, self.file_format, self.cases, self.files)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _seconds(text: str | None) -> int:
    """Nanoseconds in a number of seconds written as text ("" or junk: 0)."""
    try:
        return max(0, int(float((text or "0").replace(",", "")) * _NS))
    except ValueError:
        return 0


def _hms(text: str | None) -> int:
    """Nanoseconds in a TRX duration, ``hh:mm:ss.fffffff``."""
    parts = (text or "").split(":")
    if len(parts) != 3:
        return 0
    try:
        hours, minutes = int(parts[0]), int(parts[1])
        return int(((hours * 60 + minutes) * 60 + float(parts[2])) * _NS)
    except ValueError:
        return 0


def _xml(path: Path) -> ElementTree.Element:
    try:
        return ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise ValueError(f"not valid XML: {error}") from error


def _message(element: ElementTree.Element | None) -> str:
    if element is None:
        return ""
    text = element.get("message") or (element.text or "").strip()
    return text[:5000]


def _junit(path: Path) -> Iterator[CaseResult]:
    root = _xml(path)
    if _local(root.tag) not in ("testsuites", "testsuite"):
        raise ValueError(f"the root element is <{_local(root.tag)}>, not <testsuites>")
    suites = [root] if _local(root.tag) == "testsuite" else list(root.iter())
    seen: set[int] = set()
    for suite in suites:
        if _local(suite.tag) != "testsuite":
            continue
        for case in suite.iter():
            if _local(case.tag) != "testcase" or id(case) in seen:
                continue
            seen.add(id(case))
            children = {_local(child.tag): child for child in case}
            if "failure" in children:
                status, detail = "FAILED", children["failure"]
            elif "error" in children:
                status, detail = "ERROR", children["error"]
            elif "skipped" in children:
                status, detail = "SKIPPED", children["skipped"]
            else:
                status, detail = "SUCCEEDED", None
            yield CaseResult(
                name=case.get("name", ""),
                status=status,
                prefix=case.get("classname", ""),
                suite=suite.get("name", ""),
                duration_ns=_seconds(case.get("time")),
                message=_message(detail),
            )


def _testng(path: Path) -> Iterator[CaseResult]:
    root = _xml(path)
    if _local(root.tag) != "testng-results":
        raise ValueError(f"the root element is <{_local(root.tag)}>, not <testng-results>")
    statuses = {"PASS": "SUCCEEDED", "FAIL": "FAILED", "SKIP": "SKIPPED"}
    for suite in root.iter("suite"):
        for klass in suite.iter("class"):
            for method in klass.iter("test-method"):
                if method.get("is-config") == "true":
                    continue
                exception = method.find("exception")
                message = exception.find("message") if exception is not None else None
                yield CaseResult(
                    name=method.get("name", ""),
                    status=statuses.get(method.get("status", ""), "UNKNOWN"),
                    prefix=klass.get("name", ""),
                    suite=suite.get("name", ""),
                    duration_ns=int(method.get("duration-ms", "0") or 0) * 1_000_000,
                    message=(message.text or "").strip() if message is not None else "",
                )


def _nunit(path: Path) -> Iterator[CaseResult]:
    root = _xml(path)
    if _local(root.tag) not in ("test-run", "test-results"):
        raise ValueError(f"the root element is <{_local(root.tag)}>, not <test-run>")
    for case in root.iter("test-case"):
        result = case.get("result") or ("Success" if case.get("success") == "True" else "")
        if case.get("executed") == "False":
            result = "Skipped"
        status = {
            "Passed": "SUCCEEDED",
            "Success": "SUCCEEDED",
            "Failed": "FAILED",
            "Failure": "FAILED",
            "Error": "ERROR",
            "Skipped": "SKIPPED",
            "Ignored": "SKIPPED",
            "Inconclusive": "UNKNOWN",
        }.get(result, "UNKNOWN")
        failure = case.find("failure")
        message = failure.find("message") if failure is not None else None
        full = case.get("fullname") or case.get("name") or ""
        name = case.get("methodname") or full.rpartition(".")[2]
        yield CaseResult(
            name=name,
            status=status,
            prefix=case.get("classname") or full.rpartition(".")[0],
            duration_ns=_seconds(case.get("duration") or case.get("time")),
            message=(message.text or "").strip() if message is not None else "",
        )


def _trx(path: Path) -> Iterator[CaseResult]:
    root = _xml(path)
    if _local(root.tag) != "TestRun":
        raise ValueError(f"the root element is <{_local(root.tag)}>, not <TestRun>")
    classes = {}
    for element in root.iter():
        if _local(element.tag) == "UnitTest":
            method = next((c for c in element if _local(c.tag) == "TestMethod"), None)
            if method is not None:
                classes[element.get("id", "")] = method.get("className", "")
    statuses = {"Passed": "SUCCEEDED", "Failed": "FAILED", "NotExecuted": "SKIPPED"}
    for element in root.iter():
        if _local(element.tag) != "UnitTestResult":
            continue
        message = next((e for e in element.iter() if _local(e.tag) == "Message"), None)
        yield CaseResult(
            name=element.get("testName", ""),
            status=statuses.get(element.get("outcome", ""), "UNKNOWN"),
            prefix=classes.get(element.get("testId", ""), ""),
            duration_ns=_hms(element.get("duration")),
            message=(message.text or "").strip() if message is not None else "",
        )


def _cucumber(path: Path) -> Iterator[CaseResult]:
    try:
        features = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"not valid JSON: {error}") from error
    if not isinstance(features, list):
        raise ValueError("a Cucumber JSON report is a list of features")
    for feature in features:
        if not isinstance(feature, dict):
            continue
        for scenario in feature.get("elements") or []:
            if not isinstance(scenario, dict) or scenario.get("type") == "background":
                continue
            steps = [s.get("result") or {} for s in scenario.get("steps") or []]
            states = [str(r.get("status", "")) for r in steps]
            if "failed" in states:
                status = "FAILED"
            elif states and all(s == "passed" for s in states):
                status = "SUCCEEDED"
            elif "skipped" in states or "pending" in states:
                status = "SKIPPED"
            else:
                status = "UNKNOWN"
            errors = [str(r["error_message"]) for r in steps if r.get("error_message")]
            yield CaseResult(
                name=str(scenario.get("name", "")),
                status=status,
                prefix=str(feature.get("name", "")),
                duration_ns=sum(int(r.get("duration") or 0) for r in steps),
                message=errors[0][:5000] if errors else "",
            )


_READERS: dict[str, Callable[[Path], Iterator[CaseResult]]] = {
    "JUNITXML": _junit,
    "CUCUMBERJSON": _cucumber,
    "TESTNGXML": _testng,
    "NUNITXML": _nunit,
    "NUNIT3XML": _nunit,
    "VISUALSTUDIOTRX": _trx,
}


def read_file(path: Path, file_format: str) -> list[CaseResult]:
    """The cases of one report file; raises ValueError (or OSError) if it cannot be read."""
    if path.stat().st_size > _MAX_REPORT_BYTES:
        raise ValueError(f"larger than {_MAX_REPORT_BYTES >> 20} MB")
    return list(_READERS[file_format](path))


def collect(spec: ReportSpec, source: Path, note: Callable[[str], None]) -> GroupResult | None:
    """Read the results of one report group; None when it has no usable file."""
    if spec.file_format not in _READERS:
        note(f"Report group {spec.group}: file-format {spec.file_format} is not read; skipped")
        return None
    paths: list[str] = []
    for base in base_directories(source, spec.base_directory):
        chosen = select(base, spec.files, within=source.parent)
        paths += [entry.source for entry in chosen if entry.kind == "file"]
    cases: list[CaseResult] = []
    files = 0
    for path in paths:
        shown = os.path.relpath(path, source)
        try:
            found = read_file(Path(path), spec.file_format)
        except (OSError, ValueError) as error:
            note(f"Report group {spec.group}: {shown}: {error}; skipped")
            continue
        files += 1
        cases += [_with_file(case, shown) for case in found]
    if not files:
        note(f"Report group {spec.group}: no report files found ({', '.join(spec.files)})")
        return None
    failed = sum(case.status in ("FAILED", "ERROR") for case in cases)
    skipped = sum(case.status == "SKIPPED" for case in cases)
    note(
        f"Report group {spec.group}: {files} file{'s' if files != 1 else ''}, "
        f"{len(cases)} tests, {failed} failed"
    )
    return GroupResult(
        spec.group,
        files,
        len(cases) - failed - skipped,
        failed,
        skipped,
        spec.file_format,
        tuple(cases),
    )


def _with_file(case: CaseResult, file: str) -> CaseResult:
    return CaseResult(
        case.name, case.status, case.prefix, case.suite, case.duration_ns, case.message, file
    )


def summary(results: Sequence[GroupResult]) -> str | None:
    return "; ".join(result.describe() for result in results) or None
