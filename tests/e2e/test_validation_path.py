"""One validation path: `validate`, `run` and `create` refuse the same files with the same
messages, each problem at its line and column, with the member or provider probably meant."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from conveyor.cli import client, run, validate
from conveyor.server import Running
from tests.conftest import make_client

UNREACHABLE = "http://127.0.0.1:9"


@click.group()
def cli() -> None:
    """The commands under test."""


for module in (client, run, validate):
    module.register(cli)

GOOD = """\
name: app
stages:
  - name: Source
    actions:
      - name: Checkout
        actionTypeId: {category: Source, owner: AWS, provider: Git, version: "1"}
        configuration: {RepositoryUrl: /nowhere, BranchName: main}
        outputArtifacts: [{name: Src}]
  - name: Build
    actions:
      - name: Make
        actionTypeId: {category: Build, owner: AWS, provider: CodeBuild, version: "1"}
        configuration: {ProjectName: app}
        inputArtifacts: [{name: Src}]
"""

# Each broken file, and the one problem every command must report for it.
BROKEN = {
    "run-order": (
        GOOD.replace("      - name: Make\n", "      - name: Make\n        runOrder: first\n"),
        "12:9: stages[1].actions[0].runOrder: Member must be of type integer (got 'first')",
    ),
    "misspelt-stages": (
        GOOD.replace("stages:", "stage:"),
        "1:1: stages: Member must not be null",
    ),
    "provider-case": (
        GOOD.replace("provider: CodeBuild", "provider: Codebuild"),
        "12:9: stages[1].actions[0].actionTypeId: ActionType (Category: 'Build', Provider: "
        "'Codebuild', Owner: 'AWS', Version: '1') in action 'Make' is not available. "
        "Did you mean provider 'CodeBuild'?",
    ),
}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("case", list(BROKEN))
@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["run"],
        ["create", "--endpoint", UNREACHABLE],
        ["update", "--endpoint", UNREACHABLE],
    ],
)
def test_every_command_refuses_the_file_with_the_same_message(
    tmp_path: Path, case: str, command: list[str]
) -> None:
    text, problem = BROKEN[case]
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    result = invoke(command[0], str(path), *command[1:])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"{path}:{problem}\n" in result.output
    assert result.output.endswith("\n1 problem\n")
    assert "Traceback" not in result.output


def test_an_unmodelled_member_is_a_warning_naming_the_member_meant(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(GOOD.replace("inputArtifacts:", "inputArtifact:"))
    result = invoke("validate", str(path))
    assert f"{path}:14:9: stages[1].actions[0].inputArtifact: warning: not in the model: " in (
        result.stdout
    )
    assert "Did you mean 'inputArtifacts'?" in result.stdout


def test_create_sends_what_the_server_keeps_not_the_unmodelled_member(tmp_path: Path) -> None:
    """Before, boto3 failed to serialize the unknown member: a KeyError traceback."""
    path = tmp_path / "pipeline.yaml"
    path.write_text(GOOD.replace("name: app\n", "name: app\ncolour: red\n"))
    result = invoke("create", str(path), "--endpoint", UNREACHABLE)
    assert result.exit_code == 1
    assert "colour: warning: not in the model" in result.stderr
    assert "cannot reach Conveyor at" in result.stderr
    assert not isinstance(result.exception, KeyError)


def test_positions_in_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.json"
    path.write_text('{"pipeline": {\n  "name": "bad name",\n  "stages": []\n}}\n')
    result = invoke("validate", str(path), "--json")
    report = json.loads(result.stdout)
    where = {(p["path"], p["line"], p["column"]) for p in report["problems"]}
    assert ("name", 2, 3) in where


@pytest.mark.parametrize(
    ("name", "text", "error"),
    [
        ("bad.yaml", "name: x\nstages: [\n", "bad.yaml:3:1: not valid YAML: "),
        ("bad.json", '{"name": "x",\n  ]', "bad.json:2:3: not valid JSON: "),
        ("list.yaml", "- 1\n", "expected a pipeline"),
    ],
)
def test_json_output_for_a_file_that_cannot_be_read(
    tmp_path: Path, name: str, text: str, error: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = invoke("validate", str(path), "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert error in report["error"]


def _with_source(action_type: dict[str, str], configuration: dict[str, str]) -> str:
    document = yaml.safe_load(GOOD)
    document.update(
        roleArn="arn:aws:iam::000000000000:role/x",
        artifactStore={"type": "S3", "location": "artifacts"},
    )
    source = document["stages"][0]["actions"][0]
    source.update(actionTypeId=action_type, configuration=configuration)
    return yaml.safe_dump(document)


GITHUB = {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"}
CUSTOM = {"category": "Source", "owner": "Custom", "provider": "Vault", "version": "1"}


def test_server_mode_knows_the_types_the_server_has(server: Running, tmp_path: Path) -> None:
    """Before, `validate --server` passed a ThirdParty source that the server refuses."""
    github = tmp_path / "github.yaml"
    github.write_text(_with_source(GITHUB, {"Owner": "me", "Repo": "app", "Branch": "main"}))
    offline = invoke("validate", str(github), "--server", "--endpoint", UNREACHABLE)
    assert offline.exit_code == 2
    assert "cannot ask the server at" in offline.stderr
    result = invoke("validate", str(github), "--server", "--endpoint", server.endpoint)
    assert result.exit_code == 1
    assert (
        "Provider: 'GitHub', Owner: 'ThirdParty', Version: '1') in action 'Checkout' is not "
        in (result.stdout)
    )
    created = invoke("create", str(github), "--endpoint", server.endpoint)
    assert created.exit_code == 1
    assert "InvalidActionDeclarationException" in created.stderr
    make_client(server.endpoint).create_custom_action_type(
        category="Source",
        provider="Vault",
        version="1",
        configurationProperties=[
            {"name": "Path", "required": True, "key": True, "secret": False, "type": "String"}
        ],
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
        outputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
    )
    vault = tmp_path / "vault.yaml"
    vault.write_text(_with_source(CUSTOM, {}))
    checked = invoke("validate", str(vault), "--server", "--endpoint", server.endpoint)
    assert checked.exit_code == 1
    assert "is missing the required configuration property 'Path'" in checked.stdout
    vault.write_text(_with_source(CUSTOM, {"Path": "secret/app"}))
    assert invoke("validate", str(vault), "--server", "--endpoint", server.endpoint).exit_code == 0
