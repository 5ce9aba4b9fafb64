"""One validation path: `validate`, `run` and `create` refuse the same files with the same
messages, each problem at its line and column, with the member or provider probably meant."""

from __future__ import annotations

import json
import os
import subprocess
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


# A third-party type the catalog does not hold and the server has not registered.
FORGE = {"category": "Source", "owner": "ThirdParty", "provider": "Forge", "version": "1"}
CUSTOM = {"category": "Source", "owner": "Custom", "provider": "Vault", "version": "1"}


def test_server_mode_knows_the_types_the_server_has(server: Running, tmp_path: Path) -> None:
    """Before, `validate --server` passed a ThirdParty source that the server refuses."""
    github = tmp_path / "github.yaml"
    github.write_text(_with_source(FORGE, {"Owner": "me", "Repo": "app", "Branch": "main"}))
    offline = invoke("validate", str(github), "--server", "--endpoint", UNREACHABLE)
    assert offline.exit_code == 2
    assert "cannot ask the server at" in offline.stderr
    result = invoke("validate", str(github), "--server", "--endpoint", server.endpoint)
    assert result.exit_code == 1
    assert "Provider: 'Forge', Owner: 'ThirdParty', Version: '1') in action 'Checkout' is not " in (
        result.stdout
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


REFERENCES = """\
name: refs
pipelineType: V2
variables: [{name: environment, defaultValue: dev}]
stages:
  - name: Source
    actions:
      - name: Checkout
        actionTypeId: {category: Source, owner: AWS, provider: Git, version: "1"}
        configuration: {RepositoryUrl: REPOSITORY, BranchName: main}
        outputArtifacts: [{name: Src}]
        namespace: SourceVariables
  - name: Build
    actions:
      - name: Make
        actionTypeId: {category: Build, owner: AWS, provider: CodeBuild, version: "1"}
        configuration: {ProjectName: refs}
        inputArtifacts: [{name: Src}]
        namespace: BuildVariables
      - name: Use
        runOrder: 2
        actionTypeId: {category: Compute, owner: AWS, provider: Commands, version: "1"}
        commands:
          - "echo #{SourceVariables.CommitId} #{BuildVariables.VERSION} #{variables.environment}"
          - "echo #{Source.Nope} #{SourceVariables.Commit} #{BuildVariables.VERSOIN}"
          - "echo #{variables.enviroment} #{codepipeline.PipelineExecutionId}"
        inputArtifacts: [{name: Src}]
"""


def _repository(folder: Path, buildspec: str) -> Path:
    folder.mkdir()
    (folder / "buildspec.yml").write_text(buildspec)
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "Build"]):
        subprocess.run(["git", *args], cwd=folder, env=GIT_ENV, check=True)
    return folder


GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
EXPORTS = (
    "version: 0.2\nenv:\n  exported-variables: [VERSION]\nphases:\n  build:\n    commands: [true]\n"
)


def test_variable_references_name_what_runs_before_and_what_it_sets(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "repo", EXPORTS)
    path = tmp_path / "pipeline.yaml"
    path.write_text(REFERENCES.replace("REPOSITORY", str(repository)))
    result = invoke("run", str(path))
    assert result.exit_code == 1
    second = f"{path}:24:13: stages[1].actions[1].commands[1]"
    third = f"{path}:25:13: stages[1].actions[1].commands[2]"
    assert sorted(line for line in result.output.splitlines() if "#{" in line) == [
        f"{second}: #{{BuildVariables.VERSOIN}}: action 'Make' sets no variable 'VERSOIN' "
        "(it sets: VERSION). Did you mean 'VERSION'?",
        f"{second}: #{{SourceVariables.Commit}}: action 'Checkout' sets no variable 'Commit' "
        "(it sets: AuthorDate, BranchName, CommitId, CommitMessage, CommitterDate, "
        "RepositoryName). Did you mean 'CommitId'?",
        f"{third}: #{{variables.enviroment}}: the pipeline declares no variable "
        "'enviroment' (it declares: environment). Did you mean 'environment'?",
        f"Error: {second}: #{{Source.Nope}}: no action declares namespace 'Source'.",
    ]
    assert result.output.endswith("4 problems\n")


def test_a_namespace_of_the_same_run_order_is_not_visible(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(REFERENCES.replace("REPOSITORY", "/nowhere").replace("runOrder: 2", ""))
    result = invoke("validate", str(path))
    assert "namespace 'BuildVariables' belongs to action 'Make', which does not run before " in (
        result.stdout
    )


@pytest.mark.parametrize(
    ("buildspec", "message"),
    [
        ("version: 0.2\nphase: {}\n", "Invalid buildspec (buildspec.yml on branch main of "),
        (None, "no buildspec: buildspec.yml on branch main of "),
    ],
)
def test_the_buildspec_in_a_local_repository_is_parsed(
    tmp_path: Path, buildspec: str | None, message: str
) -> None:
    repository = _repository(tmp_path / "repo", buildspec or EXPORTS)
    if buildspec is None:
        subprocess.run(["git", "rm", "-q", "buildspec.yml"], cwd=repository, check=True)
        subprocess.run(["git", "commit", "-qm", "No"], cwd=repository, env=GIT_ENV, check=True)
    path = tmp_path / "pipeline.yaml"
    path.write_text(REFERENCES.replace("REPOSITORY", str(repository)))
    result = invoke("validate", str(path))
    assert f"{path}:14:9: stages[1].actions[0]: {message}" in result.stdout


def test_an_inline_buildspec_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    inline = '{ProjectName: refs, BuildSpec: "version: 0.3\\nphases: {}"}'
    path.write_text(REFERENCES.replace("{ProjectName: refs}", inline))
    result = invoke("validate", str(path))
    assert (
        "stages[1].actions[0].configuration.BuildSpec: Invalid buildspec (BuildSpec (inline)): "
        "line 1: version 0.3 is not supported; use 0.2"
    ) in result.stdout
