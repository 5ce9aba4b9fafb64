"""CodeBuild builds through the CodeBuild API with boto3 (CBOR), on both databases: StartBuild
with its overrides, BatchGetBuilds' phases, StopBuild, RetryBuild, the lists and deletion.

AWS behaviour quoted from the CodeBuild API reference where a test checks it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conveyor.config import Settings
from conveyor.server import Running, running
from tests.api.test_codebuild_pipelines import codebuild, declaration
from tests.api.test_codebuild_projects import ARN as PROJECT_ARN
from tests.api.test_codebuild_projects import ROLE, codebuild_client
from tests.conftest import sqlite_only
from tests.support.auth import allow, make_user, signed_client
from tests.support.engine import (
    git_source,
    latest_execution_id,
    make_repo,
    wait_for,
    wait_status,
)
from tests.support.errors import code

INLINE = (
    "version: 0.2\n"
    "env:\n  exported-variables:\n    - VERSION\n"
    "phases:\n"
    '  install:\n    commands:\n      - echo "installing for $CODEBUILD_INITIATOR"\n'
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
    assert f"installing for {started['initiator']}\n" in log_of(build)


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


JUNIT = (
    '<?xml version="1.0"?>\n<testsuites><testsuite name="calc">'
    '<testcase classname="calc.AddTest" name="test_adds" time="0.25"/>'
    '<testcase classname="calc.AddTest" name="test_negative" time="0.5">'
    '<failure message="1 != 0">AssertionError</failure></testcase>'
    '<testcase classname="calc.SubTest" name="test_later"><skipped/></testcase>'
    "</testsuite></testsuites>\n"
)
REPORTING = (
    "version: 0.2\nphases:\n  build:\n    commands:\n"
    "      - mkdir -p out && printf '%s' \"$REPORT\" > out/junit.xml\n"
    "reports:\n  unit:\n    files:\n      - junit.xml\n    base-directory: out\n"
)


def test_reports_and_test_cases_from_the_buildspec(builds: Any) -> None:
    """A buildspec's report group ``unit`` of project ``hello`` is the report group
    ``hello-unit``, created by the first build that reports to it; its report has the test
    summary, and DescribeTestCases lists each case with its status, duration and message,
    filtered by status."""
    builds.create_project(
        **no_source(buildspec=REPORTING),
    )
    started = builds.start_build(
        projectName="hello",
        environmentVariablesOverride=[{"name": "REPORT", "value": JUNIT}],
    )["build"]
    build = finished(builds, started["id"])
    assert build["buildStatus"] == "SUCCEEDED", log_of(build)
    group = "arn:aws:codebuild:us-east-1:000000000000:report-group/hello-unit"
    assert builds.list_report_groups()["reportGroups"] == [group]
    [report_arn] = build["reportArns"]
    assert report_arn == (
        "arn:aws:codebuild:us-east-1:000000000000:report/hello-unit:" + build["id"].split(":")[1]
    )
    assert builds.list_reports()["reports"] == [report_arn]
    assert builds.list_reports(filter={"status": "SUCCEEDED"})["reports"] == []
    assert builds.list_reports_for_report_group(reportGroupArn=group)["reports"] == [report_arn]
    [report] = builds.batch_get_reports(reportArns=[report_arn])["reports"]
    assert report["status"] == "FAILED"
    assert report["reportGroupArn"] == group
    assert report["executionId"] == build["arn"]
    summary = report["testSummary"]
    assert summary["total"] == 3
    assert summary["statusCounts"]["SUCCEEDED"] == 1
    assert summary["statusCounts"]["FAILED"] == 1
    assert summary["statusCounts"]["SKIPPED"] == 1
    assert summary["durationInNanoSeconds"] == 750_000_000
    cases = builds.describe_test_cases(reportArn=report_arn)["testCases"]
    assert [(c["prefix"], c["name"], c["status"]) for c in cases] == [
        ("calc.AddTest", "test_adds", "SUCCEEDED"),
        ("calc.AddTest", "test_negative", "FAILED"),
        ("calc.SubTest", "test_later", "SKIPPED"),
    ]
    assert cases[1]["message"] == "1 != 0"
    assert cases[1]["durationInNanoSeconds"] == 500_000_000
    assert cases[0]["testRawDataPath"] == "out/junit.xml"
    failed = builds.describe_test_cases(reportArn=report_arn, filter={"status": "FAILED"})
    assert [c["name"] for c in failed["testCases"]] == ["test_negative"]
    page = builds.describe_test_cases(reportArn=report_arn, maxResults=2)
    assert len(page["testCases"]) == 2
    rest = builds.describe_test_cases(
        reportArn=report_arn, maxResults=2, nextToken=page["nextToken"]
    )
    assert [c["name"] for c in rest["testCases"]] == ["test_later"]
    with pytest.raises(ClientError) as missing:
        builds.describe_test_cases(reportArn=report_arn + "x")
    assert code(missing) == "ResourceNotFoundException"


def test_report_groups_are_created_listed_and_deleted(builds: Any) -> None:
    """CreateReportGroup answers the group; a second of that name is
    ResourceAlreadyExistsException; DeleteReportGroup removes it."""
    config = {"exportConfigType": "NO_EXPORT"}
    group = builds.create_report_group(name="tests", type="TEST", exportConfig=config)
    arn = group["reportGroup"]["arn"]
    assert arn == "arn:aws:codebuild:us-east-1:000000000000:report-group/tests"
    assert group["reportGroup"]["type"] == "TEST"
    with pytest.raises(ClientError) as again:
        builds.create_report_group(name="tests", type="TEST", exportConfig=config)
    assert code(again) == "ResourceAlreadyExistsException"
    got = builds.batch_get_report_groups(reportGroupArns=[arn, arn + "x"])
    assert [g["name"] for g in got["reportGroups"]] == ["tests"]
    assert got["reportGroupsNotFound"] == [arn + "x"]
    builds.delete_report_group(arn=arn)
    assert builds.list_report_groups()["reportGroups"] == []


def test_a_pipeline_build_is_a_codebuild_build(
    client: Any, builds: Any, server: Running, tmp_path: Path
) -> None:
    """In a pipeline, the CodeBuild action's externalExecutionId is the build id, and the
    build appears in BatchGetBuilds and ListBuildsForProject, initiated by
    ``codepipeline/<pipeline>``."""
    make_repo(tmp_path / "app", {"buildspec.yml": INLINE})
    builds.create_project(
        name="build",
        source={"type": "CODEPIPELINE"},
        artifacts={"type": "CODEPIPELINE"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": [{"name": "GREETING", "value": "piped"}],
        },
        serviceRole=ROLE,
    )
    client.create_pipeline(
        pipeline=declaration(
            "app",
            [git_source(tmp_path / "app")],
            {"name": "Build", "actions": [codebuild("Build", ["Src"], [])]},
        )
    )
    execution_id = latest_execution_id(client, "app")
    assert wait_status(client, "app", execution_id, "Succeeded", "Failed") == "Succeeded"
    details = client.list_action_executions(pipelineName="app")["actionExecutionDetails"]
    built = next(d for d in details if d["actionName"] == "Build")
    build_id = built["output"]["executionResult"]["externalExecutionId"]
    assert build_id == f"build:{built['actionExecutionId']}"
    assert builds.list_builds_for_project(projectName="build")["ids"] == [build_id]
    [build] = builds.batch_get_builds(ids=[build_id])["builds"]
    assert build["buildStatus"] == "SUCCEEDED"
    assert build["initiator"] == "codepipeline/app"
    assert build["exportedEnvironmentVariables"] == [{"name": "VERSION", "value": "2.1"}]
    assert [p["phaseType"] for p in build["phases"]][-3:] == [
        "UPLOAD_ARTIFACTS",
        "FINALIZING",
        "COMPLETED",
    ]
    assert "greeting is piped" in log_of(build)
    assert "installing for codepipeline/app\n" in log_of(build)


@sqlite_only
def test_the_aws_cli_starts_a_build_and_reads_it(server: Running, tmp_path: Path) -> None:
    """``aws codebuild start-build`` and ``batch-get-builds`` with ``--endpoint-url``."""
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "conveyor",
        "AWS_SECRET_ACCESS_KEY": "conveyor",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", server.endpoint]

    def cli(*argv: str) -> Any:
        done = subprocess.run(
            [*aws, "codebuild", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    cli("create-project", "--cli-input-json", json.dumps(no_source("cli")))
    started = cli(
        "start-build",
        "--project-name",
        "cli",
        "--environment-variables-override",
        "name=GREETING,value=from-cli,type=PLAINTEXT",
    )["build"]
    builds = codebuild_client(server.endpoint)
    finished(builds, started["id"])
    answer = cli("batch-get-builds", "--ids", started["id"])
    [build] = answer["builds"]
    assert build["buildStatus"] == "SUCCEEDED"
    assert "greeting is from-cli" in log_of(build)
    assert cli("list-builds-for-project", "--project-name", "cli")["ids"] == [started["id"]]


def test_sources_a_folder_codecommit_and_s3_with_s3_artifacts(
    builds: Any, server: Running, tmp_path: Path
) -> None:
    """A project's source may be a plain folder, a CodeCommit repository of the installation
    (by its clone URL), or a zip in S3; ``artifacts`` of type S3 put the build's zip at
    ``location``/``path``/``name``."""
    from conveyor.artifacts.archive import pack
    from conveyor.artifacts.local import LocalBuckets

    home = server.application.engine.settings.home
    spec = (
        "version: 0.2\nphases:\n  build:\n    commands:\n      - cat where.txt\n"
        "artifacts:\n  files: [where.txt]\n"
    )
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "buildspec.yml").write_text(spec)
    (folder / "where.txt").write_text("from a folder\n")
    make_repo(
        home / "repositories" / "shop",
        {"buildspec.yml": spec, "where.txt": "from codecommit\n"},
    )
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    (zipped / "buildspec.yml").write_text(spec)
    (zipped / "where.txt").write_text("from s3\n")
    pack(zipped, tmp_path / "src.zip")
    buckets = LocalBuckets(home / "buckets")
    buckets.put("sources", "app/src.zip", tmp_path / "src.zip")
    sources = {
        "folder": {"type": "GITHUB", "location": str(folder)},
        "codecommit": {
            "type": "CODECOMMIT",
            "location": "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/shop",
        },
        "s3": {"type": "S3", "location": "sources/app/src.zip"},
    }
    for name, source in sources.items():
        builds.create_project(
            **no_source(
                name=name,
                source=source,
                artifacts={
                    "type": "S3",
                    "location": "out",
                    "path": "builds",
                    "name": f"{name}.zip",
                },
            )
        )
    for name in sources:
        build = finished(builds, builds.start_build(projectName=name)["build"]["id"])
        assert build["buildStatus"] == "SUCCEEDED", log_of(build)
        assert f"from {name}" in log_of(build).replace("from a folder", "from folder")
        assert build["artifacts"]["location"] == f"arn:aws:s3:::out/builds/{name}.zip"
        assert buckets.exists("out", f"builds/{name}.zip")


def test_a_source_that_cannot_be_fetched_fails_download_source(builds: Any) -> None:
    """A source CodeBuild cannot download: DOWNLOAD_SOURCE FAILED with a CLIENT_ERROR
    context, and the build FAILED."""
    builds.create_project(
        **no_source(name="gone", source={"type": "S3", "location": "nowhere/src.zip"})
    )
    build = finished(builds, builds.start_build(projectName="gone")["build"]["id"])
    assert build["buildStatus"] == "FAILED"
    phases = {phase["phaseType"]: phase for phase in build["phases"]}
    assert phases["DOWNLOAD_SOURCE"]["phaseStatus"] == "FAILED"
    assert phases["DOWNLOAD_SOURCE"]["contexts"][0]["statusCode"] == "CLIENT_ERROR"
    assert "nowhere/src.zip" in phases["DOWNLOAD_SOURCE"]["contexts"][0]["message"]


def test_start_build_is_authorized_on_the_project_and_names_its_initiator(
    settings: Settings,
) -> None:
    """With authentication, ``codebuild:StartBuild`` is decided on the project's ARN, and the
    build's initiator is the caller's name."""
    with running(replace(settings, auth="required")) as secured:
        admin = make_user(secured, "admin", policies=[allow("codebuild:*")])
        signed_client(secured, admin, "codebuild").create_project(**no_source("mine"))
        signed_client(secured, admin, "codebuild").create_project(**no_source("theirs"))
        key = make_user(
            secured,
            "builder",
            policies=[allow("codebuild:StartBuild", resource=PROJECT_ARN + "mine")],
        )
        mine = signed_client(secured, key, "codebuild")
        started = mine.start_build(projectName="mine")["build"]
        assert started["initiator"] == "builder"
        with pytest.raises(ClientError) as caught:
            mine.start_build(projectName="theirs")
        assert code(caught) == "AccessDeniedException"
        assert f"codebuild:StartBuild on resource: {PROJECT_ARN}theirs" in str(caught.value)
        finished(signed_client(secured, admin, "codebuild"), started["id"])


def test_a_connection_source_with_location_and_artifacts_overridden(
    builds: Any, server: Running
) -> None:
    """A GitHub source through a connection (``auth`` CODECONNECTIONS) is the connection's
    ``owner/repo``; sourceLocationOverride names another repository for one build, and
    artifactsOverride sends its artifacts elsewhere."""
    from conveyor.artifacts.local import LocalBuckets

    home = server.application.engine.settings.home
    spec = (
        "version: 0.2\nphases:\n  build:\n    commands:\n      - cat where.txt\n"
        "artifacts:\n  files: [where.txt]\n"
    )
    for repo in ("shop", "other"):
        make_repo(
            home / "repositories" / "acme" / repo,
            {"buildspec.yml": spec, "where.txt": f"from {repo}\n"},
        )
    connection = "arn:aws:codeconnections:us-east-1:000000000000:connection/abc"
    builds.create_project(
        **no_source(
            name="shop",
            source={
                "type": "GITHUB",
                "location": "https://github.com/acme/shop.git",
                "auth": {"type": "CODECONNECTIONS", "resource": connection},
            },
        )
    )
    first = finished(builds, builds.start_build(projectName="shop")["build"]["id"])
    assert first["buildStatus"] == "SUCCEEDED", log_of(first)
    assert "from shop" in log_of(first)
    assert first["resolvedSourceVersion"]
    second = builds.start_build(
        projectName="shop",
        sourceLocationOverride="https://github.com/acme/other",
        artifactsOverride={"type": "S3", "location": "elsewhere", "name": "other.zip"},
    )["build"]
    assert second["source"]["location"] == "https://github.com/acme/other"
    built = finished(builds, second["id"])
    assert built["buildStatus"] == "SUCCEEDED", log_of(built)
    assert "from other" in log_of(built)
    assert LocalBuckets(home / "buckets").exists("elsewhere", "other.zip")


def test_start_build_with_an_idempotency_token(builds: Any) -> None:
    """idempotencyToken: "If you repeat the StartBuild request with the same token, but change
    a parameter, CodeBuild returns a parameter mismatch error." The same request again answers
    the same build."""
    builds.create_project(**no_source())
    first = builds.start_build(projectName="hello", idempotencyToken="t-1")["build"]
    again = builds.start_build(projectName="hello", idempotencyToken="t-1")["build"]
    assert again["id"] == first["id"]
    with pytest.raises(ClientError) as mismatch:
        builds.start_build(projectName="hello", idempotencyToken="t-1", sourceVersion="main")
    assert code(mismatch) == "InvalidInputException"
    other = builds.start_build(projectName="hello", idempotencyToken="t-2")["build"]
    assert other["id"] != first["id"]
    finished(builds, first["id"])
    finished(builds, other["id"])


def test_builds_over_json_with_x_amz_target(server: Running, builds: Any) -> None:
    """The build operations speak JSON 1.1 (X-Amz-Target) as well as CBOR; times are epoch
    seconds."""
    builds.create_project(**no_source())

    def call(operation: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            server.endpoint + "/",
            data=json.dumps(body).encode(),
            headers={
                "X-Amz-Target": f"CodeBuild_20161006.{operation}",
                "Content-Type": "application/x-amz-json-1.1",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    started = call("StartBuild", {"projectName": "hello"})["build"]
    assert isinstance(started["startTime"], float)
    finished(builds, started["id"])
    [build] = call("BatchGetBuilds", {"ids": [started["id"]]})["builds"]
    assert build["buildStatus"] == "SUCCEEDED"
    assert isinstance(build["phases"][0]["startTime"], float)
    with pytest.raises(urllib.error.HTTPError) as refused:
        call("BatchGetBuilds", {})
    with refused.value as answer:
        assert answer.code == 400
        assert answer.headers["x-amzn-ErrorType"].startswith("ValidationException")


def test_list_builds_pages_of_100_with_next_token(builds: Any, server: Running) -> None:
    """ListBuilds and ListBuildsForProject answer 100 ids a page and a nextToken for the
    rest; a token they did not issue is InvalidInputException."""
    from conveyor.store import BuildRecord

    builds.create_project(**no_source())
    with server.application.store.write() as tx:
        for index in range(150):
            data = {"phases": [], "initiator": "test"}
            tx.builds.insert(
                BuildRecord(
                    f"hello:b{index:03}", "hello", index + 1, "SUCCEEDED", 1000.0 + index, 1.0, data
                )
            )
    first = builds.list_builds_for_project(projectName="hello", sortOrder="ASCENDING")
    assert first["ids"] == [f"hello:b{i:03}" for i in range(100)]
    rest = builds.list_builds_for_project(
        projectName="hello", sortOrder="ASCENDING", nextToken=first["nextToken"]
    )
    assert rest["ids"] == [f"hello:b{i:03}" for i in range(100, 150)]
    assert "nextToken" not in rest
    newest = builds.list_builds()
    assert newest["ids"][0] == "hello:b149"
    assert len(builds.list_builds(nextToken=newest["nextToken"])["ids"]) == 50
    with pytest.raises(ClientError) as forged:
        builds.list_builds(nextToken="forged.token")
    assert code(forged) == "InvalidInputException"
