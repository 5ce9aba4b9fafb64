"""Change detection end to end: commits into watched repositories start executions (boto3)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from conveyor.cli.extensions import keep_extensions
from conveyor.cli.main import cli
from conveyor.config import Settings
from conveyor.server import Running, running
from conveyor.triggers.detector import Detector
from tests.api.test_outage import rename
from tests.conftest import make_client
from tests.support.declarations import CONNECTION_ARN, connection_source
from tests.support.engine import commands, commit, git, make_repo, stage, wait_for
from tests.support.fleet import shared_buckets
from tests.support.gitrepo import git_daemon

ARN = CONNECTION_ARN


@contextmanager
def detecting(settings: Settings, **changes: Any) -> Iterator[tuple[Running, Any, Detector]]:
    chosen = replace(settings, **{"detect_changes": True, "poll_interval": 0.3, **changes})
    with running(chosen) as live:
        detector = live.application.engine.detector
        assert detector is not None
        yield live, make_client(live.endpoint), detector


def git_action(url: str, **config: str) -> dict[str, Any]:
    return {
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "Git", "version": "1"},
        "configuration": {"RepositoryUrl": url, "BranchName": "main", **config},
        "outputArtifacts": [{"name": "Src"}],
        "namespace": "SRC",
    }


def connection_action(**config: str) -> dict[str, Any]:
    return connection_source("Src", "SRC", **config)


def declaration(name: str, source: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "roleArn": "arn:aws:iam::000000000000:role/conveyor",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [source]},
            stage("Build", commands("Show", "echo built #{SRC.CommitId}")),
        ],
        **extra,
    }


def executions(client: Any, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = client.list_pipeline_executions(pipelineName=name)[
        "pipelineExecutionSummaries"
    ]
    return found


def wait_count(client: Any, name: str, count: int) -> list[dict[str, Any]]:
    return list(
        wait_for(
            lambda: (found := executions(client, name)) and len(found) >= count and found,
            60,
            f"{count} executions of {name}",
        )
    )


def settle(detector: Detector, passes: int = 2) -> None:
    """Wait until the detector has made ``passes`` whole passes (each reads every repository
    again) that began after this call."""
    seen = detector.counters.passes
    wait_for(lambda: detector.counters.passes > seen + passes, 60, "the detector to look again")


def sighted(detector: Detector) -> None:
    """Wait until the detector leads and has sighted every pipeline created before the call."""
    wait_for(lambda: detector.leading, 60, "a detecting server")
    settle(detector, 1)


def follow(client: Any, detector: Detector, name: str, source: dict[str, Any]) -> None:
    """Create the pipeline, and wait until its first execution started and its source is
    sighted."""
    client.create_pipeline(pipeline=declaration(name, source))
    wait_count(client, name, 1)
    sighted(detector)


def test_commit_on_branch_starts_one_execution_pinned_to_it(
    settings: Settings, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    with detecting(settings) as (_, client, detector):
        follow(client, detector, "app", git_action(str(repo)))
        sha = commit(repo, {"a.txt": "1\n"}, "second")
        found = wait_count(client, "app", 2)
        newest = found[0]
        assert newest["trigger"]["triggerType"] == "CloudWatchEvent"
        assert sha in newest["trigger"]["triggerDetail"]
        commit(repo, {"b.txt": "2\n"}, "moves on")  # the branch moves before it runs
        execution = client.get_pipeline_execution(
            pipelineName="app", pipelineExecutionId=newest["pipelineExecutionId"]
        )["pipelineExecution"]
        assert execution["trigger"]["triggerType"] == "CloudWatchEvent"
        wait_for(
            lambda: (
                client.get_pipeline_execution(
                    pipelineName="app", pipelineExecutionId=newest["pipelineExecutionId"]
                )["pipelineExecution"]["status"]
                == "Succeeded"
            ),
            60,
            "the detected execution to succeed",
        )
        revisions = client.get_pipeline_execution(
            pipelineName="app", pipelineExecutionId=newest["pipelineExecutionId"]
        )["pipelineExecution"]["artifactRevisions"]
        assert revisions[0]["revisionId"] == sha
        wait_count(client, "app", 3)
        settle(detector)
        assert len(executions(client, "app")) == 3


def test_other_branch_tag_and_detect_changes_false_start_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    repo, quiet = tmp_path / "repo", tmp_path / "quiet"
    make_repo(repo)
    make_repo(quiet)
    with detecting(settings) as (_, client, detector):
        client.create_pipeline(pipeline=declaration("app", git_action(str(repo))))
        client.create_pipeline(
            pipeline=declaration("off", git_action(str(quiet), DetectChanges="false"))
        )
        wait_count(client, "app", 1)
        wait_count(client, "off", 1)
        sighted(detector)
        git(repo, "checkout", "-q", "-b", "other")
        commit(repo, {"x": "1"}, "elsewhere")
        git(repo, "tag", "v1")
        commit(quiet, {"x": "1"}, "not followed")
        settle(detector, 3)
        assert len(executions(client, "app")) == 1
        assert len(executions(client, "off")) == 1


def test_remote_repository_is_polled(settings: Settings, tmp_path: Path) -> None:
    repo = tmp_path / "served" / "remote.git"
    make_repo(tmp_path / "work")
    git(tmp_path, "clone", "-q", "--bare", str(tmp_path / "work"), str(repo))
    with git_daemon(tmp_path / "served") as base, detecting(settings) as (_, client, detector):
        names = ("app", "same-remote", "same-again")
        for name in names:
            client.create_pipeline(pipeline=declaration(name, git_action(f"{base}/remote.git")))
            wait_count(client, name, 1)
        wait_for(lambda: detector.counters.remote_polls > 0, 60, "a first poll")
        settle(detector, 1)
        sha = commit(tmp_path / "work", {"n": "1"}, "pushed")
        git(tmp_path / "work", "push", "-q", str(repo), "main")
        for name in names:
            found = wait_count(client, name, 2)
            assert found[0]["trigger"]["triggerType"] == "PollForSourceChanges"
            assert sha in found[0]["trigger"]["triggerDetail"]
        # Three pipelines, one (URL, branch): one git ls-remote per interval.
        polls = detector.counters.remote_polls
        rounds = list(detector.counters.rounds)
        assert set(rounds) == {1}
        assert polls <= len(rounds) <= polls + 2  # a round may be under way


def test_restart_starts_the_change_made_while_stopped_once(
    settings: Settings, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    with detecting(settings) as (_, client, detector):
        follow(client, detector, "app", git_action(str(repo)))
    sha = commit(repo, {"a": "1"}, "while stopped")
    for _ in range(2):
        with detecting(settings) as (_, client, detector):
            found = wait_count(client, "app", 2)
            sighted(detector)
            settle(detector)
            assert len(executions(client, "app")) == 2
            assert sha in found[0]["trigger"]["triggerDetail"]


def connection_settings(settings: Settings, base: Path) -> dict[str, Any]:
    return {"connections": {ARN: str(base)}}


def test_trigger_filters_on_branches_tags_and_paths(settings: Settings, tmp_path: Path) -> None:
    base = tmp_path / "hosted"
    repo = base / "team" / "app"
    make_repo(repo)
    trigger = {
        "providerType": "CodeStarSourceConnection",
        "gitConfiguration": {
            "sourceActionName": "Source",
            "push": [
                {"branches": {"includes": ["release/*"]}, "filePaths": {"includes": ["src/**"]}},
                {"tags": {"includes": ["v*"]}},
            ],
        },
    }
    with detecting(settings, **connection_settings(settings, base)) as (_, client, detector):
        client.create_pipeline(pipeline=declaration("app", connection_action(), triggers=[trigger]))
        wait_count(client, "app", 1)
        sighted(detector)
        git(repo, "branch", "release/1")  # at the first commit, which changed no src/ file
        commit(repo, {"src/a.py": "1"}, "on main: not a release branch")
        git(repo, "checkout", "-q", "release/1")
        commit(repo, {"docs/a.md": "1"}, "outside the paths")
        settle(detector, 2)
        assert len(executions(client, "app")) == 1
        sha = commit(repo, {"src/b.py": "1"}, "inside the paths")
        found = wait_count(client, "app", 2)
        assert found[0]["trigger"]["triggerType"] == "WebhookV2"
        assert f"commit {sha} on refs/heads/release/1" in found[0]["trigger"]["triggerDetail"]
        git(repo, "tag", "-a", "-m", "one", "v1.0")
        found = wait_count(client, "app", 3)
        assert "refs/tags/v1.0" in found[0]["trigger"]["triggerDetail"]
        assert sha in found[0]["trigger"]["triggerDetail"]
        git(repo, "tag", "x1")
        settle(detector, 2)
        assert len(executions(client, "app")) == 3


@pytest.mark.postgres
def test_two_servers_on_one_database_start_one_execution(postgres_url: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    first = Settings(home=tmp_path / "one", database_url=postgres_url)
    second = Settings(home=tmp_path / "two", database_url=postgres_url)
    shared_buckets(tmp_path / "buckets", first.home, second.home)
    with detecting(first) as (_, client, one), detecting(second) as (_, _, two):
        client.create_pipeline(pipeline=declaration("app", git_action(str(repo))))
        wait_count(client, "app", 1)
        wait_for(lambda: one.leading != two.leading, 60, "one detecting server")
        leader = one if one.leading else two
        sighted(leader)
        sha = commit(repo, {"a": "1"}, "seen by both")
        found = wait_count(client, "app", 2)
        assert sha in found[0]["trigger"]["triggerDetail"]
        settle(leader)
        assert len(executions(client, "app")) == 2
    # When the detecting server stops, the other takes over within seconds.
    with ExitStack() as one_stack, ExitStack() as two_stack:
        _, one_client, one = one_stack.enter_context(detecting(first))
        _, two_client, two = two_stack.enter_context(detecting(second))
        wait_for(lambda: one.leading or two.leading, 60, "a detecting server")
        survivor, client = (two, two_client) if one.leading else (one, one_client)
        (one_stack if one.leading else two_stack).close()
        wait_for(lambda: survivor.leading, 10, "the other server to take over")
        sighted(survivor)
        sha = commit(repo, {"b": "2"}, "after the handover")
        found = wait_count(client, "app", 3)
        assert sha in found[0]["trigger"]["triggerDetail"]


def detection_of(client: Any, name: str) -> dict[str, Any]:
    state = keep_extensions(client).get_pipeline_state(name=name)
    action = state["stageStates"][0]["actionStates"][0]
    return dict(action.get("changeDetection") or {})


def test_faults_are_told_once_and_other_pipelines_go_on(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "conveyor.triggers")
    doomed, fine = tmp_path / "doomed", tmp_path / "fine"
    make_repo(doomed)
    make_repo(fine)
    with detecting(settings) as (_, client, detector):
        client.create_pipeline(pipeline=declaration("doomed", git_action(str(doomed))))
        client.create_pipeline(pipeline=declaration("fine", git_action(str(fine))))
        client.create_pipeline(
            pipeline=declaration("far", git_action("git://127.0.0.1:9/nowhere.git"))
        )
        wait_count(client, "doomed", 1)
        wait_count(client, "fine", 1)
        sighted(detector)
        far = wait_for(lambda: detection_of(client, "far"), 60, "the unreachable remote")
        assert far["status"] == "Failing"
        assert "nowhere.git" in far["message"]
        git(doomed, "branch", "-m", "main", "renamed")
        gone = wait_for(lambda: detection_of(client, "doomed"), 60, "the deleted branch")
        assert gone["message"] == f"Branch main not found in {doomed}"
        shutil.rmtree(doomed)
        missing = wait_for(
            lambda: (
                "no folder" in detection_of(client, "doomed").get("message", "")
                and detection_of(client, "doomed")
            ),
            60,
            "the removed repository",
        )
        assert str(doomed) in missing["message"]
        sha = commit(fine, {"a": "1"}, "still followed")
        found = wait_count(client, "fine", 2)
        assert sha in found[0]["trigger"]["triggerDetail"]
        settle(detector, 4)
        lines = [r.getMessage() for r in caplog.records if "nowhere.git" in r.getMessage()]
        assert len(lines) == 1, lines
        make_repo(doomed)
        wait_for(lambda: not detection_of(client, "doomed"), 60, "the repository to be back")
        assert detection_of(client, "fine") == {}


def test_show_and_executions_tell_the_trigger(settings: Settings, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    with detecting(settings) as (live, client, detector):
        follow(client, detector, "app", git_action(str(repo)))
        sha = commit(repo, {"a": "1"}, "shown")
        wait_count(client, "app", 2)
        runner = CliRunner()
        listed = runner.invoke(cli, ["executions", "app", "--endpoint", live.endpoint])
        assert listed.exit_code == 0, listed.output
        assert "STARTED BY" in listed.output
        assert "CloudWatchEvent" in listed.output
        assert f"Source: commit {sha[:20]}" in listed.output
        shown = runner.invoke(cli, ["show", "app", "--endpoint", live.endpoint])
        assert shown.exit_code == 0, shown.output
        assert "CloudWatchEvent: Source: commit" in shown.output
        shutil.rmtree(repo)
        # Seen while the folder is half removed, the problem may first be a missing branch.
        wait_for(
            lambda: "no folder" in detection_of(client, "app").get("message", ""),
            60,
            "the removed repository",
        )
        shown = runner.invoke(cli, ["show", "app", "--endpoint", live.endpoint])
        assert f"change detection failing: There is no folder {repo}" in shown.output


def codecommit_action(name: str, **config: str) -> dict[str, Any]:
    return {
        "name": "Source",
        "actionTypeId": {
            "category": "Source",
            "owner": "AWS",
            "provider": "CodeCommit",
            "version": "1",
        },
        "configuration": {"RepositoryName": name, "BranchName": "main", **config},
        "outputArtifacts": [{"name": "Src"}],
        "namespace": "SRC",
    }


def test_codecommit_repositories_and_poll_for_source_changes_false(
    settings: Settings, tmp_path: Path
) -> None:
    home_repo = settings.home / "repositories" / "shop"
    mapped = tmp_path / "elsewhere" / "billing"
    make_repo(home_repo)
    make_repo(mapped)
    with detecting(settings, repositories={"billing": str(mapped)}) as (_, client, detector):
        client.create_pipeline(pipeline=declaration("shop", codecommit_action("shop")))
        client.create_pipeline(
            pipeline=declaration(
                "billing", codecommit_action("billing", PollForSourceChanges="false")
            )
        )
        wait_count(client, "shop", 1)
        wait_count(client, "billing", 1)
        sighted(detector)
        commit(mapped, {"a": "1"}, "not followed")
        sha = commit(home_repo, {"a": "1"}, "followed")
        found = wait_count(client, "shop", 2)
        assert found[0]["trigger"]["triggerType"] == "CloudWatchEvent"
        assert sha in found[0]["trigger"]["triggerDetail"]
        settle(detector, 2)
        assert len(executions(client, "billing")) == 1


def test_file_url_is_watched_like_a_folder(settings: Settings, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    with detecting(settings, poll_interval=3600) as (_, client, detector):
        client.create_pipeline(pipeline=declaration("app", git_action(f"file://{repo}")))
        wait_count(client, "app", 1)
        sighted(detector)
        sha = commit(repo, {"a": "1"}, "seen by events")
        found = wait_count(client, "app", 2)
        assert found[0]["trigger"]["triggerType"] == "CloudWatchEvent"
        assert sha in found[0]["trigger"]["triggerDetail"]
        assert detector.counters.remote_polls == 0


def test_a_corrupt_repository_starts_nothing_and_says_why(
    settings: Settings, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    with detecting(settings) as (_, client, detector):
        follow(client, detector, "app", git_action(str(repo)))
        sha = commit(repo, {"a": "1"}, "then lost")
        wait_count(client, "app", 2)
        lost = "0123456789abcdef" * 2 + "01234567"  # a commit the repository does not have
        written = repo / ".git" / "main.new"
        written.write_text(lost + "\n")
        written.rename(repo / ".git" / "refs" / "heads" / "main")
        problem = wait_for(lambda: detection_of(client, "app"), 60, "the corrupt repository")
        assert f"missing object {lost}" in problem["message"]
        assert sha in executions(client, "app")[0]["trigger"]["triggerDetail"]
        settle(detector, 2)
        assert len(executions(client, "app")) == 2


@pytest.mark.postgres
def test_a_database_outage_is_told_once_and_detection_resumes(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "conveyor.triggers")
    repo = tmp_path / "repo"
    make_repo(repo)
    schema = parse_qs(urlsplit(postgres_url).query)["options"][0].partition("search_path=")[2]
    with detecting(Settings(home=tmp_path / "home", database_url=postgres_url)) as (
        _,
        client,
        detector,
    ):
        follow(client, detector, "app", git_action(str(repo)))
        rename(schema, f"{schema}_away")
        try:
            wait_for(
                lambda: any(
                    r.name == "conveyor.triggers" and "pass failed" in r.getMessage()
                    for r in caplog.records
                ),
                60,
                "the failing pass",
            )
            passes = detector.counters.passes
            wait_for(lambda: detector.counters.passes >= passes + 3, 60, "more failing passes")
        finally:
            rename(f"{schema}_away", schema)
        wait_for(
            lambda: any("passes again" in r.getMessage() for r in caplog.records),
            60,
            "detection to pass again",
        )
        failed = [
            r
            for r in caplog.records
            if r.name == "conveyor.triggers" and "pass failed" in r.getMessage()
        ]
        assert len(failed) == 1, [r.exc_info for r in failed]
        sha = commit(repo, {"a": "1"}, "after the outage")
        found = wait_count(client, "app", 2)
        assert sha in found[0]["trigger"]["triggerDetail"]


def test_trigger_on_a_remote_connection_reads_every_branch(
    settings: Settings, tmp_path: Path
) -> None:
    served = tmp_path / "served"
    work = tmp_path / "work"
    make_repo(work)
    git(tmp_path, "clone", "-q", "--bare", str(work), str(served / "team" / "app"))
    trigger = {
        "providerType": "CodeStarSourceConnection",
        "gitConfiguration": {
            "sourceActionName": "Source",
            "push": [{"branches": {"includes": ["release/*"]}, "filePaths": {"includes": ["x"]}}],
        },
    }
    with (
        git_daemon(served) as base,
        detecting(settings, connections={ARN: base}) as (
            _,
            client,
            detector,
        ),
    ):
        client.create_pipeline(pipeline=declaration("app", connection_action(), triggers=[trigger]))
        wait_count(client, "app", 1)
        sighted(detector)
        git(work, "checkout", "-q", "-b", "release/2")
        sha = commit(work, {"y": "1"}, "a release")
        git(work, "push", "-q", str(served / "team" / "app"), "release/2")
        found = wait_count(client, "app", 2)
        # The files of a polled push are not known, so filePaths cannot hold it back.
        assert f"commit {sha} on refs/heads/release/2" in found[0]["trigger"]["triggerDetail"]
        assert found[0]["trigger"]["triggerType"] == "WebhookV2"
        git(work, "checkout", "-q", "main")
        commit(work, {"z": "1"}, "not a release")
        git(work, "push", "-q", str(served / "team" / "app"), "main")
        settle(detector)
        assert len(executions(client, "app")) == 2
