"""The ``Source/AWS/Git/1`` provider: emit one commit of a Git branch as a zip artifact.

A remote repository is fetched shallowly (one commit, no tags) into a bare folder of the
workspace; a local repository is read in place, its objects borrowed through ``alternates``
so nothing is copied. The commit's tree is checked out with ``read-tree`` into a clean folder,
zipped (modes and symbolic links kept, no ``.git``) and stored as the action's output
artifact, and the commit's details become the action's output variables and revision. A full
clone (``clone``, for CODEBUILD_CLONE_REF) is made with ``git clone`` instead and keeps its
``.git`` in the artifact. `emit_commit` does this for any `GitRequest`; the CodeCommit and
connection sources resolve their URL and call it. Passwords in URLs are never logged nor kept
in a clone's remote. Checkout and commit reading ignore the user's global and system Git
configuration, so settings such as ``core.autocrlf`` or filters cannot change what is emitted;
fetching keeps it (credentials, proxies, ``insteadOf``) but never prompts.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from conveyor.actions.base import FailureType, JobContext, JobResult, Revision
from conveyor.actions.process import ProcessResult, run_process
from conveyor.artifacts import ArtifactError
from conveyor.artifacts.archive import pack
from conveyor.artifacts.unpacked import Unpacked

__all__ = [
    "GitRequest",
    "GitSource",
    "emit_commit",
    "git_folder",
    "local_repository",
    "without_password",
]

_FORMAT = "--format=%H%x00%aI%x00%cI%x00%ct%x00%B"
_MAX_MESSAGE = 100 * 1024
_COMMIT_ID = re.compile(r"[0-9a-fA-F]{4,64}\Z")
_BAD_BRANCH = re.compile(r"^[-/]|\.\.|@\{|[\x00-\x20\x7f~^:?*\[\\]|//|/\.|\.lock$|[/.]$")
_REDIRECTING = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
)
_SAFE = (
    *("-c", "core.fsmonitor=false"),
    *("-c", "protocol.ext.allow=never"),
    *("-c", "log.showSignature=false"),
    *("-c", "i18n.logOutputEncoding=UTF-8"),
)


_FAILED = FailureType.JOB_FAILED
_UNAVAILABLE = FailureType.REVISION_UNAVAILABLE
_MISCONFIGURED = FailureType.CONFIGURATION_ERROR


class _Failure(Exception):
    def __init__(self, message: str, failure_type: FailureType) -> None:
        super().__init__(message)
        self.failure_type = failure_type


def _environments() -> tuple[dict[str, str], dict[str, str]]:
    """Environments for talking to the source (user config kept) and for local work (not)."""
    user = {k: v for k, v in os.environ.items() if k not in _REDIRECTING}
    user.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return user, {**user, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def local_repository(url: str) -> str | None:
    """The absolute path when ``url`` names a local folder rather than a remote repository."""
    if "://" in url or (re.match(r"[^/]+:", url) and not os.path.exists(url)):
        return None
    return os.path.abspath(os.path.expanduser(url))


def git_folder(repository: str) -> str | None:
    """The (common) Git folder of the repository at ``repository``: work tree, worktree, bare."""
    dotgit = os.path.join(repository, ".git")
    if os.path.isdir(dotgit):
        git_dir = dotgit
    elif os.path.isfile(dotgit):
        with open(dotgit, encoding="utf-8") as pointer:
            line = pointer.read().strip()
        if not line.startswith("gitdir:"):
            return None
        git_dir = os.path.join(repository, line.removeprefix("gitdir:").strip())
    elif os.path.isfile(os.path.join(repository, "HEAD")):
        git_dir = repository
    else:
        return None
    common = os.path.join(git_dir, "commondir")
    if os.path.isfile(common):
        with open(common, encoding="utf-8") as pointer:
            git_dir = os.path.join(git_dir, pointer.read().strip())
    git_dir = os.path.normpath(git_dir)
    return git_dir if os.path.isdir(os.path.join(git_dir, "objects")) else None


def _bare_folder(path: Path, alternates: str | None) -> None:
    """A minimal bare repository (what ``git init --bare`` makes, without spawning git)."""
    (path / "objects" / "info").mkdir(parents=True)
    (path / "refs").mkdir()
    (path / "HEAD").write_text("ref: refs/heads/main\n")
    if alternates:
        (path / "objects" / "info" / "alternates").write_text(alternates + "\n")


def _repository_name(url: str, local: str | None) -> str:
    last = re.split(r"[/:\\]", (local or url).rstrip("/"))[-1]
    return last.removesuffix(".git") or last


class _Git:
    """Runs git for one job: output to the job's log, stopped with the job."""

    def __init__(self, context: JobContext, url: str, what: str) -> None:
        self.context = context
        self.url = url
        self.what = what
        self.deadline = None if context.time_left is None else time.monotonic() + context.time_left
        self.user_env, self.pure_env = _environments()

    def __call__(self, *argv: str, pure: bool = True, capture: bool = False) -> ProcessResult:
        result = run_process(
            ["git", *_SAFE, *argv],
            cwd=self.context.workspace,
            env=self.pure_env if pure else self.user_env,
            log=self.context.log,
            cancelled=self.context.cancelled,
            deadline=self.deadline,
            capture_stdout=capture,
            started=self.context.process_started,
        )
        if result.stopped:
            happened = "Timed out" if result.stopped == "timed out" else "Stopped"
            raise _Failure(f"{happened} while reading {self.what} of {self.url}", _FAILED)
        return result

    def missing(self, tail: tuple[str, ...]) -> _Failure:
        said = " ".join(line for line in tail if line.startswith(("fatal:", "error:")))
        gone = (
            "couldn't find remote ref",
            "not our ref",
            "unknown revision",
            "bad revision",
            "not found in upstream",
        )
        if any(sign in said for sign in gone):
            return _Failure(f"{self.what.capitalize()} not found in {self.url}", _UNAVAILABLE)
        detail = said or " ".join(tail[-3:])
        return _Failure(f"Cannot read {self.what} of {self.url}: {detail}", _UNAVAILABLE)


@dataclass(frozen=True, slots=True)
class GitRequest:
    """One commit to emit: the head of ``branch`` (or the job's source revision) of ``url``.

    ``url`` is anything git can fetch from, or a folder; ``repository_name`` is the
    ``RepositoryName`` output variable (default: the URL's last part); ``clone`` keeps a full
    clone's ``.git`` in the artifact; ``variables`` are added to the output variables.
    """

    url: str
    branch: str
    repository_name: str | None = None
    clone: bool = False
    variables: Mapping[str, str] = field(default_factory=dict)


def _aws_date(value: str) -> str:
    """A date as AWS writes the commit dates of its sources: UTC, ending in ``Z``."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def emit_commit(
    context: JobContext, request: GitRequest, unpacked: Unpacked | None = None
) -> JobResult:
    """Emit the commit ``request`` names as the job's one output artifact; its checkout is
    kept in ``unpacked`` (when given) for the actions that read it."""
    try:
        return _emit(context, request, unpacked)
    except _Failure as failure:
        return JobResult.failed(str(failure), failure.failure_type)
    except ArtifactError as error:
        return JobResult.failed(str(error))
    except FileNotFoundError as error:
        return JobResult.failed(f"Cannot run git: {error}", FailureType.SYSTEM_UNAVAILABLE)
    except OSError as error:
        return JobResult.failed(f"Git source failed: {error}")


class GitSource:
    """Fetches one commit of a branch (or a given commit) and emits its tree as a zip; the
    tree is kept in ``unpacked`` for the actions that read it."""

    def __init__(self, unpacked: Unpacked | None = None) -> None:
        self.unpacked = unpacked

    def run(self, context: JobContext) -> JobResult:
        url = context.configuration.get("RepositoryUrl", "").strip()
        branch = context.configuration.get("BranchName", "").strip() or "main"
        if not url:
            return JobResult.failed("The configuration has no RepositoryUrl", _MISCONFIGURED)
        return emit_commit(context, GitRequest(url, branch), self.unpacked)


def _check(context: JobContext, request: GitRequest) -> tuple[str, str]:
    """The output artifact's bucket and key, once the request is known to be usable."""
    if request.url.startswith("-"):
        raise _Failure(f"Invalid repository URL {request.url!r}", _MISCONFIGURED)
    if _BAD_BRANCH.search(request.branch):
        raise _Failure(f"Invalid BranchName {request.branch!r}", _MISCONFIGURED)
    if len(context.output_artifacts) != 1:
        raise _Failure("A Git source action has exactly one output artifact", _MISCONFIGURED)
    wanted = context.source_revision
    if wanted is not None and not _COMMIT_ID.match(wanted):
        raise _Failure(f"Source revision {wanted!r} is not a commit id", _UNAVAILABLE)
    output = context.output_artifacts[0]
    return output.bucket, output.key


def _read(git: _Git, request: GitRequest, git_dir: Path, local: str | None) -> ProcessResult:
    """Find the commit (fetching it shallowly from a remote) into the bare ``git_dir``."""
    wanted = git.context.source_revision
    if local is not None:
        source = git_folder(local)
        if source is None:
            raise _Failure(f"{request.url} is not a Git repository", _UNAVAILABLE)
        _bare_folder(git_dir, os.path.join(source, "objects"))
        revision = f"{wanted}^{{commit}}" if wanted else f"refs/heads/{request.branch}"
        return git(f"--git-dir={source}", "log", "-1", _FORMAT, revision, "--", capture=True)
    _bare_folder(git_dir, None)
    ref = wanted or f"refs/heads/{request.branch}"
    fetch = ("fetch", "--depth", "1", "--no-tags", "--end-of-options", request.url, ref)
    fetched = git(f"--git-dir={git_dir}", *fetch, pure=False)
    if fetched.returncode != 0:
        raise git.missing(fetched.tail)
    return git(f"--git-dir={git_dir}", "log", "-1", _FORMAT, "FETCH_HEAD", "--", capture=True)


def without_password(url: str) -> str:
    """``url`` with any password in it left out (``https://user:token@host`` → ``user@host``)."""
    parts = urlsplit(url) if "://" in url else None
    if parts is None or parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user_info.split(':', 1)[0]}@{host}"))


def _clone(git: _Git, request: GitRequest, tree: Path) -> ProcessResult:
    """Clone the whole repository into ``tree`` (no checkout yet) and find the commit."""
    options = ("--quiet", "--no-checkout", "--branch", request.branch)
    cloned = git("clone", *options, "--", request.url, str(tree), pure=False)
    if cloned.returncode != 0:
        raise git.missing(cloned.tail)
    if git.url != request.url:
        git(f"--git-dir={tree / '.git'}", "remote", "set-url", "origin", git.url)
    wanted = git.context.source_revision
    revision = f"{wanted}^{{commit}}" if wanted else "HEAD"
    return git(f"--git-dir={tree / '.git'}", "log", "-1", _FORMAT, revision, "--", capture=True)


def _emit(context: JobContext, request: GitRequest, unpacked: Unpacked | None) -> JobResult:
    bucket, key = _check(context, request)
    url, branch, wanted = request.url, request.branch, context.source_revision
    shown = without_password(url)  # what logs and messages show
    git = _Git(context, shown, f"commit {wanted}" if wanted else f"branch {branch}")
    workspace = context.workspace
    git_dir, tree = workspace / "git", workspace / "tree"
    tree.mkdir()
    context.log.write(f"Reading {git.what} of {shown}\n")
    local = local_repository(url)
    found = _clone(git, request, tree) if request.clone else _read(git, request, git_dir, local)
    if found.returncode != 0 or found.stdout.count(b"\0") < 4:
        raise git.missing(found.tail)
    fields = found.stdout.decode("utf-8", "replace").split("\0", 4)
    commit_id, author_date, committer_date, committed, message = fields
    author_date, committer_date = _aws_date(author_date), _aws_date(committer_date)
    if request.clone:
        checkout = git("-C", str(tree), "reset", "--quiet", "--hard", commit_id)
    else:
        index = f"--index-output={workspace / 'index'}"
        work = (f"--git-dir={git_dir}", f"--work-tree={tree}")
        checkout = git(*work, "read-tree", "-u", "--reset", index, commit_id)
    if checkout.returncode != 0:
        raise _Failure(f"Cannot check out {commit_id}: {' '.join(checkout.tail[-2:])}", _FAILED)
    archive = workspace / "source.zip"
    count = pack(tree, archive)
    context.artifacts.put(bucket, key, archive)
    if unpacked is not None:  # the first action reading it finds it unpacked
        unpacked.adopt(context.artifacts, bucket, key, tree, archive)
    message = message.rstrip("\n")
    if len(message) > _MAX_MESSAGE // 4:
        message = message.encode()[:_MAX_MESSAGE].decode("utf-8", "ignore")
    summary = message.split("\n", 1)[0]
    context.log.write(f"Commit {commit_id}: {summary} ({count} entries)\n")
    return JobResult(
        succeeded=True,
        summary=summary,
        output_variables={
            "CommitId": commit_id,
            "BranchName": branch,
            "CommitMessage": message,
            "AuthorDate": author_date,
            "CommitterDate": committer_date,
            "RepositoryName": request.repository_name or _repository_name(url, local),
            **request.variables,
            **context.source_variables,
        },
        revision=Revision(
            revision_id=commit_id,
            change_identifier=commit_id,
            created=float(committed),
            summary=summary,
        ),
        # As AWS shows a source action's run: its external execution is the commit.
        external_execution_id=commit_id,
    )
