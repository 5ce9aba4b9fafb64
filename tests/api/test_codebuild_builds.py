"""CodeBuild builds through the CodeBuild API with boto3 (CBOR), on both databases: StartBuild
with its overrides, BatchGetBuilds' phases, StopBuild, RetryBuild, the lists and deletion.

AWS behaviour quoted from the CodeBuild API reference where a test checks it.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conveyor.server import Running
from tests.api.test_codebuild_projects import ROLE, codebuild_client
from tests.support.engine import make_repo, wait_for
from tests.support.errors import code

INLINE = (
    "version: 0.2\n"
    "env:\n  exported-variables:\n    - VERSION\n"
    "phases:\n"
    "  install:\n    commands:\n      - echo installing\n"
    '  build:\n    commands:\n      - echo "greeting is $GREETING"\n'
    "      - export VERSION=2.$CODEBUILD_BUILD_NUMBER\n"
)


@pytest.fixture
def builds(server: Running) -> Any:
    return codebuild_client(server.endpoint)


def no_source(name: str = "hello", buildspec: str = INLINE, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "source": {"type": "NO_SOURCE", "buildspec": buildspec},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": [{"name": "GREETING", "value": "hello"}],
        },
        "serviceRole": ROLE,
        **extra,
    }


def finished(builds: Any, build_id: str, timeout: float = 60.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        build: dict[str, Any] = builds.batch_get_builds(ids=[build_id])["builds"][0]
        return build if build["buildComplete"] else None

    result: dict[str, Any] = wait_for(done, timeout, f"build {build_id} to complete")
    return result


def log_of(build: dict[str, Any]) -> str:
    with urllib.request.urlopen(build["logs"]["deepLink"], timeout=30) as response:
        text: str = response.read().decode()
    return text


def test_start_build_runs_the_project_and_batch_get_builds_shows_its_phases(
    builds: Any,
) -> None:
    """StartBuild answers the build IN_PROGRESS; BatchGetBuilds then shows each phase with its
    status, times, duration and contexts, ending with COMPLETED (which has only a start), and
    the build's exported environment variables."""
    builds.create_project(**no_source())
    started = builds.start_build(projectName="hello")["build"]
    assert started["id"].startswith("hello:")
    assert started["arn"] == f"arn:aws:codebuild:us-east-1:000000000000:build/{started['id']}"
    assert started["buildStatus"] == "IN_PROGRESS"
    assert started["buildComplete"] is False
    assert started["initiator"]
    build = finished(builds, started["id"])
    assert build["buildStatus"] == "SUCCEEDED", build["phases"]
    assert build["currentPhase"] == "COMPLETED"
    names = [phase["phaseType"] for phase in build["phases"]]
    assert names == [
        "SUBMITTED",
        "QUEUED",
        "PROVISIONING",
        "DOWNLOAD_SOURCE",
        "INSTALL",
        "BUILD",
        "UPLOAD_ARTIFACTS",
        "FINALIZING",
        "COMPLETED",
    ]
    for phase in build["phases"][:-1]:
        assert phase["phaseStatus"] == "SUCCEEDED", phase
        assert phase["durationInSeconds"] >= 0
        assert phase["endTime"] >= phase["startTime"]
    assert "endTime" not in build["phases"][-1]
    assert build["buildNumber"] == 1
    assert build["exportedEnvironmentVariables"] == [{"name": "VERSION", "value": "2.1"}]
    assert build["logs"]["groupName"] == "/aws/codebuild/hello"
    assert build["logs"]["streamName"] == build["id"].split(":")[1]
    assert "greeting is hello" in log_of(build)


def test_start_build_overrides_variables_buildspec_and_timeout(builds: Any) -> None:
    """environmentVariablesOverride: "A set of environment variables that overrides, for this
    build only, the latest ones already defined in the build project"; buildspecOverride and
    timeoutInMinutesOverride likewise."""
    builds.create_project(**no_source())
    other = INLINE.replace("greeting is", "override says")
    started = builds.start_build(
        projectName="hello",
        environmentVariablesOverride=[
            {"name": "GREETING", "value": "bonjour", "type": "PLAINTEXT"},
        ],
        buildspecOverride=other,
        timeoutInMinutesOverride=7,
    )["build"]
    build = finished(builds, started["id"])
    assert build["buildStatus"] == "SUCCEEDED"
    assert build["timeoutInMinutes"] == 7
    variables = build["environment"]["environmentVariables"]
    assert {"name": "GREETING", "value": "bonjour", "type": "PLAINTEXT"} in variables
    assert "override says bonjour" in log_of(build)


def test_a_failing_command_fails_its_phase_with_its_context(builds: Any) -> None:
    """A failed BUILD phase: phaseStatus FAILED with the COMMAND_EXECUTION_ERROR context naming
    the command; POST_BUILD still runs, and the build is FAILED."""
    spec = (
        "version: 0.2\nphases:\n  build:\n    commands:\n      - 'false'\n"
        "  post_build:\n    commands:\n      - echo after\n"
    )
    builds.create_project(**no_source(buildspec=spec))
    build = finished(builds, builds.start_build(projectName="hello")["build"]["id"])
    assert build["buildStatus"] == "FAILED"
    phases = {phase["phaseType"]: phase for phase in build["phases"]}
    assert phases["BUILD"]["phaseStatus"] == "FAILED"
    context = phases["BUILD"]["contexts"][0]
    assert context["statusCode"] == "COMMAND_EXECUTION_ERROR"
    assert "false" in context["message"]
    assert phases["POST_BUILD"]["phaseStatus"] == "SUCCEEDED"


def test_stop_build_stops_a_running_build(builds: Any) -> None:
    """StopBuild: the build ends STOPPED."""
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started; sleep 600\n"
    builds.create_project(**no_source(buildspec=spec))
    build_id = builds.start_build(projectName="hello")["build"]["id"]

    def building() -> bool:
        build = builds.batch_get_builds(ids=[build_id])["builds"][0]
        return bool(build["currentPhase"] == "BUILD")

    wait_for(building, 60, "the build to reach BUILD")
    builds.stop_build(id=build_id)
    build = finished(builds, build_id)
    assert build["buildStatus"] == "STOPPED"


def test_retry_build_starts_a_new_build_with_the_same_request(builds: Any) -> None:
    """RetryBuild "Restarts a build": a new build id, with the first build's overrides."""
    builds.create_project(**no_source())
    first = builds.start_build(
        projectName="hello",
        environmentVariablesOverride=[{"name": "GREETING", "value": "again"}],
    )["build"]
    finished(builds, first["id"])
    retried = builds.retry_build(id=first["id"])["build"]
    assert retried["id"] != first["id"]
    build = finished(builds, retried["id"])
    assert build["buildNumber"] == 2
    assert "greeting is again" in log_of(build)


def test_a_build_of_a_git_repository_at_a_source_version(builds: Any, tmp_path: Path) -> None:
    """sourceVersion: a branch or commit of the repository; resolvedSourceVersion is the
    commit built."""
    repo = tmp_path / "repo"
    first = make_repo(repo, {"buildspec.yml": INLINE, "VERSION": "one\n"})
    builds.create_project(
        **no_source(
            name="git",
            source={"type": "GITHUB", "location": str(repo)},
        )
    )
    build = finished(
        builds, builds.start_build(projectName="git", sourceVersion=first)["build"]["id"]
    )
    assert build["buildStatus"] == "SUCCEEDED", log_of(build)
    assert build["resolvedSourceVersion"] == first
    assert build["sourceVersion"] == first


def test_lists_page_and_delete(builds: Any) -> None:
    """ListBuildsForProject lists newest first by default (sortOrder DESCENDING); ASCENDING
    reverses; BatchDeleteBuilds deletes finished builds and names those it cannot delete."""
    builds.create_project(**no_source())
    ids = [builds.start_build(projectName="hello")["build"]["id"] for _ in range(3)]
    for build_id in ids:
        finished(builds, build_id)
    assert builds.list_builds_for_project(projectName="hello")["ids"] == ids[::-1]
    ascending = builds.list_builds_for_project(projectName="hello", sortOrder="ASCENDING")
    assert ascending["ids"] == ids
    assert builds.list_builds()["ids"] == ids[::-1]
    answer = builds.batch_delete_builds(ids=[ids[0], "hello:nothing"])
    assert answer["buildsDeleted"] == [ids[0]]
    assert answer["buildsNotDeleted"] == [{"id": "hello:nothing", "statusCode": "BUILD_NOT_FOUND"}]
    got = builds.batch_get_builds(ids=[ids[0], ids[1]])
    assert [b["id"] for b in got["builds"]] == [ids[1]]
    assert got["buildsNotFound"] == [ids[0]]


def test_start_build_of_a_missing_project_or_a_pipeline_project(builds: Any) -> None:
    """StartBuild of a project that does not exist: ResourceNotFoundException; a project whose
    source is CODEPIPELINE cannot be built alone: InvalidInputException."""
    with pytest.raises(ClientError) as missing:
        builds.start_build(projectName="ghost")
    assert code(missing) == "ResourceNotFoundException"
    builds.create_project(
        name="piped",
        source={"type": "CODEPIPELINE"},
        artifacts={"type": "CODEPIPELINE"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=ROLE,
    )
    with pytest.raises(ClientError) as piped:
        builds.start_build(projectName="piped")
    assert code(piped) == "InvalidInputException"
    assert "CODEPIPELINE" in piped.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as unknown:
        builds.list_builds_for_project(projectName="ghost")
    assert code(unknown) == "ResourceNotFoundException"
