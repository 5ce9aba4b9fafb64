"""``/_conveyor/s3/<bucket>/<key>``: the server's local buckets over the S3 REST subset that job
workers use, path-style: GetObject (with ranges), HeadObject, PutObject, DeleteObject,
ListObjectsV2, and multipart upload (CreateMultipartUpload, UploadPart,
CompleteMultipartUpload, AbortMultipartUpload, the uploads kept by
`conveyor.api.s3multipart`), so boto3's managed transfers (``download_file``,
``upload_file``) work for artifacts of any size.

Every request is signed (SigV4) with a job's ``artifactCredentials``
(`conveyor.auth.artifactkeys`): a job reads its input and output objects and writes its
output objects, until its deadline and while it is active; anything else is S3's
``AccessDenied``. So the endpoint may answer any address: a worker on another machine reaches
it as it reaches the API. A body is checked against the SHA-256 it was signed with and, when
the client sends one, its ``x-amz-checksum-crc32``/``-sha1``/``-sha256``. Errors are S3's XML
errors.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import zlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from conveyor.api.s3multipart import MAX_COMPLETE, Uploads, part_number
from conveyor.artifacts import ArtifactError, ObjectInfo
from conveyor.artifacts.local import LocalBuckets
from conveyor.auth.artifactkeys import ArtifactDenied, ArtifactKeys, Grant
from conveyor.auth.sigv4 import Received
from conveyor.store.errors import StoreUnavailable

log = logging.getLogger("conveyor.api")
PREFIX = "/_conveyor/s3"
# S3's largest PutObject.
MAX_OBJECT = 5 * 1024**3
_UNSIGNED = "UNSIGNED-PAYLOAD"
_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
# Whether the job a grant is for still runs (dispatched or in progress).
Active = Callable[[str], bool]


def _error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
    )
    return Response(body, status, media_type="application/xml")


def _xml(root: str, fields: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{_XMLNS}">{fields}</{root}>'
    return Response(body, 200, media_type="application/xml")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _headers(info: ObjectInfo) -> dict[str, str]:
    return {"ETag": f'"{info.etag}"', "Last-Modified": formatdate(info.last_modified, usegmt=True)}


_CHECKED = ("crc32", "sha1", "sha256")
_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


class _Digests:
    """The hashes a body is checked against while it streams in: the SHA-256 it was signed
    with, the checksum the client gave (in a header, or in the trailer of an ``aws-chunked``
    body), and the MD5 S3 names it by (its ETag)."""

    def __init__(self, request: Request) -> None:
        declared = request.headers.get("x-amz-content-sha256", "")
        self.chunked = declared == _TRAILER
        if declared.startswith("STREAMING-") and not self.chunked:
            raise ArtifactDenied(
                "NotImplemented",
                f"x-amz-content-sha256: {declared} (signed aws-chunked bodies) is not served"
                f" here; sign the body's SHA-256, or send UNSIGNED-PAYLOAD or {_TRAILER}.",
                501,
            )
        signed = not self.chunked and declared != _UNSIGNED
        self.sha256_declared = declared if signed else None
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha256 = hashlib.sha256()
        self.trailer = request.headers.get("x-amz-trailer", "").strip().lower()
        named = [h for h in request.headers if h.startswith("x-amz-checksum-")]
        if self.trailer:
            named.append(self.trailer)
        self.checksums: list[tuple[str, str | None, Any]] = []
        for header in named:
            name = header.removeprefix("x-amz-checksum-")
            if name == "type":
                continue
            if name not in _CHECKED:
                raise ArtifactDenied(
                    "InvalidRequest",
                    f"{header}: this endpoint checks CRC32, SHA1 and SHA256 checksums only;"
                    " send one of those (botocore: request_checksum_calculation).",
                    400,
                )
            value = None if header == self.trailer else request.headers[header]
            self.checksums.append((name, value, 0 if name == "crc32" else hashlib.new(name)))

    def update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        if self.sha256_declared is not None:
            self.sha256.update(chunk)
        for index, (name, value, state) in enumerate(self.checksums):
            if name == "crc32":
                self.checksums[index] = (name, value, zlib.crc32(chunk, state))
            else:
                state.update(chunk)

    def check(self, trailers: dict[str, str]) -> None:
        if self.sha256_declared is not None and self.sha256.hexdigest() != self.sha256_declared:
            raise ArtifactDenied(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
                400,
            )
        for name, value, state in self.checksums:
            expected = value if value is not None else trailers.get(self.trailer)
            digest = state.to_bytes(4, "big") if name == "crc32" else state.digest()
            if base64.b64encode(digest).decode() != expected:
                raise ArtifactDenied(
                    "BadDigest",
                    f"The {name.upper()} you specified did not match the calculated checksum.",
                    400,
                )


def _malformed_chunks() -> ArtifactDenied:
    return ArtifactDenied("IncompleteBody", "The aws-chunked body is malformed.", 400)


async def _unchunked(
    stream: AsyncIterator[bytes], trailers: dict[str, str]
) -> AsyncIterator[bytes]:
    """The data of an ``aws-chunked`` body (``<hex size>CRLF<data>CRLF``…, then
    ``0CRLF``, trailer lines and an empty line), as it arrives; the trailers into
    ``trailers``."""
    buffer = bytearray()
    source = aiter(stream)

    async def more() -> None:
        try:
            buffer.extend(await anext(source))
        except StopAsyncIteration:
            raise _malformed_chunks() from None

    async def line() -> bytes:
        while (end := buffer.find(b"\r\n")) < 0:
            if len(buffer) > 4096:
                raise _malformed_chunks()
            await more()
        found = bytes(buffer[:end])
        del buffer[: end + 2]
        return found

    while True:
        try:
            size = int(bytes((await line()).split(b";")[0]), 16)
        except ValueError:
            raise _malformed_chunks() from None
        if size == 0:
            break
        while size:
            if not buffer:
                await more()
            piece = bytes(buffer[:size])
            del buffer[: len(piece)]
            size -= len(piece)
            yield piece
        if await line() != b"":
            raise _malformed_chunks()
    while header := await line():
        name, _, value = header.decode("latin-1").partition(":")
        trailers[name.strip().lower()] = value.strip()


class BucketRoutes:
    def __init__(
        self,
        buckets: LocalBuckets,
        uploads: Path,
        keys: ArtifactKeys,
        region: str,
        active: Active,
    ) -> None:
        self._buckets = buckets
        self._uploads = Uploads(uploads, buckets)
        self._keys = keys
        self._region = region
        self._active = active

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{PREFIX}/{{bucket}}", self.bucket, methods=["GET"]),
            Route(f"{PREFIX}/{{bucket}}/", self.bucket, methods=["GET"]),
            Route(
                f"{PREFIX}/{{bucket}}/{{key:path}}",
                self.object,
                methods=["GET", "PUT", "HEAD", "POST", "DELETE"],
            ),
        ]

    async def _grant(self, request: Request) -> Grant:
        raw = request.scope.get("raw_path") or request.url.path.encode()
        received = Received(
            request.method,
            raw.decode("latin-1").partition("?")[0],
            request.scope.get("query_string", b"").decode("latin-1"),
            [
                (k.decode("latin-1").lower(), v.decode("latin-1"))
                for k, v in request.scope["headers"]
            ],
            b"",
        )
        grant = self._keys.authenticate(received, self._region)
        if not await run_in_threadpool(self._active, grant.job_id):
            raise ArtifactDenied("ExpiredToken", "The provided token has expired.", 400)
        return grant

    async def bucket(self, request: Request) -> Response:
        bucket = request.path_params["bucket"]
        try:
            grant = await self._grant(request)
            if request.query_params.get("list-type") != "2":
                raise ArtifactDenied(
                    "NotImplemented", "Only ListObjectsV2 (list-type=2) is served here.", 501
                )
            return await run_in_threadpool(self._list, request, bucket, grant)
        except Exception as exc:
            return _refusal(request, exc)

    def _list(self, request: Request, bucket: str, grant: Grant) -> Response:
        """The job's own objects in ``bucket``: a job sees nothing else."""
        query = request.query_params
        prefix = query.get("prefix", "")
        after = query.get("start-after", "")
        token = query.get("continuation-token")
        if token:
            try:
                after = max(after, base64.urlsafe_b64decode(token.encode()).decode())
            except ValueError:
                raise ArtifactDenied(
                    "InvalidArgument", "continuation-token: not one this endpoint gave", 400
                ) from None
        try:
            limit = min(int(query.get("max-keys", "1000")), 1000)
        except ValueError:
            raise ArtifactDenied(
                "InvalidArgument", "max-keys: an integer is required", 400
            ) from None
        encode = query.get("encoding-type") == "url"
        found: list[tuple[str, ObjectInfo]] = []
        for key in sorted(grant.visible(bucket)):
            if key.startswith(prefix) and key > after:
                info = self._buckets.stat(bucket, key)
                if info is not None:
                    found.append((key, info))
        page, more = found[:limit], len(found) > limit
        entries = "".join(
            f"<Contents><Key>{escape(quote(k) if encode else k)}</Key>"
            f"<LastModified>{_iso(i.last_modified)}</LastModified>"
            f"<ETag>&quot;{i.etag}&quot;</ETag><Size>{i.size}</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
            for k, i in page
        )
        fields = (
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(page)}</KeyCount><MaxKeys>{limit}</MaxKeys>"
            f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>{entries}"
        )
        if encode:
            fields += "<EncodingType>url</EncodingType>"
        if token:
            fields += f"<ContinuationToken>{escape(token)}</ContinuationToken>"
        if more:
            last = base64.urlsafe_b64encode(page[-1][0].encode()).decode()
            fields += f"<NextContinuationToken>{last}</NextContinuationToken>"
        return _xml("ListBucketResult", fields)

    async def object(self, request: Request) -> Response:
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        query = request.query_params
        try:
            grant = await self._grant(request)
            self._buckets.path(bucket, key)  # refuses names that reach outside the buckets
            writes = request.method in ("PUT", "POST", "DELETE")
            allowed = grant.may_write if writes else grant.may_read
            if not allowed(bucket, key):
                raise ArtifactDenied("AccessDenied", "Access Denied")
            if query.get("versionId"):
                return _error(404, "NoSuchVersion", f"No version of {key} in bucket {bucket}.")
            if "uploadId" in query:
                return await self._multipart(request, bucket, key, grant, query["uploadId"])
            if request.method == "POST":
                if "uploads" not in query:
                    raise ArtifactDenied("InvalidRequest", "POST: only ?uploads is served.", 400)
                return await run_in_threadpool(self._create_upload, bucket, key, grant)
            if request.method == "PUT":
                return await self._put(request, bucket, key)
            if request.method == "DELETE":
                await run_in_threadpool(self._buckets.path(bucket, key).unlink, missing_ok=True)
                return Response(None, 204)
            return await self._read(request, bucket, key)
        except Exception as exc:
            return _refusal(request, exc)

    async def _read(self, request: Request, bucket: str, key: str) -> Response:
        info = await run_in_threadpool(self._buckets.stat, bucket, key)
        if info is None:
            return _error(404, "NoSuchKey", f"No object {key} in bucket {bucket}.")
        headers = _headers(info)
        if request.method == "HEAD":
            headers |= {"Content-Length": str(info.size), "Accept-Ranges": "bytes"}
            return Response(None, 200, headers=headers)
        path = self._buckets.path(bucket, key)
        return FileResponse(path, headers=headers, media_type="application/octet-stream")

    async def _receive(self, request: Request, target: Path) -> str:
        """Write the body to ``target``, checked; its MD5 hex."""
        digests = _Digests(request)
        trailers: dict[str, str] = {}
        stream: AsyncIterator[bytes] = request.stream()
        if digests.chunked:
            stream = _unchunked(stream, trailers)
        size = 0
        try:
            with open(target, "wb") as out:
                async for chunk in stream:
                    size += len(chunk)
                    if size > MAX_OBJECT:
                        raise ArtifactDenied(
                            "EntityTooLarge",
                            "Your proposed upload exceeds the maximum allowed size (5 GiB).",
                            400,
                        )
                    digests.update(chunk)
                    out.write(chunk)
            decoded = request.headers.get("x-amz-decoded-content-length")
            if digests.chunked and decoded is not None and decoded != str(size):
                raise ArtifactDenied(
                    "IncompleteBody",
                    f"x-amz-decoded-content-length says {decoded} bytes; {size} came.",
                    400,
                )
            digests.check(trailers)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return digests.md5.hexdigest()

    async def _put(self, request: Request, bucket: str, key: str) -> Response:
        upload = await run_in_threadpool(self._uploads.scratch)
        try:
            etag = await self._receive(request, upload)
            await run_in_threadpool(self._buckets.put, bucket, key, upload)
        finally:
            upload.unlink(missing_ok=True)
        return Response(None, 200, headers={"ETag": f'"{etag}"'})

    # Multipart upload (`conveyor.api.s3multipart` keeps the uploads).

    def _create_upload(self, bucket: str, key: str, grant: Grant) -> Response:
        upload_id = self._uploads.begin(bucket, key, grant.job_id)
        return _xml(
            "InitiateMultipartUploadResult",
            f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
            f"<UploadId>{upload_id}</UploadId>",
        )

    async def _multipart(
        self, request: Request, bucket: str, key: str, grant: Grant, upload_id: str
    ) -> Response:
        folder = await run_in_threadpool(self._uploads.find, upload_id, bucket, key, grant.job_id)
        if request.method == "DELETE":
            await run_in_threadpool(Uploads.abort, folder)
            return Response(None, 204)
        if request.method == "PUT":
            number = part_number(request.query_params.get("partNumber"))
            received = Uploads.receiving(folder, number)
            etag = await self._receive(request, received)
            Uploads.keep(received, number, etag)
            return Response(None, 200, headers={"ETag": f'"{etag}"'})
        if request.method == "POST":
            body = await _small_body(request)
            etag = await run_in_threadpool(self._uploads.complete, folder, bucket, key, body)
            return _xml(
                "CompleteMultipartUploadResult",
                f"<Location>{PREFIX}/{escape(bucket)}/{escape(key)}</Location>"
                f"<Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>"
                f"<ETag>&quot;{etag}&quot;</ETag>",
            )
        raise ArtifactDenied("MethodNotAllowed", f"{request.method} is not served here.", 405)


def _refusal(request: Request, exc: Exception) -> Response:
    """S3's XML error for what went wrong; anything unexpected is logged, and answered
    ``InternalError`` without its details."""
    if isinstance(exc, ArtifactDenied):
        refused = _error(exc.status, exc.code, exc.message)
    elif isinstance(exc, ArtifactError):
        refused = _error(400, "InvalidArgument", str(exc))
    elif isinstance(exc, StoreUnavailable):
        refused = _error(503, "ServiceUnavailable", "The database cannot be reached; retry.")
    else:
        log.exception("artifact request %s %s failed", request.method, request.url.path)
        refused = _error(500, "InternalError", "We encountered an internal error; see the log.")
    if request.method in ("PUT", "POST"):
        # The body may be unread: the connection cannot carry another request.
        refused.headers["Connection"] = "close"
    return refused


async def _small_body(request: Request) -> bytes:
    digests = _Digests(request)
    trailers: dict[str, str] = {}
    stream: AsyncIterator[bytes] = request.stream()
    if digests.chunked:
        stream = _unchunked(stream, trailers)
    body = b""
    async for chunk in stream:
        body += chunk
        if len(body) > MAX_COMPLETE:
            raise ArtifactDenied(
                "MalformedXML", "The CompleteMultipartUpload body is too large.", 400
            )
        digests.update(chunk)
    digests.check(trailers)
    return body
