"""Source providers on the AWS model: ``CodeCommit``, ``CodeStarSourceConnection``, ``S3``,
and GitHub version 1 (`GitHubSource`, found as a connection's repository is).

The Git sources only find a repository and hand it to the Git source's machinery
(`emit_commit`). A CodeCommit ``RepositoryName`` is looked up in the installation's
``repositories`` map (a git URL, or a folder: relative ones are under the Conveyor home), else
it is the folder ``repositories/<name>`` (or ``<name>.git``) of the home. A connection's
``ConnectionArn`` is looked up in ``connections``: a folder base holds
``<base>/<FullRepositoryId>`` (or with ``.git``); a URL base is joined with ``/`` to
``FullRepositoryId`` (directly when it ends with ``/`` or ``:``, as in ``git@host:``), and
nothing is added, since Git hosts serve ``owner/repo`` with or without ``.git``. Unmapped
connections use ``repositories/<FullRepositoryId>`` of the home. CODEBUILD_CLONE_REF emits a
full clone with its ``.git``. The S3 source emits an object as it is once it is known to be a
readable zip. A start-time source revision (JobContext has one string) is taken, in order, as:
a version id of ``S3ObjectKey`` (when the object has versions or is gone), the current ETag of
an unversioned object (a retry that must see the same object), then, only with
``AllowOverrideForS3ObjectKey``, another object key; otherwise the revision is unavailable.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

from conveyor.actions.base import FailureType, JobContext, JobResult, ProviderConfig, Revision
from conveyor.actions.git import GitRequest, emit_commit, local_repository
from conveyor.artifacts import ArtifactError, ArtifactStore, ObjectInfo
from conveyor.artifacts.unpacked import Unpacked

__all__ = [
    "CodeCommitSource",
    "ConnectionSource",
    "GitHubSource",
    "S3Source",
    "SourceUnavailable",
]

_CLONE_REF = "CODEBUILD_CLONE_REF"
_FORMATS = ("CODE_ZIP", _CLONE_REF)
_CODECOMMIT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}\Z")
_REPOSITORY_PART = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]*\Z")
_CONNECTION_ARN = re.compile(
    r"arn:[a-z-]+:(?:codestar-connections|codeconnections):[a-z0-9-]*:\d*:connection/\S+\Z"
)
_FETCH_ATTEMPTS = 3
_MISCONFIGURED = FailureType.CONFIGURATION_ERROR
_UNAVAILABLE = FailureType.REVISION_UNAVAILABLE


class SourceUnavailable(Exception):
    """A source that cannot be read as configured, with the failure type that reports it."""

    def __init__(self, message: str, failure_type: FailureType = FailureType.JOB_FAILED) -> None:
        super().__init__(message)
        self.failure_type = failure_type


def _required(configuration: Mapping[str, str], name: str) -> str:
    value = configuration.get(name, "").strip()
    if not value:
        raise SourceUnavailable(f"The configuration has no {name}", _MISCONFIGURED)
    return value


def _flag(context: JobContext, name: str) -> bool:
    value = context.configuration.get(name, "").strip().lower() or "false"
    if value not in ("true", "false"):
        raise SourceUnavailable(f"{name} must be true or false, not {value!r}", _MISCONFIGURED)
    return value == "true"


def _clone(configuration: Mapping[str, str]) -> bool:
    value = configuration.get("OutputArtifactFormat", "").strip() or "CODE_ZIP"
    if value not in _FORMATS:
        raise SourceUnavailable(
            f"OutputArtifactFormat must be CODE_ZIP or {_CLONE_REF}", _MISCONFIGURED
        )
    return value == _CLONE_REF


def _located(config: ProviderConfig, value: str) -> str:
    """A configured location as git takes it: URLs as they are, relative folders in home."""
    if local_repository(value) is None:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else config.home / path)


def _folder(path: Path, what: str) -> str:
    """The repository folder ``path``, or ``path.git`` when only that exists."""
    for candidate in (path, path.with_name(f"{path.name}.git")):
        if candidate.is_dir():
            return str(candidate)
    raise SourceUnavailable(f"{what} not found: there is no folder {path}", _UNAVAILABLE)


class _GitHosted:
    """A source whose repository a `GitRequest` names, emitted by the Git source's machinery;
    ``unpacked``: where the commit's checkout is kept for the actions that read it."""

    def __init__(self, config: ProviderConfig, unpacked: Unpacked | None = None) -> None:
        self.config = config
        self.unpacked = unpacked

    def run(self, context: JobContext) -> JobResult:
        try:
            request = self.request(context.configuration)
        except SourceUnavailable as failure:
            return JobResult.failed(str(failure), failure.failure_type)
        return emit_commit(context, request, self.unpacked)

    def request(self, configuration: Mapping[str, str]) -> GitRequest:
        """Where the configured repository is; raises `SourceUnavailable` saying why not."""
        raise NotImplementedError


class CodeCommitSource(_GitHosted):
    """``Source/AWS/CodeCommit/1``: a branch of a repository known by name."""

    def request(self, configuration: Mapping[str, str]) -> GitRequest:
        """Where the configured repository is; raises `SourceUnavailable` saying why not."""
        name = _required(configuration, "RepositoryName")
        branch, clone = _required(configuration, "BranchName"), _clone(configuration)
        if not _CODECOMMIT_NAME.match(name) or name in (".", "..") or name.endswith(".git"):
            raise SourceUnavailable(f"Invalid RepositoryName {name!r}", _MISCONFIGURED)
        mapped = self.config.repositories.get(name)
        what = f"Repository {name}"
        if mapped:
            url = _located(self.config, mapped)
            if local_repository(url) is not None:
                url = _folder(Path(url), what)
        else:
            url = _folder(self.config.repositories_folder / name, what)
        return GitRequest(url, branch, repository_name=name, clone=clone)


class ConnectionSource(_GitHosted):
    """``Source/AWS/CodeStarSourceConnection/1``: a branch of ``owner/repo`` on a Git host."""

    def request(self, configuration: Mapping[str, str]) -> GitRequest:
        """Where the configured repository is; raises `SourceUnavailable` saying why not."""
        arn = _required(configuration, "ConnectionArn")
        full_id = _required(configuration, "FullRepositoryId")
        branch, clone = _required(configuration, "BranchName"), _clone(configuration)
        if not _CONNECTION_ARN.match(arn):
            raise SourceUnavailable(f"Invalid ConnectionArn {arn!r}", _MISCONFIGURED)
        parts = full_id.split("/")
        if len(parts) < 2 or not all(
            _REPOSITORY_PART.match(part) and part not in (".", "..") for part in parts
        ):
            raise SourceUnavailable(
                f"Invalid FullRepositoryId {full_id!r}: use owner/repo", _MISCONFIGURED
            )
        what = f"Repository {full_id}"
        base = self.config.connections.get(arn)
        if not base:
            url = _folder(self.config.repositories_folder.joinpath(*parts), what)
        elif local_repository(located := _located(self.config, base)) is not None:
            url = _folder(Path(located).joinpath(*parts), what)
        else:
            url = located + full_id if located.endswith(("/", ":")) else f"{located}/{full_id}"
        variables = {"ConnectionArn": arn, "FullRepositoryName": full_id}
        return GitRequest(url, branch, parts[-1], clone, variables)


class GitHubSource(_GitHosted):
    """``Source/ThirdParty/GitHub/1`` (GitHub version 1): a branch of ``Owner/Repo``.

    The repository is found as a connection's would be, with ``Owner/Repo`` as the full
    repository id: the ``repositories`` entry of that name, else the ``connections`` entry
    ``GitHub`` (a base URL or folder), else ``repositories/Owner/Repo`` of the home. The
    ``OAuthToken`` is never used here: git reaches the repository with its own credentials.
    """

    def request(self, configuration: Mapping[str, str]) -> GitRequest:
        """Where the configured repository is; raises `SourceUnavailable` saying why not."""
        owner, repo = _required(configuration, "Owner"), _required(configuration, "Repo")
        branch = _required(configuration, "Branch")
        for part in (owner, repo):
            if not _REPOSITORY_PART.match(part) or part in (".", ".."):
                raise SourceUnavailable(f"Invalid repository {owner}/{repo}", _MISCONFIGURED)
        full_id = f"{owner}/{repo}"
        what = f"Repository {full_id}"
        mapped = self.config.repositories.get(full_id)
        base = self.config.connections.get("GitHub")
        if mapped:
            url = _located(self.config, mapped)
            if local_repository(url) is not None:
                url = _folder(Path(url), what)
        elif not base:
            url = _folder(self.config.repositories_folder / owner / repo, what)
        elif local_repository(located := _located(self.config, base)) is not None:
            url = _folder(Path(located) / owner / repo, what)
        else:
            url = located + full_id if located.endswith(("/", ":")) else f"{located}/{full_id}"
        return GitRequest(url, branch, repo, variables={"FullRepositoryName": full_id})


class S3Source:
    """``Source/AWS/S3/1``: a zip object of a bucket, emitted as it is."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    def run(self, context: JobContext) -> JobResult:
        try:
            return self._run(context)
        except SourceUnavailable as failure:
            return JobResult.failed(str(failure), failure.failure_type)
        except ArtifactError as error:
            return JobResult.failed(str(error))

    def _run(self, context: JobContext) -> JobResult:
        config = context.configuration
        bucket, key = _required(config, "S3Bucket"), _required(config, "S3ObjectKey")
        allow_key = _flag(context, "AllowOverrideForS3ObjectKey")
        if len(context.output_artifacts) != 1:
            raise SourceUnavailable(
                "An S3 source action has exactly one output artifact", _MISCONFIGURED
            )
        store, wanted = context.artifacts, context.source_revision
        key, info = _choose(store, bucket, key, wanted, allow_key)
        where = f"s3://{bucket}/{key}"
        context.log.write(f"Reading {where}" + (f" (revision {wanted})\n" if wanted else "\n"))
        archive = context.workspace / "source.zip"
        info = _fetch(store, bucket, key, info, archive, pinned=wanted is not None)
        count = _check_zip(archive, where, self.config.max_artifact_bytes)
        output = context.output_artifacts[0]
        store.put(output.bucket, output.key, archive)
        revision = info.version_id or info.etag
        variables = {"ETag": info.etag}
        if info.version_id:
            variables["VersionId"] = info.version_id
        context.log.write(f"Emitted {where} revision {revision}: {count} entries\n")
        return JobResult(
            succeeded=True,
            summary=f"{where} ({count} entries)",
            output_variables=variables,
            revision=Revision(revision, revision, info.last_modified, key),
            external_execution_id=revision,
        )


def _choose(
    store: ArtifactStore, bucket: str, key: str, wanted: str | None, allow_key: bool
) -> tuple[str, ObjectInfo]:
    """The object key and version to emit, by the rule of the module's docstring."""
    current = store.stat(bucket, key)
    if wanted is None:
        if current is None:
            raise SourceUnavailable(f"No object {key} in bucket {bucket}", _UNAVAILABLE)
        return key, current
    if current is None or current.version_id is not None:
        version = store.stat(bucket, key, version_id=wanted)
        if version is not None:
            return key, version
    elif wanted == current.etag:
        return key, current
    if allow_key:
        other = store.stat(bucket, wanted)
        if other is not None:
            return wanted, other
    kinds = "version or object key" if allow_key else "version"
    raise SourceUnavailable(f"No {kinds} {wanted} of {key} in bucket {bucket}", _UNAVAILABLE)


def _fetch(
    store: ArtifactStore, bucket: str, key: str, info: ObjectInfo, archive: Path, *, pinned: bool
) -> ObjectInfo:
    """Download the object; without versions, until what came is what was looked at."""
    for _ in range(_FETCH_ATTEMPTS):
        store.get(bucket, key, archive, version_id=info.version_id)
        if info.version_id is not None:
            return info
        after = store.stat(bucket, key)
        if after is not None and after.etag == info.etag:
            return info
        if after is None or pinned:
            raise SourceUnavailable(
                f"Object {key} of bucket {bucket} changed while read", _UNAVAILABLE
            )
        info = after
    raise SourceUnavailable(f"Object {key} of bucket {bucket} kept changing while read")


def _check_zip(archive: Path, where: str, max_bytes: int | None) -> int:
    """The number of entries of the zip, once it is known to be whole and not too big."""
    try:
        with zipfile.ZipFile(archive) as source:
            entries = source.infolist()
            size = sum(entry.file_size for entry in entries)
            if max_bytes is not None and size > max_bytes:
                raise SourceUnavailable(f"{where} unpacks to {size} bytes, over {max_bytes}")
            damaged = source.testzip()
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, EOFError) as error:
        raise SourceUnavailable(f"{where} is not a readable zip: {error}") from error
    if damaged is not None:
        raise SourceUnavailable(f"{where} is not a readable zip: entry {damaged} is damaged")
    return len(entries)
