"""Multipart uploads to the server's S3 endpoint (`conveyor.api.s3serve`), kept on disk until
they complete: ``<uploads>/<upload id>/`` holds ``target.json`` (the bucket, key and job the
upload is for) and each part received, named by its number and MD5. Completing joins the
parts listed into the object and names it as S3 does (the MD5 of the parts' MD5s, ``-`` and
their count); uploads never completed nor aborted are removed once no job can still reach them.
Bodies themselves are received by the endpoint; this module only keeps them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import shutil
import time
from pathlib import Path
from xml.etree import ElementTree

from conveyor.artifacts.local import LocalBuckets
from conveyor.auth.artifactkeys import ArtifactDenied

__all__ = ["MAX_COMPLETE", "MAX_PARTS", "STALE_UPLOAD", "Uploads", "part_number"]

# S3's most parts in one upload.
MAX_PARTS = 10_000
# The largest CompleteMultipartUpload body read.
MAX_COMPLETE = 2 * 1024 * 1024
# Seconds after which a multipart upload never completed is removed (a job's longest life is
# its action's timeout, a week at most).
STALE_UPLOAD = 8 * 24 * 3600.0
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_MD5 = re.compile(r"[0-9a-f]{32}")


class Uploads:
    """The uploads under ``folder``, completed into ``buckets``; plain bodies are received in
    the same folder (`scratch`)."""

    def __init__(self, folder: Path, buckets: LocalBuckets) -> None:
        self._folder = folder
        self._buckets = buckets

    def scratch(self) -> Path:
        """A new path to receive a body at, on the buckets' side of the disk."""
        self._folder.mkdir(parents=True, exist_ok=True)
        return self._folder / f"{secrets.token_hex(8)}.part"

    def begin(self, bucket: str, key: str, job: str) -> str:
        """A new upload of ``bucket``/``key`` for ``job``; its id."""
        self._forget_stale()
        upload_id = secrets.token_hex(16)
        folder = self._folder / upload_id
        folder.mkdir(parents=True)
        target = {"bucket": bucket, "key": key, "job": job}
        (folder / "target.json").write_text(json.dumps(target), encoding="utf-8")
        return upload_id

    def find(self, upload_id: str, bucket: str, key: str, job: str) -> Path:
        """The upload's folder, if it is this object's and this job's (else S3's
        ``NoSuchUpload``)."""
        folder = self._folder / upload_id
        missing = ArtifactDenied(
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload"
            " may have been aborted or completed.",
            404,
        )
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise missing
        try:
            target = json.loads((folder / "target.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            raise missing from None
        if target != {"bucket": bucket, "key": key, "job": job}:
            raise missing
        return folder

    @staticmethod
    def receiving(folder: Path, number: int) -> Path:
        """Where part ``number`` of the upload at ``folder`` is received, before `keep`."""
        return folder / f"{number:05d}.{secrets.token_hex(4)}.partial"

    @staticmethod
    def keep(received: Path, number: int, etag: str) -> None:
        """Keep a part received whole as part ``number`` (a part sent again replaces none:
        completing names the one it wants by its ETag)."""
        received.replace(received.parent / f"{number:05d}.{etag}")

    @staticmethod
    def abort(folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def complete(self, folder: Path, bucket: str, key: str, body: bytes) -> str:
        """Join the parts a CompleteMultipartUpload ``body`` lists into the object; its
        ETag. The upload is gone afterwards, whatever happens."""
        parts = listed_parts(body)
        stored: dict[int, list[str]] = {}
        for path in folder.iterdir():
            digits, _, tag = path.name.partition(".")
            if digits.isdigit() and "." not in tag:
                stored.setdefault(int(digits), []).append(tag)
        chosen = []
        for number, etag in parts:
            if etag not in stored.get(number, []):
                raise ArtifactDenied(
                    "InvalidPart",
                    f"Part {number} with ETag {etag} was not uploaded to this upload.",
                    400,
                )
            chosen.append(folder / f"{number:05d}.{etag}")
        whole = folder / "object"
        with open(whole, "wb") as out:
            for path in chosen:
                with open(path, "rb") as part:
                    shutil.copyfileobj(part, out, 1024 * 1024)
        try:
            self._buckets.put(bucket, key, whole)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        md5s = b"".join(bytes.fromhex(etag) for _, etag in parts)
        return f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(parts)}"

    def _forget_stale(self) -> None:
        """Remove the uploads begun more than `STALE_UPLOAD` seconds ago and never completed
        nor aborted (their jobs' credentials have expired since)."""
        if not self._folder.is_dir():
            return
        too_old = time.time() - STALE_UPLOAD
        for folder in self._folder.iterdir():
            try:
                if _UPLOAD_ID.fullmatch(folder.name) and folder.stat().st_mtime < too_old:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue


def part_number(text: str | None) -> int:
    """The ``partNumber`` of an UploadPart (else S3's ``InvalidArgument``)."""
    if text is None or not text.isdigit() or not 1 <= int(text) <= MAX_PARTS:
        raise ArtifactDenied(
            "InvalidArgument",
            f"partNumber: an integer from 1 to {MAX_PARTS} is required, not {text!r}",
            400,
        )
    return int(text)


def listed_parts(body: bytes) -> list[tuple[int, str]]:
    """The (part number, ETag) pairs of a CompleteMultipartUpload body, in ascending order."""
    malformed = ArtifactDenied(
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published"
        " schema.",
        400,
    )
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise malformed
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise malformed from None
    parts = []
    for part in root:
        if not part.tag.endswith("Part"):
            continue
        fields = {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in part}
        number, etag = fields.get("PartNumber", ""), fields.get("ETag", "").strip('"')
        if not number.isdigit() or not _MD5.fullmatch(etag):
            raise malformed
        parts.append((int(number), etag))
    if not parts:
        raise malformed
    if any(a[0] >= b[0] for a, b in itertools.pairwise(parts)):
        raise ArtifactDenied(
            "InvalidPartOrder", "The list of parts was not in ascending order.", 400
        )
    return parts
