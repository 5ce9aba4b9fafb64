"""A build's source, fetched as one zip artifact the CodeBuild provider unpacks.

The project's ``source`` (with StartBuild's overrides) says where it is:

- ``NO_SOURCE``: none; the buildspec is inline.
- ``S3``: ``location`` is ``bucket/key`` of a zip in the installation's artifact store.
- ``CODECOMMIT``: a repository of the installation, by the name ending ``location``
  (``https://git-codecommit.<region>.amazonaws.com/v1/repos/<name>``, or just the name).
- ``GITHUB``, ``GITHUB_ENTERPRISE``, ``GITLAB``, ``GITLAB_SELF_MANAGED``, ``BITBUCKET``: with
  ``auth`` of type ``CODECONNECTIONS`` (or ``CODESTAR_CONNECTIONS``), the connection's
  ``owner/repo``; otherwise ``location`` itself: a git URL, a git repository folder, or a
  plain folder (zipped as it is).

``sourceVersion`` is a branch (``main``, ``refs/heads/main``) or a full commit id; without
one, the repository's default branch is built.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from conveyor.actions.base import ArtifactLocation, JobContext, OutputArtifact, ProviderConfig
from conveyor.actions.git import GitSource, git_folder
from conveyor.actions.sources import CodeCommitSource, ConnectionSource
from conveyor.artifacts import ArtifactError
from conveyor.artifacts.archive import pack

__all__ = ["BUCKET", "SourceError", "fetch_source"]

BUCKET = "conveyor-builds"
_COMMIT = re.compile(r"[0-9a-f]{40}\Z")
_CONNECTIONS = frozenset({"CODECONNECTIONS", "CODESTAR_CONNECTIONS"})
_GIT_TYPES = frozenset(
    {"GITHUB", "GITHUB_ENTERPRISE", "GITLAB", "GITLAB_SELF_MANAGED", "BITBUCKET"}
)


class SourceError(Exception):
    """The source cannot be fetched; the message says why."""


def _version(source_version: str | None) -> tuple[str | None, str | None]:
    """(branch, commit) that ``sourceVersion`` names."""
    if not source_version:
        return None, None
    text = source_version.strip()
    if _COMMIT.match(text):
        return None, text
    if text.startswith("refs/heads/"):
        return text.removeprefix("refs/heads/"), None
    if text.startswith(("pr/", "refs/pull/", "refs/tags/")):
        raise SourceError(f"sourceVersion {text}: only branches and full commit ids are built")
    return text, None


def default_branch(url: str) -> str:
    """The branch a repository's HEAD names ("main" when it cannot be told)."""
    try:
        done = subprocess.run(
            ["git", "ls-remote", "--symref", "--", url, "HEAD"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return "main"
    for line in done.stdout.splitlines():
        if line.startswith("ref: refs/heads/"):
            return line.split("\t")[0].removeprefix("ref: refs/heads/")
    return "main"


def _full_id(location: str) -> str:
    path = urlsplit(location).path if "://" in location else location.partition(":")[2]
    return path.strip("/").removesuffix(".git")


def fetch_source(
    source: Mapping[str, Any],
    source_version: str | None,
    config: ProviderConfig,
    context: JobContext,
) -> tuple[ArtifactLocation | None, str | None]:
    """The source as an artifact (None: NO_SOURCE) and the commit it resolved to, if any.
    ``context`` is a source job's: its one output artifact is where the zip goes."""
    kind = str(source.get("type") or "NO_SOURCE")
    location = str(source.get("location") or "").strip()
    output = context.output_artifacts[0]
    if kind == "NO_SOURCE":
        return None, None
    if kind == "S3":
        bucket, _, key = location.partition("/")
        if not bucket or not key:
            raise SourceError(f"source.location {location!r}: write it as bucket/key")
        if not context.artifacts.exists(bucket, key):
            raise SourceError(f"source.location {location}: no such object")
        return ArtifactLocation("source", bucket, key, source_version), None
    branch, commit = _version(source_version)
    auth = source.get("auth") or {}
    configuration: dict[str, str]
    if kind == "CODECOMMIT":
        name = location.rstrip("/").rpartition("/")[2].removesuffix(".git")
        provider: Any = CodeCommitSource(config)
        found = provider.request({"RepositoryName": name, "BranchName": branch or "x"}).url
        configuration = {"RepositoryName": name, "BranchName": branch or default_branch(found)}
    elif kind in _GIT_TYPES and auth.get("type") in _CONNECTIONS and auth.get("resource"):
        provider = ConnectionSource(config)
        full_id = _full_id(location)
        configuration = {"ConnectionArn": str(auth["resource"]), "FullRepositoryId": full_id}
        found = provider.request({**configuration, "BranchName": branch or "x"}).url
        configuration["BranchName"] = branch or default_branch(found)
    elif kind in _GIT_TYPES:
        folder = Path(location.removeprefix("file://"))
        if location and folder.is_dir() and git_folder(str(folder)) is None:
            if source_version:
                raise SourceError(
                    f"sourceVersion {source_version}: {location} is a folder, not a repository"
                )
            context.log.write(f"Packing the folder {folder}\n")
            archive = context.workspace / "source.zip"
            try:
                pack(folder, archive)
                context.artifacts.put(output.bucket, output.key, archive)
            except (OSError, ArtifactError) as error:
                raise SourceError(f"cannot pack {folder}: {error}") from error
            return ArtifactLocation("source", output.bucket, output.key), None
        if not location:
            raise SourceError(f"source.location is required for source type {kind}")
        provider = GitSource()
        configuration = {
            "RepositoryUrl": location,
            "BranchName": branch or default_branch(location),
        }
    else:
        raise SourceError(f"source type {kind} cannot be built here")
    job = replace(context, configuration=configuration, source_revision=commit)
    result = provider.run(job)
    if not result.succeeded:
        raise SourceError(result.message or "the source could not be fetched")
    revision = result.revision.revision_id if result.revision else None
    return ArtifactLocation("source", output.bucket, output.key, revision), revision


def source_context(base: JobContext, build_uuid: str) -> JobContext:
    """A source job's context: the build's, with one output artifact for the source zip."""
    output = OutputArtifact("source", BUCKET, f"{build_uuid}/source.zip")
    return replace(base, output_artifacts=(output,))
