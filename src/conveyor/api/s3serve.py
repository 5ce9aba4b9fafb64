"""``/_conveyor/s3/<bucket>/<key>``: the server's local buckets over the S3 REST subset that
``conveyor worker`` uses to fetch input artifacts and store output artifacts from a machine
that shares no disk with the server: GetObject, HeadObject and PutObject, path-style.

It is served with the remote workers' routes (setting ``remote_workers``) and answers callers
on loopback only: requests are not checked against per-job credentials yet, so a worker on
another machine reaches it through a tunnel (``ssh -L``) or uses a shared S3 endpoint
(``s3_endpoint``) instead. Errors are S3's XML errors (``NoSuchKey``, ``AccessDenied``,
``InvalidArgument``).
"""

from __future__ import annotations

import secrets
from email.utils import formatdate
from pathlib import Path
from xml.sax.saxutils import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from conveyor.artifacts import ArtifactError, ObjectInfo
from conveyor.artifacts.local import LocalBuckets
from conveyor.auth.gate import is_loopback

PREFIX = "/_conveyor/s3"


def _error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
    )
    return Response(body, status, media_type="application/xml")


def _headers(info: ObjectInfo) -> dict[str, str]:
    return {
        "ETag": f'"{info.etag}"',
        "Last-Modified": formatdate(info.last_modified, usegmt=True),
        "Content-Length": str(info.size),
        "Accept-Ranges": "none",
    }


class BucketRoutes:
    def __init__(self, buckets: LocalBuckets, uploads: Path) -> None:
        self._buckets = buckets
        self._uploads = uploads

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{PREFIX}/{{bucket}}/{{key:path}}", self.object, methods=["GET", "PUT", "HEAD"])
        ]

    async def object(self, request: Request) -> Response:
        client = request.client.host if request.client else ""
        if not is_loopback(client):
            return _error(403, "AccessDenied", "The artifact endpoint answers loopback only.")
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        if request.query_params.get("versionId"):
            return _error(404, "NoSuchVersion", f"No version of {key} in bucket {bucket}.")
        try:
            path = self._buckets.path(bucket, key)
            if request.method == "PUT":
                return await self._put(request, bucket, key)
            info = await run_in_threadpool(self._buckets.stat, bucket, key)
        except ArtifactError as error:
            return _error(400, "InvalidArgument", str(error))
        if info is None:
            return _error(404, "NoSuchKey", f"No object {key} in bucket {bucket}.")
        if request.method == "HEAD":
            return Response(None, 200, headers=_headers(info))
        return FileResponse(path, headers=_headers(info), media_type="application/octet-stream")

    async def _put(self, request: Request, bucket: str, key: str) -> Response:
        self._uploads.mkdir(parents=True, exist_ok=True)
        upload = self._uploads / f"{secrets.token_hex(8)}.part"
        try:
            with open(upload, "wb") as out:
                async for chunk in request.stream():
                    out.write(chunk)
            await run_in_threadpool(self._buckets.put, bucket, key, upload)
            info = await run_in_threadpool(self._buckets.stat, bucket, key)
        finally:
            upload.unlink(missing_ok=True)
        etag = f'"{info.etag}"' if info else '""'
        return Response(None, 200, headers={"ETag": etag})
