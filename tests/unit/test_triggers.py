"""Default change detection, V2 trigger filters and their validation (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.domain.catalog import builtin_action_type
from conveyor.domain.errors import InvalidStructureException
from conveyor.domain.gitfilters import INVALID_COMBINATION, Criteria, PullRequestEvent
from conveyor.domain.pipeline import parse_pipeline
from conveyor.domain.structure import check
from conveyor.domain.triggers import (
    ObjectChange,
    PullRequest,
    Push,
    decide,
    trigger_type,
    watches,
)
from tests.support.declarations import (
    CONNECTION_ARN,
    build_action,
    connection_source,
    pipeline,
)

ARN = CONNECTION_ARN
SHA = "a" * 40


def provider_action(provider: str, **config: str) -> dict[str, Any]:
    return {
        "name": "Source",
        "actionTypeId": {
            "category": "Source",
            "owner": "AWS",
            "provider": provider,
            "version": "1",
        },
        "configuration": config,
        "outputArtifacts": [{"name": "SourceOutput"}],
    }


def with_trigger(git: dict[str, Any], source: dict[str, Any] | None = None) -> dict[str, Any]:
    return pipeline(
        pipelineType="V2",
        stages=[
            {"name": "Source", "actions": [source or connection_source()]},
            {"name": "Build", "actions": [build_action()]},
        ],
        triggers=[
            {
                "providerType": "CodeStarSourceConnection",
                "gitConfiguration": {"sourceActionName": "Source", **git},
            }
        ],
    )


def problems(declaration: dict[str, Any]) -> list[tuple[str, type, str]]:
    return [
        (p.where, p.error, p.message)
        for p in check(parse_pipeline(declaration), builtin_action_type, "us-east-1")
    ]


def only_watch(declaration: dict[str, Any]) -> Any:
    (watch,) = watches(parse_pipeline(declaration))
    return watch


# -- default detection ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "config", "detects"),
    [
        ("CodeCommit", {"RepositoryName": "app", "BranchName": "main"}, True),
        ("CodeCommit", {"RepositoryName": "app", "PollForSourceChanges": "true"}, True),
        ("CodeCommit", {"RepositoryName": "app", "PollForSourceChanges": "false"}, False),
        ("S3", {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, True),
        ("S3", {"S3Bucket": "b", "S3ObjectKey": "k.zip", "PollForSourceChanges": "False"}, False),
        ("Git", {"RepositoryUrl": "/r"}, True),
        ("Git", {"RepositoryUrl": "/r", "DetectChanges": "false"}, False),
        ("CodeStarSourceConnection", {"ConnectionArn": ARN, "FullRepositoryId": "a/b"}, True),
        (
            "CodeStarSourceConnection",
            {"ConnectionArn": ARN, "FullRepositoryId": "a/b", "DetectChanges": "false"},
            False,
        ),
        ("ECR", {"RepositoryName": "img"}, False),
    ],
)
def test_default_detection_switch_per_provider(
    provider: str, config: dict[str, str], detects: bool
) -> None:
    declaration = pipeline(
        stages=[
            {"name": "Source", "actions": [provider_action(provider, **config)]},
            {"name": "Build", "actions": [build_action()]},
        ]
    )
    assert bool(watches(parse_pipeline(declaration))) is detects


def test_default_detection_starts_on_the_branch_only() -> None:
    watch = only_watch(pipeline())
    fire = decide(watch, Push("refs/heads/main", SHA))
    assert fire is not None
    assert fire.revision == SHA
    assert SHA in fire.detail and "refs/heads/main" in fire.detail
    assert decide(watch, Push("refs/heads/other", SHA)) is None
    assert decide(watch, Push("refs/tags/main", SHA)) is None


def test_default_detection_ignores_pull_requests() -> None:
    watch = only_watch(pipeline())
    pr = PullRequest(PullRequestEvent.OPEN, "1", "t", "f", "main", SHA)
    assert decide(watch, pr) is None


def test_git_branch_defaults_to_main() -> None:
    declaration = pipeline(
        stages=[
            {"name": "Source", "actions": [provider_action("Git", RepositoryUrl="/r")]},
            {"name": "Build", "actions": [build_action()]},
        ]
    )
    assert decide(only_watch(declaration), Push("refs/heads/main", SHA)) is not None


def test_same_change_same_token_other_change_other_token() -> None:
    watch = only_watch(pipeline())
    first = decide(watch, Push("refs/heads/main", SHA))
    again = decide(watch, Push("refs/heads/main", SHA))
    other = decide(watch, Push("refs/heads/main", "b" * 40))
    assert first and again and other
    assert first.token == again.token != other.token
    assert len(first.token) <= 128


def test_trigger_types() -> None:
    git = only_watch(pipeline())
    assert trigger_type(git, polled=True) == "PollForSourceChanges"
    assert trigger_type(git, polled=False) == "CloudWatchEvent"
    conn = only_watch(with_trigger({}))
    assert trigger_type(conn, polled=True) == "WebhookV2"


def test_s3_object_change_fires_with_version_revision() -> None:
    declaration = pipeline(
        stages=[
            {"name": "Source", "actions": [provider_action("S3", S3Bucket="b", S3ObjectKey="k")]},
            {"name": "Build", "actions": [build_action()]},
        ]
    )
    fire = decide(only_watch(declaration), ObjectChange("b", "k", "etag1"))
    assert fire is not None
    assert fire.revision_type == "S3_OBJECT_VERSION_ID"
    assert fire.revision == "etag1"
    assert decide(only_watch(pipeline()), ObjectChange("b", "k", "etag1")) is None


# -- triggers -----------------------------------------------------------------------------


def test_trigger_without_filters_follows_branch_name() -> None:
    watch = only_watch(with_trigger({}))
    assert decide(watch, Push("refs/heads/main", SHA)) is not None
    assert decide(watch, Push("refs/heads/dev", SHA)) is None


def test_trigger_with_branch_filter_replaces_branch_name() -> None:
    watch = only_watch(
        with_trigger(
            {"push": [{"branches": {"includes": ["release/*"], "excludes": ["release/old"]}}]}
        )
    )
    assert decide(watch, Push("refs/heads/main", SHA)) is None
    fire = decide(watch, Push("refs/heads/release/1.0", SHA))
    assert fire is not None
    assert fire.variables == {"BranchName": "release/1.0"}
    assert decide(watch, Push("refs/heads/release/old", SHA)) is None
    assert decide(watch, Push("refs/heads/release/a/b", SHA)) is None


def test_tag_filter() -> None:
    watch = only_watch(with_trigger({"push": [{"tags": {"includes": ["v*"]}}]}))
    assert decide(watch, Push("refs/tags/v1.2", SHA)) is not None
    assert decide(watch, Push("refs/tags/x1", SHA)) is None
    assert decide(watch, Push("refs/heads/v1", SHA)) is None


def test_file_paths_filter() -> None:
    watch = only_watch(
        with_trigger(
            {
                "push": [
                    {
                        "branches": {"includes": ["main"]},
                        "filePaths": {"includes": ["src/**"], "excludes": ["**/*.md"]},
                    }
                ]
            }
        )
    )
    assert decide(watch, Push("refs/heads/main", SHA, ("src/a/b.py",))) is not None
    assert decide(watch, Push("refs/heads/main", SHA, ("docs/x.py",))) is None
    assert decide(watch, Push("refs/heads/main", SHA, ("src/README.md",))) is None
    assert decide(watch, Push("refs/heads/main", SHA, ("src/README.md", "src/x.c"))) is not None
    # Files that cannot be listed never hide a change.
    assert decide(watch, Push("refs/heads/main", SHA, None)) is not None


def test_pull_request_filter() -> None:
    watch = only_watch(
        with_trigger(
            {"pullRequest": [{"events": ["OPEN", "UPDATED"], "branches": {"includes": ["main"]}}]}
        )
    )
    opened = PullRequest(PullRequestEvent.OPEN, "7", "Add  a\nthing", "feature", "main", SHA)
    fire = decide(watch, opened)
    assert fire is not None
    assert fire.revision == SHA
    assert "pull request 7 OPEN (feature -> main)" in fire.detail
    assert fire.variables["PullRequestId"] == "7"
    assert fire.variables["PullRequestTitle"] == "Add a thing"
    assert fire.variables["BranchName"] == "feature"
    closed = PullRequest(PullRequestEvent.CLOSED, "7", "t", "feature", "main", SHA)
    assert decide(watch, closed) is None
    elsewhere = PullRequest(PullRequestEvent.OPEN, "7", "t", "feature", "dev", SHA)
    assert decide(watch, elsewhere) is None
    updated = PullRequest(PullRequestEvent.UPDATED, "7", "t", "feature", "main", SHA)
    fired = decide(watch, updated)
    assert fired is not None and fired.token != fire.token
    # A push is not a pull request.
    assert decide(watch, Push("refs/heads/main", SHA)) is None


def test_pull_request_events_default_to_all() -> None:
    watch = only_watch(with_trigger({"pullRequest": [{"branches": {"includes": ["**"]}}]}))
    for event in PullRequestEvent:
        assert decide(watch, PullRequest(event, "1", "t", "f", "a/b", SHA)) is not None


def test_detect_changes_false_turns_a_trigger_off() -> None:
    declaration = with_trigger(
        {"push": [{"branches": {"includes": ["*"]}}]}, connection_source(DetectChanges="false")
    )
    assert watches(parse_pipeline(declaration)) == ()


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "git",
    [
        {"push": [{"tags": {"includes": ["v*"]}}]},
        {"push": [{"branches": {"excludes": ["wip/*"]}}]},
        {"push": [{"branches": {"includes": ["main"]}, "filePaths": {"includes": ["src/*"]}}]},
        {"pullRequest": [{"branches": {"includes": ["main"]}}]},
        {
            "pullRequest": [
                {
                    "events": ["CLOSED"],
                    "branches": {"includes": ["main"]},
                    "filePaths": {"excludes": ["*.md"]},
                }
            ]
        },
        {
            "push": [{"tags": {"includes": ["v*"]}}],
            "pullRequest": [{"branches": {"includes": ["main"]}}],
        },
        {},
    ],
)
def test_valid_filter_combinations(git: dict[str, Any]) -> None:
    assert problems(with_trigger(git)) == []


@pytest.mark.parametrize(
    "git",
    [
        {"push": [{"tags": {"includes": ["v*"]}, "branches": {"includes": ["main"]}}]},
        {"push": [{"tags": {"includes": ["v*"]}, "filePaths": {"includes": ["a"]}}]},
        {"push": [{"filePaths": {"includes": ["src/*"]}}]},
        {"push": [{}]},
        {"push": [{"branches": {}}]},
        {"pullRequest": [{"events": ["OPEN"]}]},
        {"pullRequest": [{"filePaths": {"includes": ["a"]}}]},
        {"push": [{"branches": {"includes": ["main"]}}, {"tags": {}}]},
    ],
)
def test_invalid_filter_combinations(git: dict[str, Any]) -> None:
    assert problems(with_trigger(git)) == [
        ("triggers[0].gitConfiguration", InvalidStructureException, INVALID_COMBINATION)
    ]


# -- globs ---------------------------------------------------------------------------------

segment = st.text(alphabet="abcxyz019-_.", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
paths = st.lists(segment, min_size=1, max_size=4).map("/".join)


@given(paths)
def test_glob_star_stays_in_one_segment(path: str) -> None:
    first, _, rest = path.partition("/")
    assert Criteria(includes=(f"{first}/*",)).matches(path) is (rest != "" and "/" not in rest)
    assert Criteria(includes=(f"{first}/**",)).matches(path) is (rest != "")


@given(paths, st.lists(paths, max_size=3), st.lists(paths, max_size=3))
def test_excludes_win(name: str, includes: list[str], excludes: list[str]) -> None:
    criteria = Criteria(tuple(includes), tuple([*excludes, name]))
    assert not criteria.matches(name)


@given(paths)
def test_exact_names_and_alternatives(path: str) -> None:
    assert Criteria(includes=(path,)).matches(path)
    assert Criteria(includes=("{" + path + ",zzz-none}",)).matches(path)
    assert Criteria(excludes=("zzz-none",)).matches(path)
