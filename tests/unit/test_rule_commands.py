"""The Commands and CodeBuild rules through their providers, over a real input artifact."""

from __future__ import annotations

from pathlib import Path

from conveyor.actions.base import ArtifactLocation, FailureType, ProviderConfig
from conveyor.artifacts.archive import pack
from conveyor.artifacts.local import LocalBuckets
from conveyor.artifacts.unpacked import Unpacked
from conveyor.rules.codebuild import CodeBuildRule
from conveyor.rules.commands import LIMIT_SECONDS, CommandsRule
from tests.support.rulejobs import log_of, rule_context


def _source(tmp_path: Path, files: dict[str, str]) -> ArtifactLocation:
    folder = tmp_path / "source"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    pack(folder, tmp_path / "source.zip")
    LocalBuckets(tmp_path / "buckets").put("art", "source.zip", tmp_path / "source.zip")
    return ArtifactLocation("Src", "art", "source.zip", revision="abc123")


def _rule(tmp_path: Path) -> CommandsRule:
    config = ProviderConfig(home=tmp_path / "home")
    return CommandsRule(config, Unpacked(tmp_path / "home" / "unpacked"))


def test_commands_that_succeed_pass_the_rule(tmp_path: Path) -> None:
    context = rule_context(
        tmp_path,
        {},
        commands=("test -f VERSION", "echo checked $(cat VERSION)"),
        inputs=(_source(tmp_path, {"VERSION": "1.4.2\n"}),),
    )
    result = _rule(tmp_path).run(context)
    assert result.succeeded, result.message
    assert result.summary == "Ran 2 commands"
    assert "checked 1.4.2" in log_of(context)


def test_a_failing_command_fails_the_rule_naming_it(tmp_path: Path) -> None:
    context = rule_context(
        tmp_path,
        {},
        commands=("echo looking", "grep -q ready STATUS"),
        inputs=(_source(tmp_path, {"STATUS": "not yet\n"}),),
    )
    result = _rule(tmp_path).run(context)
    assert not result.succeeded
    assert result.summary == "Command 2 of 2 (grep -q ready STATUS) failed with exit status 1"
    assert result.message and "looking" in result.message


def test_commands_rule_refuses_no_commands_and_multi_line_ones(tmp_path: Path) -> None:
    for commands, named in [((), "needs commands"), (("echo a\necho b",), "single-line")]:
        result = _rule(tmp_path).run(rule_context(tmp_path, {}, commands=commands))
        assert not result.succeeded
        assert result.failure_type is FailureType.CONFIGURATION_ERROR
        assert result.message and named in result.message


def test_commands_rule_runs_at_most_55_minutes(tmp_path: Path) -> None:
    context = rule_context(tmp_path, {}, commands=("sleep 30",), time_left=0.5)
    result = _rule(tmp_path).run(context)
    assert not result.succeeded
    assert result.message and result.message.startswith("Timed out")
    assert LIMIT_SECONDS == 3300


def test_codebuild_rule_passes_when_the_build_succeeds(tmp_path: Path) -> None:
    spec = 'version: 0.2\nphases:\n  build:\n    commands:\n      - test "$(cat VERSION)" = 2\n'
    for version, passed in (("2", True), ("3", False)):
        case = tmp_path / version
        context = rule_context(
            case,
            {"ProjectName": "checks"},
            inputs=(_source(case, {"VERSION": version, "buildspec.yml": spec}),),
        )
        config = ProviderConfig(home=case / "home")
        result = CodeBuildRule(config, Unpacked(case / "home" / "unpacked")).run(context)
        assert result.succeeded is passed, result.message
        assert not result.output_variables
