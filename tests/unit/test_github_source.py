"""The GitHub (version 1) source: Owner/Repo found as a connection's repository is."""

from __future__ import annotations

from pathlib import Path

from conveyor.actions.base import FailureType, ProviderConfig
from conveyor.actions.sources import GitHubSource
from tests.support.gitrepo import commit_all, git
from tests.support.jobs import source_context
from tests.unit.test_sources import _failed, _make_repo, _ok


def _github(owner: str = "acme", repo: str = "app") -> dict[str, str]:
    return {"Owner": owner, "Repo": repo, "Branch": "main", "OAuthToken": "ghp_unused"}


def test_github_repository_mapped_by_name(tmp_path: Path) -> None:
    repo = _make_repo(tmp_path / "elsewhere" / "app")
    config = ProviderConfig(home=tmp_path / "home", repositories={"acme/app": str(repo)})
    result = _ok(GitHubSource(config).run(source_context(tmp_path, _github())))
    assert result.output_variables["CommitId"] == git(repo, "rev-parse", "main")
    assert result.output_variables["FullRepositoryName"] == "acme/app"
    assert result.output_variables["RepositoryName"] == "app"


def test_github_through_a_base_and_unmapped(tmp_path: Path) -> None:
    _make_repo(tmp_path / "forge" / "acme" / "app")
    config = ProviderConfig(home=tmp_path / "home", connections={"GitHub": str(tmp_path / "forge")})
    _ok(GitHubSource(config).run(source_context(tmp_path, _github())))
    _make_repo(tmp_path / "home" / "repositories" / "acme" / "web")
    unmapped = ProviderConfig(home=tmp_path / "home")
    _ok(GitHubSource(unmapped).run(source_context(tmp_path, _github(repo="web"), 2)))


def test_github_bad_or_missing_repository(tmp_path: Path) -> None:
    config = ProviderConfig(home=tmp_path / "home")
    message = _failed(
        GitHubSource(config).run(source_context(tmp_path, _github(owner=".."))),
        FailureType.CONFIGURATION_ERROR,
    )
    assert "Invalid repository" in message
    _failed(
        GitHubSource(config).run(source_context(tmp_path, _github(), 2)),
        FailureType.REVISION_UNAVAILABLE,
    )


def test_commit_dates_are_written_in_utc_with_z(tmp_path: Path) -> None:
    repo = tmp_path / "home" / "repositories" / "acme" / "tz"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "a.txt").write_text("a\n")
    commit_all(repo, "In Paris", "2024-05-06T09:00:00+02:00")
    config = ProviderConfig(home=tmp_path / "home")
    result = _ok(GitHubSource(config).run(source_context(tmp_path, _github(repo="tz"))))
    assert result.output_variables["AuthorDate"] == "2024-05-06T07:00:00Z"
    assert result.output_variables["CommitterDate"] == "2024-05-06T07:00:00Z"
