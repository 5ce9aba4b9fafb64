"""The ``Deploy/AWS/S3/1`` provider: write the input artifact to a bucket, unpacked or whole.

With ``Extract`` true the artifact is unpacked into the workspace first (every entry checked,
the unpacked size bounded by ``max_artifact_bytes``, so a hostile zip fails before anything is
written), then each file becomes the object ``<ObjectKey>/<path>`` (just ``<path>`` without an
``ObjectKey``), its content type guessed from its name; a symbolic link to a file is stored as
that file, while links to folders and empty folders are skipped, as S3 has neither. With
``Extract`` false the zip is stored whole as ``ObjectKey``. Objects already in the bucket stay.
``CannedACL`` and ``CacheControl`` go with every object to stores that keep them (S3); folder
buckets ignore them and keep file modes instead. ``KMSEncryptionKeyARN`` is accepted and
ignored: encryption at rest is the store's business.
"""

from __future__ import annotations

import os
from pathlib import Path

from conveyor.actions.base import FailureType, JobContext, JobResult, ProviderConfig
from conveyor.actions.inputs import unpack_input
from conveyor.artifacts import ArtifactError
from conveyor.artifacts.unpacked import Unpacked

__all__ = ["S3Deploy"]

_CANNED_ACLS = frozenset(
    {
        "private",
        "public-read",
        "public-read-write",
        "authenticated-read",
        "aws-exec-read",
        "bucket-owner-read",
        "bucket-owner-full-control",
        "log-delivery-write",
    }
)
_ZIP = "application/zip"


class _Misconfigured(Exception):
    pass


class _Stopped(Exception):
    pass


def _files(root: Path) -> list[tuple[str, Path]]:
    """Every file under ``root`` as (``/``-separated relative path, file to read), in order."""
    found: list[tuple[str, Path]] = []
    for parent, folders, names in os.walk(root):
        folders.sort()
        for name in sorted(names):
            path = Path(parent, name)
            if path.is_file():  # follows links; unpack left none pointing outside
                found.append((path.relative_to(root).as_posix(), path.resolve()))
    return sorted(found)


class S3Deploy:
    """Deploys one input artifact to ``BucketName``, extracted under a prefix or as one zip."""

    def __init__(self, config: ProviderConfig, unpacked: Unpacked | None = None) -> None:
        self.config = config
        self.unpacked = unpacked

    def run(self, context: JobContext) -> JobResult:
        try:
            return self._run(context)
        except _Misconfigured as error:
            return JobResult.failed(str(error), FailureType.CONFIGURATION_ERROR)
        except _Stopped as error:
            return JobResult.failed(str(error))
        except ArtifactError as error:
            return JobResult.failed(str(error))
        except OSError as error:
            return JobResult.failed(f"S3 deploy failed: {error}")

    def _run(self, context: JobContext) -> JobResult:
        settings = context.configuration
        bucket = settings.get("BucketName", "").strip()
        extract = settings.get("Extract", "").strip().lower()
        object_key = settings.get("ObjectKey", "").strip()
        acl = settings.get("CannedACL", "").strip() or None
        cache_control = settings.get("CacheControl", "").strip() or None
        if not bucket:
            raise _Misconfigured("The configuration has no BucketName")
        if extract not in ("true", "false"):
            raise _Misconfigured(f"Extract must be true or false, not {extract!r}")
        if extract == "false" and not object_key:
            raise _Misconfigured("ObjectKey is required when Extract is false")
        if acl is not None and acl not in _CANNED_ACLS:
            raise _Misconfigured(f"Unknown CannedACL {acl!r}")
        if len(context.input_artifacts) != 1:
            raise _Misconfigured("An S3 deploy action has exactly one input artifact")
        artifact = context.input_artifacts[0]
        archive = context.workspace / "artifact.zip"
        store = context.artifacts
        if extract == "false":
            context.artifacts.get(artifact.bucket, artifact.key, archive)
            store.put(
                bucket, object_key, archive, content_type=_ZIP, cache_control=cache_control, acl=acl
            )
            context.log.write(f"Stored {artifact.name} as s3://{bucket}/{object_key}\n")
            return JobResult(
                succeeded=True, summary=f"Deployed 1 file to s3://{bucket}/{object_key}"
            )
        root = context.workspace / "files"
        unpack_input(
            context,
            artifact,
            root,
            scratch=archive,
            max_bytes=self.config.max_artifact_bytes,
            unpacked=self.unpacked,
        )
        import mimetypes  # here: only deploys need it

        prefix = object_key.strip("/")
        files = _files(root)
        for done, (name, path) in enumerate(files):
            if context.cancelled.is_set():
                raise _Stopped(f"Stopped after deploying {done} of {len(files)} files")
            key = f"{prefix}/{name}" if prefix else name
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            store.put(bucket, key, path, content_type=kind, cache_control=cache_control, acl=acl)
            context.log.write(f"Stored s3://{bucket}/{key}\n")
        where = f"s3://{bucket}/{prefix}"
        plural = "" if len(files) == 1 else "s"
        return JobResult(succeeded=True, summary=f"Deployed {len(files)} file{plural} to {where}")
