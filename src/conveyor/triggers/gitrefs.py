"""Reading refs for change detection: a local repository's with ``git for-each-ref``, a
remote's with ``git ls-remote``, and the files changed between two commits.

Each function runs one git process, never prompts, and raises `RefsUnavailable` with one
line saying why (a folder that is no repository, an unreachable remote, a corrupt object).
Annotated tags are reported at the commit they point to.
"""

from __future__ import annotations

import os
import subprocess

from conveyor.triggers.locations import without_password

TIMEOUT = 30.0
_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "/bin/false",
    "LC_ALL": "C",
}
# The object type makes git read each object: a corrupt or missing one fails the read.
_FORMAT = "--format=%(refname)%00%(objectname)%00%(*objectname)%00%(objecttype)"


class RefsUnavailable(Exception):
    """Refs that cannot be read; the message is one line for the log and the state."""


def _git(argv: list[str], what: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-c", "core.fsmonitor=false", "-c", "protocol.ext.allow=never", *argv],
            env=_ENV,
            capture_output=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RefsUnavailable(f"{what}: git took more than {TIMEOUT:.0f} s") from exc
    except OSError as exc:
        raise RefsUnavailable(f"{what}: cannot run git: {exc}") from exc
    if done.returncode != 0:
        said = [
            line.strip()
            for line in done.stderr.decode("utf-8", "replace").splitlines()
            if line.strip()
        ]
        reason = next((line for line in said if line.startswith(("fatal:", "error:"))), None)
        reason = reason or (said[-1] if said else "git failed")
        raise RefsUnavailable(reason if what in reason else f"{what}: {reason}")
    return done.stdout.decode("utf-8", "replace")


def local_refs(git_dir: str) -> dict[str, str]:
    """Every branch and tag of the repository whose git folder is ``git_dir``."""
    out = _git(
        [f"--git-dir={git_dir}", "for-each-ref", _FORMAT, "refs/heads", "refs/tags"], git_dir
    )
    refs = {}
    for line in out.splitlines():
        parts = line.split("\0")
        if len(parts) == 4:
            name, target, peeled, _ = parts
            refs[name] = peeled or target
    return refs


def remote_refs(url: str, branch: str | None) -> dict[str, str]:
    """The branch ``branch`` of ``url`` (absent when it has none), or every branch and tag."""
    shown = without_password(url)
    if branch is not None:
        argv = ["ls-remote", "--end-of-options", url, f"refs/heads/{branch}"]
    else:
        argv = ["ls-remote", "--heads", "--tags", "--end-of-options", url]
    out = _git(argv, shown)
    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in out.splitlines():
        target, _, name = line.partition("\t")
        if name.endswith("^{}"):
            peeled[name[:-3]] = target
        elif name:
            refs[name] = target
    refs.update({name: target for name, target in peeled.items() if name in refs})
    return refs


def changed_files(git_dir: str, old: str | None, new: str) -> tuple[str, ...] | None:
    """The paths that differ from ``old`` to ``new`` (without ``old``: what ``new`` itself
    changed, against its first parent); None when they cannot be told (an object is missing)."""
    base = ["--git-dir=" + git_dir, "-c", "core.quotePath=false"]
    attempts = [[*base, "diff", "--name-only", "-z", "--no-renames", old or f"{new}^1", new, "--"]]
    if old is None:  # a root commit has no first parent
        attempts.append(
            [*base, "diff-tree", "--root", "--no-commit-id", "-r", "--name-only", "-z", new]
        )
    for argv in attempts:
        try:
            out = _git(argv, git_dir)
        except RefsUnavailable:
            continue
        return tuple(name for name in out.split("\0") if name)
    return None


def pull_request_files(git_dir: str, destination: str, head: str) -> tuple[str, ...] | None:
    """The paths a pull request of ``head`` into ``destination`` changes (from where they
    part); None when they cannot be told."""
    argv = ["--git-dir=" + git_dir, "diff", "--name-only", "-z", "--no-renames"]
    try:
        out = _git([*argv, f"refs/heads/{destination}...{head}", "--"], git_dir)
    except RefsUnavailable:
        return None
    return tuple(name for name in out.split("\0") if name)
