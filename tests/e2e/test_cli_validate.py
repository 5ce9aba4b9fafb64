"""`conveyor validate FILE`: the server's checks offline, each problem at its path in the file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from conveyor.cli import validate
from conveyor.cli.validate import document_path
from conveyor.server import Running
from tests.support.engine import approval, commands, git_source, stage


@click.group()
def cli() -> None:
    """The commands under test, until main.py registers them."""


validate.register(cli)


def run(*args: str, color: bool = False) -> Result:
    return CliRunner().invoke(cli, ["validate", *args], color=color)


def local_pipeline(**extra: Any) -> dict[str, Any]:
    """A valid pipeline with neither roleArn nor artifactStore, as people write them locally."""
    return {
        "name": "app",
        "stages": [
            {"name": "Source", "actions": [git_source("repo")]},
            stage("Build", commands("Make", "make")),
            stage("Gate", approval()),
        ],
        **extra,
    }


def findings(result: Result) -> list[str]:
    """The output's lines without their ``file:line:column:`` prefix."""
    return [re.sub(r"^\S+?:(\d+:\d+:)? ", "", line) for line in result.stdout.splitlines()]


def write(path: Path, document: Any) -> Path:
    text = json.dumps(document) if path.suffix == ".json" else yaml.safe_dump(document)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "wrapped"),
    [("app.yaml", True), ("app.yml", False), ("app.json", True), ("app.json", False)],
)
def test_a_valid_file_says_so_in_one_line(tmp_path: Path, name: str, wrapped: bool) -> None:
    document = local_pipeline()
    path = write(tmp_path / name, {"pipeline": document} if wrapped else document)
    result = run(str(path))
    assert result.exit_code == 0, result.output
    assert (
        result.stdout == f"{path}: pipeline 'app' is valid: 3 stages, 3 actions (V2, SUPERSEDED)\n"
    )


def test_the_summary_names_the_declared_type_and_mode(tmp_path: Path) -> None:
    document = local_pipeline(executionMode="QUEUED", pipelineType="V2")
    document["stages"][1] = stage("Build", approval("Check"))
    result = run(str(write(tmp_path / "p.yaml", document)))
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("3 stages, 3 actions (V2, QUEUED)\n")


def test_shape_errors_are_all_listed_at_their_paths_in_the_document(tmp_path: Path) -> None:
    document = local_pipeline(name="my app")
    document["stages"][1]["actions"][0].update(name="bad name!", runOrder=0)
    del document["stages"][1]["actions"][0]["actionTypeId"]["version"]
    document["stages"][2]["actions"][0]["inputArtifact"] = [{"name": "Src"}]
    result = run(str(write(tmp_path / "broken.yaml", document)))
    assert result.exit_code == 1
    *found, last = findings(result)
    assert last == "4 problems"
    assert sorted(found) == [
        r"name: Member must satisfy regular expression pattern: [A-Za-z0-9.@\-_]+ (got 'my app')",
        "stages[1].actions[0].actionTypeId.version: Member must not be null",
        r"stages[1].actions[0].name: Member must satisfy regular expression pattern: [A-Za-z0-9.@\-_]+ (got 'bad name!')",
        "stages[1].actions[0].runOrder: Member must have value greater than or equal to 1 (got '0')",
        "stages[2].actions[0].inputArtifact: warning: not in the model: the server ignores it. "
        "Did you mean 'inputArtifacts'?",
    ]


def test_structural_errors_are_all_listed_at_their_paths(tmp_path: Path) -> None:
    document = local_pipeline(pipelineType="V1")
    build = document["stages"][1]
    build["actions"][0]["inputArtifacts"] = [{"name": "Missing"}]
    build["actions"].append(commands("Make", "make again", run_order=2))
    document["stages"][2]["actions"][0]["configuration"] = {"Colour": "red"}
    document["stages"].append(stage("Late", git_source("repo", output="Other", namespace=None)))
    result = run(str(write(tmp_path / "broken.json", document)))
    assert result.exit_code == 1
    lines = findings(result)
    assert lines[-1] == f"{len(lines) - 1} problems"
    where = {line.split(": ", 1)[0] for line in lines[:-1]}
    assert where == {
        "pipelineType",
        "stages[1].actions",
        "stages[1].actions[0].inputArtifacts[0]",
        "stages[2].actions[0].configuration.Colour",
        "stages[3].actions[0]",
    }
    text = "\n".join(lines)
    assert "pipelineType: The Commands action can only be used with V2 pipelines." in text
    assert "stages[1].actions: Action name 'Make' is used more than once in stage 'Build'." in text
    assert (
        "stages[1].actions[0].inputArtifacts[0]: Input artifact 'Missing' of action 'Make' in "
        "stage 'Build' is not the output of an action that runs before it." in text
    )
    assert "unknown configuration property 'Colour'" in text
    assert "source actions may only be in the first stage" in text


def test_custom_action_types_are_a_warning_not_an_error(tmp_path: Path) -> None:
    document = local_pipeline()
    document["stages"][1]["actions"].append(
        {
            "name": "Deploy",
            "actionTypeId": {
                "category": "Deploy",
                "owner": "Custom",
                "provider": "MyDeployer",
                "version": "3",
            },
            "configuration": {"Anything": "goes"},
            "runOrder": 2,
        }
    )
    result = run(str(write(tmp_path / "p.yaml", document)))
    assert result.exit_code == 0, result.output
    warning, summary = findings(result)
    assert warning.startswith("stages[1].actions[1].actionTypeId: warning: action type ")
    assert "cannot be checked offline" in warning
    assert "pipeline 'app' is valid: 3 stages, 4 actions" in summary


def test_an_unknown_aws_type_is_an_error(tmp_path: Path) -> None:
    document = local_pipeline()
    document["stages"][1]["actions"][0]["actionTypeId"]["provider"] = "Nope"
    result = run(str(write(tmp_path / "p.yaml", document)))
    assert result.exit_code == 1
    assert findings(result)[0].startswith(
        "stages[1].actions[0].actionTypeId: ActionType (Category:"
    )
    assert result.stdout.endswith("1 problem\n")


def test_server_mode_takes_no_local_defaults(tmp_path: Path, server: Running) -> None:
    path = write(tmp_path / "p.yaml", local_pipeline())
    result = run(str(path), "--server", "--endpoint", server.endpoint)
    assert result.exit_code == 1
    assert findings(result) == ["roleArn: Member must not be null", "1 problem"]
    document = local_pipeline(roleArn="arn:aws:iam::000000000000:role/x")
    full = str(write(tmp_path / "full.yaml", document))
    assert run(full, "--server", "--endpoint", server.endpoint).exit_code == 0


def test_json_output_lists_the_findings(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", local_pipeline(name="bad name"))
    result = run(str(path), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert [p["path"] for p in report["problems"]] == ["name"]


def test_problems_are_coloured_on_a_terminal(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", local_pipeline(name="bad name"))
    assert "\x1b[31mname\x1b[0m: Member must" in run(str(path), color=True).stdout
    assert "\x1b[" not in run(str(path)).stdout


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.yaml", None, "missing.yaml: No such file or directory"),
        ("bad.yaml", "stages: [", "bad.yaml:1:10: not valid YAML"),
        ("bad.json", "{", "bad.json:1:2: not valid JSON"),
        ("list.yaml", "- 1\n", "expected a pipeline"),
    ],
)
def test_an_unreadable_file_exits_2(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_text(content)
    result = run(str(tmp_path / name))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert message in result.stderr


@pytest.mark.parametrize(
    ("model", "document"),
    [
        ("pipeline.name", "name"),
        ("pipeline", "pipeline"),
        ("pipeline.stages.1.member.actions.12.member.name", "stages[0].actions[11].name"),
        ("pipeline.artifactStores.eu-west-1.location", "artifactStores.eu-west-1.location"),
    ],
)
def test_model_paths_become_document_paths(model: str, document: str) -> None:
    assert document_path(model) == document


def _registered() -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "conveyor", "--help"], capture_output=True, text=True, check=False
    )
    return " validate " in result.stdout


@pytest.mark.skipif(not _registered(), reason="validate is not registered in conveyor.cli.main")
def test_the_installed_command(tmp_path: Path) -> None:
    good = write(tmp_path / "good.yaml", local_pipeline())
    bad = write(tmp_path / "bad.yaml", local_pipeline(name="bad name"))
    command = [sys.executable, "-m", "conveyor", "validate"]
    ok = subprocess.run([*command, str(good)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "is valid" in ok.stdout
    failed = subprocess.run([*command, str(bad)], capture_output=True, text=True, check=False)
    assert failed.returncode == 1
    assert failed.stdout.startswith(f"{bad}:1:1: name: ")
