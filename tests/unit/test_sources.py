"""CodeCommit, connection and S3 sources against real repositories and folder buckets."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from conveyor.actions.base import FailureType, JobResult, ProviderConfig
from conveyor.actions.sources import CodeCommitSource, ConnectionSource, S3Source
from conveyor.artifacts.archive import unpack
from conveyor.artifacts.local import LocalBuckets
from tests.support.gitrepo import GIT_ENV, commit_all, git
from tests.support.jobs import source_context

ARN = "arn:aws:codestar-connections:us-east-1:000000000000:connection/abc-123"


def _make_repo(path: Path) -> Path:
    """Two commits on ``main`` (README v1, v2 and an executable) and one on ``feature``."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("version 1\n")
    (path / "run.sh").write_text("#!/bin/sh\n")
    (path / "run.sh").chmod(0o755)
    commit_all(path, "First", "2024-01-02T03:04:05+00:00")
    (path / "README.md").write_text("version 2\n")
    commit_all(path, "Second", "2024-02-03T04:05:06+00:00")
    git(path, "checkout", "-q", "-b", "feature")
    (path / "feature.txt").write_text("feature\n")
    commit_all(path, "Feature", "2024-03-04T05:06:07+00:00")
    git(path, "checkout", "-q", "main")
    return path


def _emitted(tmp_path: Path, name: str = "emitted") -> Path:
    out = tmp_path / name
    unpack(tmp_path / "buckets" / "artifacts" / "pipe" / "SourceOut.zip", out)
    return out


def _ok(result: JobResult) -> JobResult:
    assert result.succeeded, result.message
    return result


def _failed(result: JobResult, failure_type: FailureType) -> str:
    assert (result.succeeded, result.failure_type) == (False, failure_type), result.message
    assert result.message is not None
    return result.message


def test_codecommit_reads_the_named_folder_of_the_home(tmp_path: Path) -> None:
    repo = _make_repo(tmp_path / "home" / "repositories" / "app")
    config = ProviderConfig(home=tmp_path / "home")
    context = source_context(tmp_path, {"RepositoryName": "app", "BranchName": "main"})
    result = _ok(CodeCommitSource(config).run(context))
    out = _emitted(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "run.sh"]
    assert (out / "README.md").read_text() == "version 2\n"
    assert os.access(out / "run.sh", os.X_OK)
    head = git(repo, "rev-parse", "main")
    assert result.output_variables == {
        "CommitId": head,
        "BranchName": "main",
        "CommitMessage": "Second",
        "AuthorDate": "2024-02-03T04:05:06Z",
        "CommitterDate": "2024-02-03T04:05:06Z",
        "RepositoryName": "app",
    }
    assert result.revision is not None and result.revision.revision_id == head


def test_codecommit_mapped_to_a_url_and_to_a_folder_relative_to_home(tmp_path: Path) -> None:
    repo = _make_repo(tmp_path / "elsewhere" / "app")
    home = tmp_path / "home"
    home.mkdir()
    config = ProviderConfig(
        home=home, repositories={"svc": f"file://{repo}", "rel": "../elsewhere/app"}
    )
    context = source_context(tmp_path, {"RepositoryName": "svc", "BranchName": "feature"})
    result = _ok(CodeCommitSource(config).run(context))
    assert result.output_variables["RepositoryName"] == "svc"
    assert (_emitted(tmp_path) / "feature.txt").read_text() == "feature\n"
    context = source_context(tmp_path, {"RepositoryName": "rel", "BranchName": "main"}, 2)
    assert _ok(CodeCommitSource(config).run(context)).output_variables["CommitMessage"] == "Second"


def test_codecommit_finds_a_bare_repository_named_with_dotgit(tmp_path: Path) -> None:
    repo = _make_repo(tmp_path / "app")
    bare = tmp_path / "home" / "repositories" / "app.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], env=GIT_ENV, check=True)
    context = source_context(tmp_path, {"RepositoryName": "app", "BranchName": "main"})
    result = _ok(CodeCommitSource(ProviderConfig(home=tmp_path / "home")).run(context))
    assert result.output_variables["RepositoryName"] == "app"


def test_codecommit_missing_repository_or_branch_is_revision_unavailable(tmp_path: Path) -> None:
    _make_repo(tmp_path / "home" / "repositories" / "app")
    config = ProviderConfig(home=tmp_path / "home")
    context = source_context(tmp_path, {"RepositoryName": "nope", "BranchName": "main"})
    message = _failed(CodeCommitSource(config).run(context), FailureType.REVISION_UNAVAILABLE)
    assert (
        message
        == f"Repository nope not found: there is no folder {config.repositories_folder / 'nope'}"
    )
    context = source_context(tmp_path, {"RepositoryName": "app", "BranchName": "gone"}, 2)
    message = _failed(CodeCommitSource(config).run(context), FailureType.REVISION_UNAVAILABLE)
    assert message.startswith("Branch gone not found in")


@pytest.mark.parametrize(
    "configuration",
    [
        {"BranchName": "main"},
        {"RepositoryName": "app"},
        {"RepositoryName": "../app", "BranchName": "main"},
        {"RepositoryName": "app.git", "BranchName": "main"},
        {"RepositoryName": "app", "BranchName": "main", "OutputArtifactFormat": "TAR"},
    ],
)
def test_codecommit_bad_configuration(tmp_path: Path, configuration: dict[str, str]) -> None:
    result = CodeCommitSource(ProviderConfig(home=tmp_path)).run(
        source_context(tmp_path, configuration)
    )
    _failed(result, FailureType.CONFIGURATION_ERROR)


def _connection(full_id: str = "acme/app", **more: str) -> dict[str, str]:
    return {"ConnectionArn": ARN, "FullRepositoryId": full_id, "BranchName": "main", **more}


def test_connection_mapped_to_a_folder_base(tmp_path: Path) -> None:
    repo = _make_repo(tmp_path / "forge" / "acme" / "app")
    config = ProviderConfig(home=tmp_path / "home", connections={ARN: str(tmp_path / "forge")})
    result = _ok(ConnectionSource(config).run(source_context(tmp_path, _connection())))
    assert not (_emitted(tmp_path) / ".git").exists()
    assert result.output_variables == {
        "CommitId": git(repo, "rev-parse", "main"),
        "BranchName": "main",
        "CommitMessage": "Second",
        "AuthorDate": "2024-02-03T04:05:06Z",
        "CommitterDate": "2024-02-03T04:05:06Z",
        "RepositoryName": "app",
        "ConnectionArn": ARN,
        "FullRepositoryName": "acme/app",
    }


def test_connection_mapped_to_a_url_base_and_unmapped(tmp_path: Path) -> None:
    _make_repo(tmp_path / "forge" / "acme" / "app")
    config = ProviderConfig(home=tmp_path / "home", connections={ARN: f"file://{tmp_path}/forge/"})
    context = source_context(tmp_path, _connection())
    _ok(ConnectionSource(config).run(context))
    assert isinstance(context.log, io.StringIO)
    assert f"of file://{tmp_path}/forge/acme/app\n" in context.log.getvalue()
    _make_repo(tmp_path / "home" / "repositories" / "acme" / "web")
    unmapped = ProviderConfig(home=tmp_path / "home")
    result = _ok(
        ConnectionSource(unmapped).run(source_context(tmp_path, _connection("acme/web"), 2))
    )
    assert result.output_variables["FullRepositoryName"] == "acme/web"


def test_clone_ref_emits_a_full_clone_with_its_git_folder(tmp_path: Path) -> None:
    repo = _make_repo(tmp_path / "forge" / "acme" / "app")
    first = git(repo, "rev-parse", "main~1")
    config = ProviderConfig(home=tmp_path / "home", connections={ARN: str(tmp_path / "forge")})
    context = source_context(tmp_path, _connection(OutputArtifactFormat="CODEBUILD_CLONE_REF"))
    result = _ok(ConnectionSource(config).run(context))
    out = _emitted(tmp_path)
    assert (out / ".git" / "HEAD").is_file()
    assert git(out, "log", "--format=%s") == "Second\nFirst"
    assert git(out, "rev-parse", "HEAD") == result.output_variables["CommitId"]
    assert git(out, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(out, "log", "-1", "--format=%s", "origin/feature") == "Feature"
    assert git(out, "status", "--porcelain") == ""
    context = source_context(
        tmp_path, _connection(OutputArtifactFormat="CODEBUILD_CLONE_REF"), 2, source_revision=first
    )
    assert _ok(ConnectionSource(config).run(context)).output_variables["CommitId"] == first
    assert (_emitted(tmp_path, "older") / "README.md").read_text() == "version 1\n"


def test_connection_missing_repository_is_revision_unavailable(tmp_path: Path) -> None:
    config = ProviderConfig(home=tmp_path / "home", connections={ARN: str(tmp_path / "forge")})
    message = _failed(
        ConnectionSource(config).run(source_context(tmp_path, _connection())),
        FailureType.REVISION_UNAVAILABLE,
    )
    assert (
        message
        == f"Repository acme/app not found: there is no folder {tmp_path / 'forge' / 'acme' / 'app'}"
    )


@pytest.mark.parametrize(
    "configuration",
    [
        _connection("app"),
        _connection("acme/../x"),
        _connection("-acme/app"),
        {**_connection(), "ConnectionArn": "arn:aws:s3:::bucket"},
        {"ConnectionArn": ARN, "FullRepositoryId": "acme/app"},
    ],
)
def test_connection_bad_configuration(tmp_path: Path, configuration: dict[str, str]) -> None:
    result = ConnectionSource(ProviderConfig(home=tmp_path)).run(
        source_context(tmp_path, configuration)
    )
    _failed(result, FailureType.CONFIGURATION_ERROR)


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def test_s3_source_emits_the_object_with_its_etag(tmp_path: Path) -> None:
    drop = _zip(tmp_path / "drop.zip", {"app.py": "print(1)\n"})
    LocalBuckets(tmp_path / "buckets").put("drops", "releases/app.zip", drop)
    context = source_context(tmp_path, {"S3Bucket": "drops", "S3ObjectKey": "releases/app.zip"})
    result = _ok(S3Source(ProviderConfig(home=tmp_path)).run(context))
    etag = hashlib.md5(drop.read_bytes()).hexdigest()
    assert result.output_variables == {"ETag": etag}
    assert result.revision is not None and result.revision.revision_id == etag
    emitted = tmp_path / "buckets" / "artifacts" / "pipe" / "SourceOut.zip"
    assert emitted.read_bytes() == drop.read_bytes()


def test_s3_source_revision_is_the_etag_again_or_another_key_when_allowed(tmp_path: Path) -> None:
    store = LocalBuckets(tmp_path / "buckets")
    store.put("drops", "app.zip", _zip(tmp_path / "one.zip", {"v": "1"}))
    store.put("drops", "other.zip", _zip(tmp_path / "two.zip", {"v": "2"}))
    etag = hashlib.md5((tmp_path / "one.zip").read_bytes()).hexdigest()
    config = ProviderConfig(home=tmp_path)
    runs = iter(range(10))

    def run(configuration: dict[str, str], revision: str) -> JobResult:
        context = source_context(tmp_path, configuration, next(runs), source_revision=revision)
        return S3Source(config).run(context)

    plain = {"S3Bucket": "drops", "S3ObjectKey": "app.zip"}
    assert _ok(run(plain, etag)).output_variables == {"ETag": etag}
    message = _failed(run(plain, "other.zip"), FailureType.REVISION_UNAVAILABLE)
    assert message == "No version other.zip of app.zip in bucket drops"
    allowed = {**plain, "AllowOverrideForS3ObjectKey": "true"}
    result = _ok(run(allowed, "other.zip"))
    assert (
        result.output_variables["ETag"]
        == hashlib.md5((tmp_path / "two.zip").read_bytes()).hexdigest()
    )


def test_s3_source_refuses_what_is_not_a_readable_zip_or_not_there(tmp_path: Path) -> None:
    store = LocalBuckets(tmp_path / "buckets")
    (tmp_path / "text").write_text("not a zip")
    store.put("drops", "app.zip", tmp_path / "text")
    config = ProviderConfig(home=tmp_path)
    context = source_context(tmp_path, {"S3Bucket": "drops", "S3ObjectKey": "app.zip"})
    message = _failed(S3Source(config).run(context), FailureType.JOB_FAILED)
    assert message.startswith("s3://drops/app.zip is not a readable zip")
    assert not (tmp_path / "buckets" / "artifacts").exists()
    context = source_context(tmp_path, {"S3Bucket": "drops", "S3ObjectKey": "gone.zip"}, 2)
    message = _failed(S3Source(config).run(context), FailureType.REVISION_UNAVAILABLE)
    assert message == "No object gone.zip in bucket drops"


def test_s3_source_refuses_a_zip_bigger_than_allowed(tmp_path: Path) -> None:
    LocalBuckets(tmp_path / "buckets").put(
        "drops", "a.zip", _zip(tmp_path / "a.zip", {"big": "x" * 5000})
    )
    config = ProviderConfig(home=tmp_path, max_artifact_bytes=1000)
    context = source_context(tmp_path, {"S3Bucket": "drops", "S3ObjectKey": "a.zip"})
    assert "over 1000" in _failed(S3Source(config).run(context), FailureType.JOB_FAILED)


@pytest.mark.parametrize(
    "configuration",
    [
        {"S3ObjectKey": "a.zip"},
        {"S3Bucket": "drops"},
        {"S3Bucket": "drops", "S3ObjectKey": "a.zip", "AllowOverrideForS3ObjectKey": "yes"},
    ],
)
def test_s3_source_bad_configuration(tmp_path: Path, configuration: dict[str, str]) -> None:
    result = S3Source(ProviderConfig(home=tmp_path)).run(source_context(tmp_path, configuration))
    _failed(result, FailureType.CONFIGURATION_ERROR)
