"""Builds of an action's CodeBuild project: its buildspec, variables and timeout, and what
happens when the action names a project that does not exist."""

from __future__ import annotations

import json
from pathlib import Path

from conveyor.actions.base import FailureType
from conveyor.domain.projects import BuildProject, build_project
from tests.unit.test_codebuild import context, log_of, run

FAILING = "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 3\n"
EXPORTING = (
    "version: 0.2\n"
    "env:\n  variables:\n    STAGE: buildspec\n    LEVEL: buildspec\n"
    "  exported-variables:\n    - STAGE\n    - LEVEL\n    - WHO\n"
    "phases:\n  build:\n    commands:\n      - export WHO=test-spec\n"
)


def projects(*known: BuildProject) -> object:
    by_name = {p.name: p for p in known}
    return by_name.get


def test_the_projects_buildspec_file_and_variables_apply(tmp_path: Path) -> None:
    """CodeBuild: the start-build call's variables over the project's over the buildspec's."""
    job = context(
        tmp_path,
        FAILING,
        files={"buildspec-test.yml": EXPORTING},
        configuration={"EnvironmentVariables": json.dumps([{"name": "LEVEL", "value": "action"}])},
    )
    app = BuildProject(
        "app",
        buildspec="buildspec-test.yml",
        variables=(("STAGE", "project", "PLAINTEXT"), ("LEVEL", "project", "PLAINTEXT")),
    )
    result = run(tmp_path, job, projects=projects(app))
    assert result.succeeded, result.message
    assert dict(result.output_variables) == {
        "STAGE": "project",
        "LEVEL": "action",
        "WHO": "test-spec",
    }
    assert "buildspec-test.yml" in log_of(job)


def test_the_projects_inline_buildspec_applies(tmp_path: Path) -> None:
    job = context(tmp_path, FAILING)
    inline = build_project("app", {"source": {"type": "CODEPIPELINE", "buildspec": EXPORTING}})
    result = run(tmp_path, job, projects=projects(inline))
    assert result.succeeded, result.message
    assert result.output_variables["WHO"] == "test-spec"


def test_the_projects_timeout_stops_the_build(tmp_path: Path) -> None:
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 30\n"
    job = context(tmp_path, spec)
    result = run(tmp_path, job, projects=projects(BuildProject("app", timeout_minutes=0)))
    assert not result.succeeded
    assert (result.message or "").startswith("Build timed out")


def test_a_missing_project_without_a_buildspec_yml_fails_saying_so(tmp_path: Path) -> None:
    """CodePipeline fails an action whose CodeBuild project does not exist."""
    job = context(tmp_path, files={"README": "no buildspec\n"})
    result = run(tmp_path, job, projects=projects())
    assert not result.succeeded
    assert result.failure_type == FailureType.CONFIGURATION_ERROR
    assert "CodeBuild project app does not exist" in (result.message or "")


def test_a_missing_project_with_a_buildspec_yml_builds_without_one(tmp_path: Path) -> None:
    job = context(tmp_path, EXPORTING)
    result = run(tmp_path, job, projects=projects())
    assert result.succeeded, result.message
    assert "No project app" in log_of(job)


def test_the_projects_parameter_store_and_secrets_manager_variables_are_read(
    tmp_path: Path,
) -> None:
    """CodeBuild (EnvironmentVariable.type): "PARAMETER_STORE: An environment variable stored
    in Systems Manager Parameter Store"; "SECRETS_MANAGER: An environment variable stored in
    Secrets Manager". A project's variables of those types are read from the stores (here, the
    installation's secrets file) and hidden in the log, as the buildspec's own are."""
    (tmp_path / "secrets.yml").write_text(
        "parameters:\n  /app/db: from-parameter-store\n"
        'secrets:\n  prod/api: \'{"token": "from-secrets-manager"}\'\n'
    )
    spec = (
        "version: 0.2\nphases:\n  build:\n    commands:\n"
        '      - echo "db=$DB token=$TOKEN"\n'
        '      - printf "%s %s" "$DB" "$TOKEN" > seen.txt\n'
    )
    job = context(tmp_path, spec)
    app = BuildProject(
        "app",
        variables=(
            ("DB", "/app/db", "PARAMETER_STORE"),
            ("TOKEN", "prod/api:token", "SECRETS_MANAGER"),
        ),
    )
    result = run(tmp_path, job, projects=projects(app), secrets=tmp_path / "secrets.yml")
    assert result.succeeded, result.message
    seen = (job.workspace / "src" / "seen.txt").read_text()
    assert seen == "from-parameter-store from-secrets-manager"
    log = log_of(job)
    assert "db=*** token=***\n" in log
    assert "from-parameter-store" not in log and "from-secrets-manager" not in log
