"""What `conveyor run`'s live view says beside each action, and how it reads a typed answer."""

from __future__ import annotations

from pathlib import Path

from conveyor.cli.live import output
from conveyor.cli.prompt import Line, Question
from conveyor.cli.rows import Row, last_line, readable

BUILD_LOG = """\
[Container] 2026/12/01 10:00:00.123 Running on CodeBuild On-demand
[Container] 2026/12/01 10:00:00.456 Entering phase BUILD
[Container] 2026/12/01 10:00:00.789 Running command pytest -q
..                                                                       [100%]
2 passed in 0.03s
[Container] 2026/12/01 10:00:01 Phase complete: BUILD State: SUCCEEDED
[Container] 2026/12/01 10:00:01,5 Report group unit: 1 file, 2 tests, 0 failed

"""


def build_row(tmp_path: Path, status: str, summary: str | None = None) -> Row:
    log = tmp_path / "build.log"
    log.write_text(BUILD_LOG)
    return Row("Build", "UnitTests", status=status, started=1.0, log=log, summary=summary)


def test_readable_drops_the_container_prefix_only() -> None:
    assert readable("[Container] 2026/12/01 10:00:00.123 Running command make") == (
        "Running command make"
    )
    assert readable("[Container] 2026/12/01 10:00:00 Entering phase BUILD") == (
        "Entering phase BUILD"
    )
    assert readable("plain output [Container] 2026/12/01 10:00:00 x") == (
        "plain output [Container] 2026/12/01 10:00:00 x"
    )


def test_a_running_build_shows_its_last_line_without_the_prefix(tmp_path: Path) -> None:
    row = build_row(tmp_path, "InProgress")

    assert output(row).plain == "Report group unit: 1 file, 2 tests, 0 failed"
    assert last_line(row.log) == "Report group unit: 1 file, 2 tests, 0 failed"


def test_a_finished_build_shows_its_test_summary(tmp_path: Path) -> None:
    summary = "2 tests: 2 passed, 0 failed (report group unit)"
    row = build_row(tmp_path, "Succeeded", summary=summary)

    assert output(row).plain == summary


def test_a_finished_action_without_tests_shows_its_last_line(tmp_path: Path) -> None:
    row = build_row(tmp_path, "Succeeded", summary="Ran 2 commands")

    assert output(row).plain == "Report group unit: 1 file, 2 tests, 0 failed"


def test_a_line_is_edited_as_typed() -> None:
    line = Line()

    assert line.feed(b"yex\x7fs") == []
    assert line.text == "yes"
    assert line.feed(b"\x1b[D\r") == ["yes"]
    assert line.feed("café\n".encode()) == ["café"]
    assert line.feed(b"gone\x15\x04") == [None]
    assert line.feed(b"") == [None]


def test_a_question_takes_a_decision_then_a_comment() -> None:
    question = Question(Row("Release", "Gate", status="InProgress", token="t"))

    assert question.prompt.startswith("Approve?")
    assert question.take("Y") is None
    assert question.prompt.startswith("Comment")
    assert question.take("  fine by me ") == (True, "fine by me")
    assert Question(Row("Release", "Gate")).take(None) == (False, "")
