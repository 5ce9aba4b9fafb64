"""Reading refs and changed files with git, as change detection does."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.triggers.gitrefs import RefsUnavailable, changed_files, local_refs, remote_refs
from tests.support.engine import commit, git, make_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    make_repo(path, {"a.txt": "a"})
    return path


def test_refs_with_annotated_tags_at_their_commit(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "-a", "-m", "one", "v1")
    git(repo, "tag", "light")
    second = commit(repo, {"b.txt": "b"}, "two")
    expected = {"refs/heads/main": second, "refs/tags/v1": first, "refs/tags/light": first}
    assert local_refs(str(repo / ".git")) == expected
    assert remote_refs(f"file://{repo}", None) == expected
    assert remote_refs(f"file://{repo}", "main") == {"refs/heads/main": second}
    assert remote_refs(f"file://{repo}", "gone") == {}


def test_unreadable_repositories_say_why(tmp_path: Path) -> None:
    with pytest.raises(RefsUnavailable, match="not a git repository"):
        local_refs(str(tmp_path))
    with pytest.raises(RefsUnavailable, match="nowhere"):
        remote_refs(f"file://{tmp_path}/nowhere", "main")


def test_changed_files_of_pushes_merges_and_first_commits(repo: Path) -> None:
    git_dir = str(repo / ".git")
    root = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "side")
    commit(repo, {"side/x.py": "x"}, "side")
    git(repo, "checkout", "-q", "main")
    ahead = commit(repo, {"main/y.py": "y"}, "main")
    git(repo, "merge", "-q", "--no-ff", "side", "-m", "merge")
    merge = git(repo, "rev-parse", "HEAD")
    assert changed_files(git_dir, None, root) == ("a.txt",)
    assert changed_files(git_dir, None, merge) == ("side/x.py",)
    assert changed_files(git_dir, root, merge) == ("main/y.py", "side/x.py")
    assert changed_files(git_dir, ahead, merge) == ("side/x.py",)
    assert changed_files(git_dir, None, "0" * 40) is None
