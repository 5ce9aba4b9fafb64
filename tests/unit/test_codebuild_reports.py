"""Test report files read case by case in each file format CodeBuild takes, and the build
phase timeline read from the build log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.actions.codebuild.buildspec import ReportSpec
from conveyor.actions.codebuild.reports import collect, read_file
from conveyor.domain.builds import Step, Timeline, read_line


def cases(path: Path, text: str, file_format: str) -> list[tuple[str, str, str, int, str]]:
    path.write_text(text)
    return [
        (c.prefix, c.name, c.status, c.duration_ns, c.message) for c in read_file(path, file_format)
    ]


def test_junit_cases_with_failures_errors_and_skips(tmp_path: Path) -> None:
    """JUnit XML: a <failure> is FAILED, an <error> ERROR, a <skipped> SKIPPED; ``time`` is
    in seconds; the prefix is the class name."""
    text = (
        '<testsuite name="s"><testcase classname="A" name="ok" time="1.5"/>'
        '<testcase classname="A" name="bad"><failure message="no">trace</failure></testcase>'
        '<testcase classname="B" name="boom"><error>kaput</error></testcase>'
        '<testcase classname="B" name="later"><skipped/></testcase></testsuite>'
    )
    assert cases(tmp_path / "j.xml", text, "JUNITXML") == [
        ("A", "ok", "SUCCEEDED", 1_500_000_000, ""),
        ("A", "bad", "FAILED", 0, "no"),
        ("B", "boom", "ERROR", 0, "kaput"),
        ("B", "later", "SKIPPED", 0, ""),
    ]


def test_nested_junit_suites_count_each_case_once(tmp_path: Path) -> None:
    text = (
        '<testsuites><testsuite name="outer"><testsuite name="inner">'
        '<testcase name="one"/></testsuite></testsuite></testsuites>'
    )
    assert [c[1] for c in cases(tmp_path / "j.xml", text, "JUNITXML")] == ["one"]


def test_cucumber_json_scenarios(tmp_path: Path) -> None:
    """Cucumber JSON: a scenario fails when a step failed; durations are nanoseconds."""
    features = [
        {
            "name": "Cart",
            "elements": [
                {
                    "type": "scenario",
                    "name": "adds",
                    "steps": [{"result": {"status": "passed", "duration": 5}}],
                },
                {
                    "type": "scenario",
                    "name": "pays",
                    "steps": [
                        {"result": {"status": "passed", "duration": 1}},
                        {"result": {"status": "failed", "duration": 2, "error_message": "x"}},
                    ],
                },
            ],
        }
    ]
    assert cases(tmp_path / "c.json", json.dumps(features), "CUCUMBERJSON") == [
        ("Cart", "adds", "SUCCEEDED", 5, ""),
        ("Cart", "pays", "FAILED", 3, "x"),
    ]


def test_testng_nunit3_and_trx(tmp_path: Path) -> None:
    testng = (
        '<testng-results><suite name="S"><test><class name="C">'
        '<test-method name="setUp" is-config="true" status="PASS" duration-ms="1"/>'
        '<test-method name="works" status="PASS" duration-ms="12"/>'
        '<test-method name="fails" status="FAIL" duration-ms="3">'
        "<exception><message>bad</message></exception></test-method>"
        "</class></test></suite></testng-results>"
    )
    assert cases(tmp_path / "t.xml", testng, "TESTNGXML") == [
        ("C", "works", "SUCCEEDED", 12_000_000, ""),
        ("C", "fails", "FAILED", 3_000_000, "bad"),
    ]
    nunit = (
        '<test-run><test-suite><test-case fullname="N.Calc.Adds" methodname="Adds" '
        'classname="N.Calc" result="Passed" duration="0.5"/>'
        '<test-case fullname="N.Calc.Fails" methodname="Fails" classname="N.Calc" '
        'result="Failed" duration="0"><failure><message>nope</message></failure></test-case>'
        "</test-suite></test-run>"
    )
    assert cases(tmp_path / "n.xml", nunit, "NUNIT3XML") == [
        ("N.Calc", "Adds", "SUCCEEDED", 500_000_000, ""),
        ("N.Calc", "Fails", "FAILED", 0, "nope"),
    ]
    trx = (
        '<TestRun xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">'
        '<Results><UnitTestResult testId="1" testName="Adds" outcome="Passed" '
        'duration="00:00:01.2500000"/><UnitTestResult testId="2" testName="Skips" '
        'outcome="NotExecuted"/></Results><TestDefinitions><UnitTest id="1">'
        '<TestMethod className="Calc"/></UnitTest></TestDefinitions></TestRun>'
    )
    assert cases(tmp_path / "r.trx", trx, "VISUALSTUDIOTRX") == [
        ("Calc", "Adds", "SUCCEEDED", 1_250_000_000, ""),
        ("", "Skips", "SKIPPED", 0, ""),
    ]


def test_a_file_of_the_wrong_format_is_skipped_saying_why(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.xml").write_text("<html/>")
    (source / "b.xml").write_text('<testsuite><testcase name="x"/></testsuite>')
    notes: list[str] = []
    result = collect(ReportSpec("unit", ("*.xml",)), source, notes.append)
    assert result is not None
    assert result.files == 1 and result.passed == 1
    assert any("a.xml" in note and "<html>" in note for note in notes)
    [case] = result.report().cases
    assert case.file == "b.xml"


@pytest.mark.parametrize(
    ("line", "step"),
    [
        ("[Container] 2026/12/01 10:00:00.1 Entering phase BUILD", Step("enter", "BUILD")),
        (
            "[Container] 2026/12/01 10:00:00.1 Phase complete: BUILD State: FAILED",
            Step("complete", "BUILD", "FAILED"),
        ),
        (
            "[Container] 2026/12/01 10:00:00 Phase context status code: COMMAND_EXECUTION_ERROR "
            "Message: Error while executing command: false. Reason: exit status 1",
            Step(
                "context",
                code="COMMAND_EXECUTION_ERROR",
                message="Error while executing command: false. Reason: exit status 1",
            ),
        ),
        ("Entering phase BUILD", None),
        ("[Container] 2026/12/01 10:00:00.1 Entering phase NOTAPHASE", None),
    ],
)
def test_log_lines_read_into_steps(line: str, step: Step | None) -> None:
    assert read_line(line) == step


def test_timeline_of_a_build_that_failed_in_build() -> None:
    """A failed BUILD keeps its FAILED status and context; the phases after it that ran end
    SUCCEEDED, and COMPLETED closes the build with a start time only."""
    timeline = Timeline().enter("SUBMITTED", 0).enter("QUEUED", 0).enter("BUILD", 1)
    timeline = timeline.complete("BUILD", "FAILED", 3).context("COMMAND_EXECUTION_ERROR", "x")
    timeline = timeline.enter("POST_BUILD", 3).enter("FINALIZING", 4).finish("FAILED", 5)
    wire = {p["phaseType"]: p for p in (phase.wire() for phase in timeline.phases)}
    assert wire["BUILD"]["phaseStatus"] == "FAILED"
    assert wire["BUILD"]["durationInSeconds"] == 2
    assert wire["BUILD"]["contexts"] == [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": "x"}]
    assert wire["POST_BUILD"]["phaseStatus"] == "SUCCEEDED"
    assert wire["FINALIZING"]["phaseStatus"] == "SUCCEEDED"
    assert wire["COMPLETED"] == {"phaseType": "COMPLETED", "startTime": 5}
    assert timeline.current == "COMPLETED"
    assert Timeline.load(timeline.dump()) == timeline


def test_a_stopped_build_ends_its_open_phase_stopped() -> None:
    timeline = Timeline().enter("BUILD", 0).finish("STOPPED", 2, "stopped by StopBuild")
    build = timeline.phases[0].wire()
    assert build["phaseStatus"] == "STOPPED"
    assert build["contexts"][0]["statusCode"] == "BUILD_STOPPED"
