"""Where a watched source is: a git folder on this machine (watched), a remote git URL
(polled), a connection fed by its host's deliveries, or an S3 object (polled).

Repositories are found exactly as the source providers find them when they run
(`conveyor.actions.sources`), so detection follows the repository the action will read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote, urlsplit

from conveyor.actions.base import FailureType, ProviderConfig
from conveyor.actions.git import git_folder, local_repository, without_password
from conveyor.actions.sources import CodeCommitSource, ConnectionSource, SourceUnavailable
from conveyor.config import Connection
from conveyor.domain.triggers import Watch

__all__ = ["Kind", "Location", "SourceUnavailable", "locate", "without_password"]


class Kind(StrEnum):
    LOCAL = "local"
    REMOTE = "remote"
    HOOKED = "hooked"
    S3 = "s3"


@dataclass(frozen=True, slots=True)
class Location:
    kind: Kind
    # The git URL or folder; for S3, ``s3://bucket/key``.
    url: str
    git_dir: str | None = None
    bucket: str | None = None
    key: str | None = None

    @property
    def shown(self) -> str:
        return without_password(self.url)


def _git_location(url: str, hooked: bool = False) -> Location:
    if hooked:
        return Location(Kind.HOOKED, url)
    if url.startswith("file://"):  # on this machine too: watched, not polled
        url = unquote(urlsplit(url).path)
    path = local_repository(url)
    if path is None:
        return Location(Kind.REMOTE, url)
    if not os.path.isdir(path):
        raise SourceUnavailable(f"There is no folder {path}", FailureType.REVISION_UNAVAILABLE)
    git_dir = git_folder(path)
    if git_dir is None:
        raise SourceUnavailable(f"{path} is not a Git repository")
    return Location(Kind.LOCAL, path, os.path.realpath(git_dir))


def locate(watch: Watch, config: ProviderConfig, connections: dict[str, Connection]) -> Location:
    """The watch's source; raises `SourceUnavailable` saying why it cannot be found."""
    configuration = watch.configuration
    if watch.provider == "S3":
        bucket = configuration.get("S3Bucket", "").strip()
        key = configuration.get("S3ObjectKey", "").strip()
        if not bucket or not key:
            raise SourceUnavailable("The configuration has no S3Bucket or S3ObjectKey")
        return Location(Kind.S3, f"s3://{bucket}/{key}", bucket=bucket, key=key)
    if watch.provider == "Git":
        url = configuration.get("RepositoryUrl", "").strip()
        if not url:
            raise SourceUnavailable("The configuration has no RepositoryUrl")
        return _git_location(url)
    if watch.provider == "CodeCommit":
        return _git_location(CodeCommitSource(config).request(configuration).url)
    url = ConnectionSource(config).request(configuration).url
    connection = connections.get(configuration.get("ConnectionArn", "").strip())
    return _git_location(url, hooked=connection is not None and connection.host is not None)
