"""Git for unit tests of source providers: commands and commits with fixed identity and dates."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def commit_all(repo: Path, message: str, when: str) -> str:
    """Commit everything in the work tree at the date ``when``; the commit id."""
    git(repo, "add", "-A")
    subprocess.run(
        ["git", "commit", "-q", "-F", "-"],
        cwd=repo,
        env={**GIT_ENV, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when},
        input=message.encode(),
        check=True,
    )
    return git(repo, "rev-parse", "HEAD")
