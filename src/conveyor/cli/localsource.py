"""``conveyor run --source ACTION=PATH``: a source action that emits a local folder as it is now.

The folder is copied into a fresh git repository and committed there as "Local folder <path>
as it is now"; the source action becomes a ``Source/AWS/Git/1`` action on that repository, so
its output artifact and its variables (``CommitId``, ``CommitMessage``, ``BranchName``, …) are
what a real commit would give. Uncommitted changes are included. When the folder is a git work
tree, the copy holds what git sees there: tracked files as they are on disk and untracked files
that are not ignored (``git ls-files --cached --others --exclude-standard``), so build outputs
and other ignored files stay out, as they would in a commit; otherwise the whole folder is
copied, without ``.git``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from conveyor.cli.documents import DocumentError, load_pipeline

BRANCH = "main"
GIT_SOURCE = {"category": "Source", "owner": "AWS", "provider": "Git", "version": "1"}
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "conveyor run",
    "GIT_AUTHOR_EMAIL": "conveyor@localhost",
    "GIT_COMMITTER_NAME": "conveyor run",
    "GIT_COMMITTER_EMAIL": "conveyor@localhost",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}
# Variables that would point git at another repository than the one it runs in.
_REDIRECTING = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")


class LocalSourceError(ValueError):
    """A --source or --revision that cannot be used; the message says why."""

    def __init__(self, message: str, option: str = "--source") -> None:
        super().__init__(message)
        self.option = option


def _git(folder: Path, *args: str, own: bool = True) -> str:
    """Run git in ``folder``; ``own``: a repository we made (no user configuration)."""
    env = {k: v for k, v in os.environ.items() if k not in _REDIRECTING}
    env["GIT_TERMINAL_PROMPT"] = "0"
    if own:
        env.update(_GIT_ENV)
    try:
        result = subprocess.run(
            ["git", "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", *args],
            cwd=folder,
            env=env,
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        raise LocalSourceError(f"cannot run git: {exc}") from exc
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise LocalSourceError(f"git {args[0]} in {folder} failed: {message}")
    return result.stdout.decode(errors="surrogateescape")


def _work_tree_files(folder: Path) -> list[str] | None:
    """The files git sees in ``folder`` (relative paths), or None when it is not a work tree."""
    try:
        inside = _git(folder, "rev-parse", "--is-inside-work-tree", own=False)
    except LocalSourceError:
        return None
    if inside.strip() != "true":
        return None
    listing = _git(
        folder, "ls-files", "-z", "--cached", "--others", "--exclude-standard", own=False
    )
    return sorted({name for name in listing.split("\0") if name})


def _copy_one(source: Path, target: Path) -> None:
    if source.is_symlink():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.readlink(source), target)
    elif source.is_dir():  # a submodule: its files, without its .git
        shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    elif source.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    # Missing: a tracked file deleted in the work tree, so not part of the snapshot.


def _copy(folder: Path, names: Iterable[str] | None, target: Path) -> None:
    if names is None:
        shutil.copytree(
            folder,
            target,
            symlinks=True,
            ignore=shutil.ignore_patterns(".git"),
            dirs_exist_ok=True,
        )
        return
    for name in names:
        _copy_one(folder / name, target / name)


def snapshot(folder: Path, repository: Path) -> str:
    """Commit ``folder`` as it is now as the only commit of a new repository at
    ``repository``; the commit id."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise LocalSourceError(f"{folder} is not a folder")
    repository.mkdir(parents=True, exist_ok=True)
    _git(repository, "init", "-q", "-b", BRANCH)
    _copy(folder, _work_tree_files(folder), repository)
    _git(repository, "add", "-A", "-f", ".")
    _git(
        repository,
        "commit",
        "-q",
        "--allow-empty",
        "--no-verify",
        "-m",
        f"Local folder {folder} as it is now",
    )
    return _git(repository, "rev-parse", "HEAD").strip()


def source_actions(declaration: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The source actions of the declaration (first stage) by name."""
    stages = declaration.get("stages") or []
    first = stages[0] if stages and isinstance(stages[0], dict) else {}
    return {
        str(action.get("name")): action
        for action in first.get("actions") or ()
        if isinstance(action, dict)
        and isinstance(action.get("actionTypeId"), dict)
        and action["actionTypeId"].get("category") == "Source"
    }


def replace_source(declaration: dict[str, Any], action_name: str, repository: Path) -> None:
    """Make the source action ``action_name`` a Git source on ``repository`` (in place)."""
    action = source_actions(declaration).get(action_name)
    if action is None:
        known = ", ".join(sorted(source_actions(declaration))) or "none"
        raise LocalSourceError(
            f"the pipeline has no source action named {action_name!r} (its source actions: {known})"
        )
    action["actionTypeId"] = dict(GIT_SOURCE)
    action["configuration"] = {"RepositoryUrl": str(repository), "BranchName": BRANCH}
    for key in ("roleArn", "region"):
        action.pop(key, None)


def prepare(
    file: Path,
    sources: Sequence[tuple[str, str]],
    revisions: Sequence[tuple[str, str]],
    scratch: Path,
) -> dict[str, Any]:
    """The declaration in ``file`` ready to run, each ``--source`` action replaced by a
    snapshot of its folder (a repository under ``scratch``)."""
    declaration = load_pipeline(file)
    if not isinstance(declaration.get("name"), str):
        raise DocumentError(f"{file}: the pipeline has no name")
    known = source_actions(declaration)
    for action, _ in revisions:
        if action not in known:
            raise LocalSourceError(
                f"the pipeline has no source action named {action!r}", "--revision"
            )
    for action, path in sources:
        if action in dict(revisions):
            raise LocalSourceError(f"{action} is given both --source and --revision")
        repository = scratch / action
        replace_source(declaration, action, repository)
        snapshot(Path(path), repository)
    return declaration
