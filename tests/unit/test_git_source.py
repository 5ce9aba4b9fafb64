"""The Git source provider against real repositories made with git in a temporary folder."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from conveyor.actions.base import FailureType, JobResult
from conveyor.actions.git import GitSource
from conveyor.artifacts.archive import unpack
from tests.support.gitrepo import commit_all, git
from tests.support.jobs import source_context


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository named ``app`` with two commits on ``main`` and one on ``feature``."""
    path = tmp_path / "app"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("version 1\n")
    (path / "run.sh").write_text("#!/bin/sh\n")
    (path / "run.sh").chmod(0o755)
    (path / "lib").mkdir()
    (path / "lib" / "code.py").write_text("x = 1\n")
    (path / "latest").symlink_to("lib/code.py")
    commit_all(path, "First commit", "2024-01-02T03:04:05+00:00")
    (path / "README.md").write_text("version 2\n")
    commit_all(path, "Second commit\n\nWith a body.", "2024-02-03T04:05:06+00:00")
    git(path, "checkout", "-q", "-b", "feature")
    (path / "feature.txt").write_text("feature\n")
    commit_all(path, "Feature", "2024-03-04T05:06:07+00:00")
    git(path, "checkout", "-q", "main")
    return path


def _emitted(tmp_path: Path) -> Path:
    out = tmp_path / "emitted"
    unpack(tmp_path / "buckets" / "artifacts" / "pipe" / "SourceOut.zip", out)
    return out


def _ok(result: JobResult) -> JobResult:
    assert result.succeeded, result.message
    return result


def test_branch_head_is_emitted_with_modes_and_links_and_no_git_folder(
    tmp_path: Path, repo: Path
) -> None:
    head = git(repo, "rev-parse", "main")
    result = _ok(GitSource().run(source_context(tmp_path, {"RepositoryUrl": str(repo)})))
    out = _emitted(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "latest", "lib", "run.sh"]
    assert (out / "README.md").read_text() == "version 2\n"
    assert stat.S_IMODE((out / "run.sh").stat().st_mode) & 0o111
    assert os.readlink(out / "latest") == "lib/code.py"
    assert result.output_variables == {
        "CommitId": head,
        "BranchName": "main",
        "CommitMessage": "Second commit\n\nWith a body.",
        "AuthorDate": "2024-02-03T04:05:06Z",
        "CommitterDate": "2024-02-03T04:05:06Z",
        "RepositoryName": "app",
    }
    assert result.revision is not None
    assert result.revision.revision_id == result.revision.change_identifier == head
    assert result.revision.created == 1706933106.0
    assert result.revision.summary == result.summary == "Second commit"


def test_source_revision_checks_out_an_oldercommit_all(tmp_path: Path, repo: Path) -> None:
    first = git(repo, "rev-parse", "main~1")
    context = source_context(tmp_path, {"RepositoryUrl": str(repo)}, source_revision=first)
    result = _ok(GitSource().run(context))
    assert result.output_variables["CommitId"] == first
    assert (_emitted(tmp_path) / "README.md").read_text() == "version 1\n"


def test_a_url_is_fetched_shallowly(tmp_path: Path, repo: Path) -> None:
    configuration = {"RepositoryUrl": f"file://{repo}", "BranchName": "feature"}
    context = source_context(tmp_path, configuration)
    result = _ok(GitSource().run(context))
    assert (_emitted(tmp_path) / "feature.txt").read_text() == "feature\n"
    assert result.output_variables["BranchName"] == "feature"
    assert git(context.workspace / "git", "rev-list", "--count", "FETCH_HEAD") == "1"
    assert isinstance(context.log, io.StringIO)
    assert "FETCH_HEAD" in context.log.getvalue()  # what git printed


def test_a_url_with_source_revision_fetches_thatcommit_all(tmp_path: Path, repo: Path) -> None:
    first = git(repo, "rev-parse", "main~1")
    context = source_context(tmp_path, {"RepositoryUrl": f"file://{repo}"}, source_revision=first)
    assert _ok(GitSource().run(context)).output_variables["CommitId"] == first


def test_a_relative_path_is_relative_to_the_working_directory(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = _ok(GitSource().run(source_context(tmp_path, {"RepositoryUrl": "app"})))
    assert result.output_variables["RepositoryName"] == "app"


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_an_unknown_branch_is_revision_unavailable(tmp_path: Path, repo: Path, scheme: str) -> None:
    configuration = {"RepositoryUrl": f"{scheme}{repo}", "BranchName": "nope"}
    result = GitSource().run(source_context(tmp_path, configuration))
    assert not result.succeeded
    assert result.failure_type == FailureType.REVISION_UNAVAILABLE
    assert result.message == f"Branch nope not found in {scheme}{repo}"


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_an_unreachable_repository_is_revision_unavailable(tmp_path: Path, scheme: str) -> None:
    url = f"{scheme}{tmp_path / 'missing'}"
    result = GitSource().run(source_context(tmp_path, {"RepositoryUrl": url}))
    assert not result.succeeded
    assert result.failure_type == FailureType.REVISION_UNAVAILABLE
    assert result.message is not None and url in result.message


def test_an_unknown_commit_is_revision_unavailable(tmp_path: Path, repo: Path) -> None:
    context = source_context(tmp_path, {"RepositoryUrl": str(repo)}, source_revision="ab" * 20)
    result = GitSource().run(context)
    assert (result.succeeded, result.failure_type) == (False, FailureType.REVISION_UNAVAILABLE)


@pytest.mark.parametrize(
    "configuration",
    [
        {},
        {"RepositoryUrl": "  "},
        {"RepositoryUrl": "--upload-pack=touch /tmp/x"},
        {"RepositoryUrl": "/r", "BranchName": "bad..name"},
    ],
)
def test_bad_configuration_is_a_configuration_error(
    tmp_path: Path, configuration: dict[str, str]
) -> None:
    result = GitSource().run(source_context(tmp_path, configuration))
    assert (result.succeeded, result.failure_type) == (False, FailureType.CONFIGURATION_ERROR)


def test_the_global_git_configuration_cannot_change_the_files(
    tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gitconfig"
    config.write_text("[core]\n\tautocrlf = true\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    _ok(GitSource().run(source_context(tmp_path, {"RepositoryUrl": f"file://{repo}"})))
    assert (_emitted(tmp_path) / "README.md").read_bytes() == b"version 2\n"


def test_a_huge_commit_message_is_cut_to_100_kb(tmp_path: Path, repo: Path) -> None:
    (repo / "big.txt").write_text("big\n")
    commit_all(repo, "é" * 80_000, "2024-04-05T06:07:08+00:00")
    result = _ok(GitSource().run(source_context(tmp_path, {"RepositoryUrl": str(repo)})))
    message = result.output_variables["CommitMessage"]
    assert len(message.encode()) <= 100 * 1024 and message.startswith("éé")


def test_a_cancelled_job_stops(tmp_path: Path, repo: Path) -> None:
    context = source_context(tmp_path, {"RepositoryUrl": f"file://{repo}"})
    context.cancelled.set()
    result = GitSource().run(context)
    assert not result.succeeded and result.message is not None
    assert result.message.startswith("Stopped")
