"""CodeBuild configuration: where the buildspec comes from, its checks, variables and secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.actions.base import FailureType
from conveyor.actions.codebuild.model import OnFailure, parse_on_failure
from tests.unit.test_codebuild import context, log_of, run

SECRETS = """\
parameters:
  /app/db-password: hunter2-parameter
  /app/region: eu-west-1
secrets:
  prod/api: '{"token": "s3cr3t-token-value", "user": "deploy"}'
  plain-secret: just-a-secret-string
"""


def test_secrets_are_injected_and_masked_in_the_log(tmp_path: Path) -> None:
    (tmp_path / "secrets.yml").write_text(SECRETS)
    buildspec = """\
version: 0.2
env:
  parameter-store:
    DB_PASSWORD: /app/db-password
  secrets-manager:
    TOKEN: prod/api:token
    PLAIN: plain-secret
phases:
  build:
    commands:
      - echo "password is $DB_PASSWORD"
      - echo "token is $TOKEN and $PLAIN"
      - test "$TOKEN" = s3cr3t-token-value && echo "$DB_PASSWORD" > seen.txt
      - echo "$TOKEN"; exit 9
"""
    job = context(tmp_path, buildspec)
    result = run(tmp_path, job, secrets=tmp_path / "secrets.yml")
    log = log_of(job)
    assert "password is ***\n" in log
    assert "token is *** and ***\n" in log
    assert "hunter2" not in log and "s3cr3t" not in log and "just-a-secret" not in log
    assert (job.workspace / "src" / "seen.txt").read_text() == "hunter2-parameter\n"
    assert result.message is not None and "s3cr3t" not in result.message
    assert "***" in result.message


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ("parameter-store:\n    X: /missing", "parameter /missing is not in the secrets file"),
        ("secrets-manager:\n    X: nope", "secret nope is not in the secrets file"),
        ("secrets-manager:\n    X: prod/api:nokey", "secret prod/api has no JSON key nokey"),
        ("variables:\n    CODEBUILD_MINE: x", "CODEBUILD_MINE starts with CODEBUILD_"),
        (
            "secrets-manager:\n    X: plain-secret\n  exported-variables: [X]",
            "X holds a secret and cannot be exported",
        ),
    ],
)
def test_a_bad_variable_is_a_configuration_error(tmp_path: Path, env: str, problem: str) -> None:
    (tmp_path / "secrets.yml").write_text(SECRETS)
    buildspec = f"version: 0.2\nenv:\n  {env}\nphases:\n  build:\n    commands: [touch ran]\n"
    job = context(tmp_path, buildspec)
    result = run(tmp_path, job, secrets=tmp_path / "secrets.yml")
    assert result.failure_type == FailureType.CONFIGURATION_ERROR
    assert result.message is not None and problem in result.message
    assert not (job.workspace / "src" / "ran").exists()


def test_environment_variables_configuration_overrides_the_buildspec(tmp_path: Path) -> None:
    (tmp_path / "secrets.yml").write_text(SECRETS)
    buildspec = """\
version: 0.2
env:
  variables:
    STAGE: dev
    KEEP: "1.10"
    REGION: us-east-1
  exported-variables: [STAGE, KEEP]
phases:
  build:
    commands: [echo "$STAGE $KEEP $REGION"]
"""
    overrides = [
        {"name": "STAGE", "value": "prod"},
        {"name": "REGION", "value": "/app/region", "type": "PARAMETER_STORE"},
    ]
    job = context(
        tmp_path, buildspec, configuration={"EnvironmentVariables": json.dumps(overrides)}
    )
    result = run(tmp_path, job, secrets=tmp_path / "secrets.yml")
    assert result.succeeded, result.message
    assert "prod 1.10 ***\n" in log_of(job)
    assert result.output_variables == {"STAGE": "prod", "KEEP": "1.10"}


def test_an_inline_buildspec_configuration_wins(tmp_path: Path) -> None:
    inline = "version: 0.2\nphases:\n  build:\n    commands: [echo inline]\n"
    job = context(
        tmp_path,
        "version: 0.2\nphases: {build: {commands: [echo file]}}",
        configuration={"BuildSpec": inline},
    )
    assert run(tmp_path, job).succeeded
    assert "inline\n" in log_of(job) and "file\n" not in log_of(job)
    assert "Using buildspec from BuildSpec (inline)" in log_of(job)


def test_buildspec_paths_and_the_override(tmp_path: Path) -> None:
    files = {
        "ci/test.yml": "version: 0.2\nphases:\n  build:\n    commands: [echo from-path]\n",
        "ci/other.yml": "version: 0.2\nphases:\n  build:\n    commands: [echo from-override]\n",
    }
    job = context(
        tmp_path,
        files=files,
        configuration={"BuildSpec": "ci/test.yml", "BuildspecOverride": "ci/other.yml"},
    )
    assert run(tmp_path, job).succeeded
    assert "from-override\n" in log_of(job)
    job = context(tmp_path, files=files, configuration={"BuildSpec": "ci/test.yml"}, workspace="w2")
    assert run(tmp_path, job).succeeded
    assert "from-path\n" in log_of(job)


@pytest.mark.parametrize(
    ("buildspec", "problem"),
    [
        (None, "no buildspec: buildspec.yml of the primary source Src does not exist"),
        (
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo a: b\n",
            "phases.build.commands must be a list of strings: item 1 is not a string (quote",
        ),
        ("phases:\n  build:\n    commands: [x]\n", "version is missing"),
        ("version: 0.2\nphases:\n  build:\n    finally: [x]\n", "phases.build.commands is missing"),
        (
            "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-101\n    commands: [x]\n",
            "retry count must be between 0 and 100",
        ),
        (
            "version: 0.2\nphases:\n  build:\n    on-failure: IGNORE\n    commands: [x]\n",
            "on-failure 'IGNORE': must be ABORT, CONTINUE",
        ),
        ("version: 0.2\nphases: [build]\n", "phases must be a mapping"),
        ("version: 0.2\n\tphases:\n", "not valid YAML: line 2, column 1: found a tab"),
        ("version: 0.3\nphases: [build]\n", "line 1: version 0.3 is not supported; use 0.2"),
        (
            "version: 0.2\nphases:\n  build:\n    commands: {a: b}\n",
            "line 4: phases.build.commands must be a list of strings",
        ),
        (
            "version: 0.2\nphases:\n  build:\n    commands: [x]\nartifacts:\n  name: a\n",
            "artifacts.files is missing",
        ),
        (
            "version: 0.2\nphases:\n  build:\n    commands: [x]\nenv:\n  shell: pwsh\n",
            "env.shell must be bash or /bin/sh",
        ),
    ],
)
def test_an_invalid_buildspec_is_a_configuration_error(
    tmp_path: Path, buildspec: str | None, problem: str
) -> None:
    job = context(tmp_path, buildspec, files={"x": ""})
    result = run(tmp_path, job)
    assert result.failure_type == FailureType.CONFIGURATION_ERROR
    assert result.message is not None and problem in result.message, result.message
    assert "Entering phase INSTALL" not in log_of(job) and "Entering phase BUILD" not in log_of(job)


def test_project_name_is_required(tmp_path: Path) -> None:
    job = context(tmp_path, "version: 0.2\nphases: {}\n", configuration={"ProjectName": ""})
    result = run(tmp_path, job)
    assert (result.failure_type, result.message) == (
        FailureType.CONFIGURATION_ERROR,
        "ProjectName is required",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ABORT", OnFailure("ABORT", text="ABORT")),
        ("CONTINUE", OnFailure("CONTINUE", text="CONTINUE")),
        ("RETRY", OnFailure("RETRY", 3, text="RETRY")),
        ("RETRY-7", OnFailure("RETRY", 7, text="RETRY-7")),
        ("RETRY-timed out", OnFailure("RETRY", 3, "timed out", "RETRY-timed out")),
        (
            "RETRY-2-exit status [12]",
            OnFailure("RETRY", 2, "exit status [12]", "RETRY-2-exit status [12]"),
        ),
    ],
)
def test_on_failure_forms(text: str, expected: OnFailure) -> None:
    """AWS (phases/*/on-failure): "ABORT - Abort the build", "CONTINUE - Continue to the next
    phase", "RETRY - Retry the build up to 3 times", "RETRY-count", "RETRY-regex" and
    "RETRY-count-regex"; count "must be between 0 and 100"."""
    assert parse_on_failure(text) == expected


def test_sealed_values_of_the_secrets_file_are_opened_with_the_key(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    from conveyor.auth.cipher import Cipher
    from conveyor.domain.declaration import SEALED

    cipher = Cipher(Fernet.generate_key())
    (tmp_path / "secrets.yml").write_text(
        f"parameters:\n  /app/db-password: {SEALED}{cipher.seal('hunter2-sealed')}\n"
    )
    buildspec = """\
version: 0.2
env:
  parameter-store:
    DB_PASSWORD: /app/db-password
phases:
  build:
    commands:
      - echo "$DB_PASSWORD" > seen.txt
"""
    job = context(tmp_path, buildspec)
    run(tmp_path, job, secrets=tmp_path / "secrets.yml", open_sealed=cipher.open)
    assert (job.workspace / "src" / "seen.txt").read_text() == "hunter2-sealed\n"
    job = context(tmp_path / "again", buildspec)
    result = run(tmp_path, job, secrets=tmp_path / "secrets.yml")
    assert result.message is not None
    assert (
        "parameter /app/db-password is sealed, and this installation has no key" in result.message
    )
