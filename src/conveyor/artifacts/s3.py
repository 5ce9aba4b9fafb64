"""Buckets on an S3-compatible endpoint (AWS S3, MinIO, Ceph...): the shared `ArtifactStore`.

`S3Buckets` talks to the endpoint with boto3, credentials found the usual way (environment,
``~/.aws``, instance role) unless a session is given. Files go up and down with boto3's managed
transfers (multipart for large files, written to a temporary name then renamed on download),
except those up to `ONE_REQUEST` bytes: one PutObject, and one GetObject when the caller knows
the object's size. A managed transfer's threads and futures, and the HeadObject it starts a
download with, cost a few milliseconds more than the request itself on a nearby endpoint, and
most artifacts are small.
Path-style addressing is the default, as self-hosted endpoints seldom have per-bucket DNS
names. With ``create_buckets`` a missing bucket is made on the first `put`, as `LocalBuckets`
makes folders. ETags lose their quotes; the version id S3 gives an object written while
versioning was suspended (``null``) is reported as no version. Every failure of the endpoint
becomes an `ArtifactError` naming the bucket and key.
"""

from __future__ import annotations

import builtins
import os
import secrets
from pathlib import Path
from typing import Any, Literal

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from conveyor.artifacts import ArtifactError, ObjectInfo

__all__ = ["S3Buckets"]

_MISSING = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound"})
# S3 answers 400 for a version id it cannot parse: there is no such version either.
_NO_VERSION = _MISSING | {"400", "InvalidArgument"}
_CREATABLE = frozenset({"NoSuchBucket"})
# The largest object sent or fetched in one request (boto3's own multipart threshold).
ONE_REQUEST = 8 * 1024 * 1024
# Bytes read at a time from a fetched object's body.
_CHUNK = 1024 * 1024


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _version(value: object) -> str | None:
    return value if isinstance(value, str) and value and value != "null" else None


class S3Buckets:
    """An `ArtifactStore` on the S3 API at ``endpoint_url`` (None: AWS itself)."""

    def __init__(
        self,
        endpoint_url: str | None,
        region: str = "us-east-1",
        *,
        session: boto3.session.Session | None = None,
        addressing_style: Literal["auto", "virtual", "path"] = "path",
        create_buckets: bool = True,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.create_buckets = create_buckets
        config = Config(
            region_name=region,
            s3={"addressing_style": addressing_style},
            retries={"max_attempts": 5, "mode": "standard"},
        )
        maker = session or boto3.session.Session()
        self.client: Any = maker.client("s3", endpoint_url=endpoint_url, config=config)

    def put(
        self,
        bucket: str,
        key: str,
        source: Path,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        acl: str | None = None,
    ) -> None:
        extra = {
            name: value
            for name, value in (
                ("ContentType", content_type),
                ("CacheControl", cache_control),
                ("ACL", acl),
            )
            if value
        }
        try:
            try:
                self._send(bucket, key, source, extra)
            except (Boto3Error, ClientError) as error:
                if not (self.create_buckets and "NoSuchBucket" in str(error)):
                    raise
                self._create(bucket)
                self._send(bucket, key, source, extra)
        except (Boto3Error, BotoCoreError, ClientError, OSError) as error:
            raise ArtifactError(f"Cannot store {key} in bucket {bucket}: {error}") from error

    def _send(self, bucket: str, key: str, source: Path, extra: dict[str, str]) -> None:
        if source.stat().st_size > ONE_REQUEST:
            self.client.upload_file(str(source), bucket, key, ExtraArgs=extra or None)
            return
        with open(source, "rb") as body:
            self.client.put_object(Bucket=bucket, Key=key, Body=body, **extra)

    def _create(self, bucket: str) -> None:
        where = {} if self.region == "us-east-1" else {"LocationConstraint": self.region}
        try:
            if where:
                self.client.create_bucket(Bucket=bucket, CreateBucketConfiguration=where)
            else:
                self.client.create_bucket(Bucket=bucket)
        except ClientError as error:
            if _code(error) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def get(
        self,
        bucket: str,
        key: str,
        destination: Path,
        *,
        version_id: str | None = None,
        size: int | None = None,
    ) -> None:
        """Fetch the object into ``destination``; ``size``, when the caller knows it, lets
        an object of at most `ONE_REQUEST` bytes come in one GetObject."""
        extra = {"VersionId": version_id} if version_id else None
        try:
            if size is not None and size <= ONE_REQUEST:
                self._fetch(bucket, key, destination, extra or {})
            else:
                self.client.download_file(bucket, key, str(destination), ExtraArgs=extra)
        except ClientError as error:
            what = f"version {version_id} of {key}" if version_id else key
            if _code(error) in (_NO_VERSION if version_id else _MISSING):
                raise ArtifactError(f"No object {what} in bucket {bucket}") from error
            raise ArtifactError(f"Cannot fetch {what} from bucket {bucket}: {error}") from error
        except (Boto3Error, BotoCoreError, OSError) as error:
            raise ArtifactError(f"Cannot fetch {key} from bucket {bucket}: {error}") from error

    def _fetch(self, bucket: str, key: str, destination: Path, extra: dict[str, str]) -> None:
        """One GetObject, its body written to a temporary name then renamed, as a managed
        download does: ``destination`` is never seen half written."""
        body = self.client.get_object(Bucket=bucket, Key=key, **extra)["Body"]
        partial = destination.with_name(f"{destination.name}.{secrets.token_hex(4)}.part")
        try:
            with open(partial, "wb") as out:
                for chunk in body.iter_chunks(_CHUNK):
                    out.write(chunk)
            os.replace(partial, destination)
        finally:
            body.close()
            partial.unlink(missing_ok=True)

    def exists(self, bucket: str, key: str) -> bool:
        return self.stat(bucket, key) is not None

    def stat(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo | None:
        arguments = {"Bucket": bucket, "Key": key}
        if version_id:
            arguments["VersionId"] = version_id
        try:
            head = self.client.head_object(**arguments)
        except ClientError as error:
            if _code(error) in (_NO_VERSION if version_id else _MISSING):
                return None
            raise ArtifactError(f"Cannot read {key} in bucket {bucket}: {error}") from error
        except BotoCoreError as error:
            raise ArtifactError(f"Cannot read {key} in bucket {bucket}: {error}") from error
        return ObjectInfo(
            size=int(head.get("ContentLength", 0)),
            etag=str(head.get("ETag", "")).strip('"'),
            version_id=_version(head.get("VersionId")),
            last_modified=head["LastModified"].timestamp() if "LastModified" in head else 0.0,
        )

    def list(self, bucket: str, prefix: str = "") -> builtins.list[str]:
        keys: builtins.list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                keys.extend(str(item["Key"]) for item in page.get("Contents", ()))
        except ClientError as error:
            if _code(error) in _CREATABLE:
                return []
            raise ArtifactError(f"Cannot list bucket {bucket}: {error}") from error
        except BotoCoreError as error:
            raise ArtifactError(f"Cannot list bucket {bucket}: {error}") from error
        return sorted(keys)
