"""Multipart uploads as the server's S3 endpoint keeps them: found only by their own object and
job, joined as listed, named as S3 names them, and forgotten once no job can reach them."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from conveyor.api.s3multipart import STALE_UPLOAD, Uploads, part_number
from conveyor.artifacts.local import LocalBuckets
from conveyor.auth.artifactkeys import ArtifactDenied


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _part(folder: Path, number: int, data: bytes) -> str:
    received = Uploads.receiving(folder, number)
    received.write_bytes(data)
    Uploads.keep(received, number, _md5(data))
    return _md5(data)


def _body(parts: list[tuple[int, str]]) -> bytes:
    listed = "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>&quot;{e}&quot;</ETag></Part>" for n, e in parts
    )
    return f"<CompleteMultipartUpload>{listed}</CompleteMultipartUpload>".encode()


@pytest.fixture
def uploads(tmp_path: Path) -> Uploads:
    return Uploads(tmp_path / "uploads", LocalBuckets(tmp_path / "buckets"))


def test_parts_listed_are_joined_and_named_as_s3_names_them(
    tmp_path: Path, uploads: Uploads
) -> None:
    upload = uploads.begin("art", "out.zip", "job-1")
    folder = uploads.find(upload, "art", "out.zip", "job-1")
    first, _ = _part(folder, 1, b"a" * 10), _part(folder, 2, b"not this one")
    second = _part(folder, 2, b"b" * 5)
    etag = uploads.complete(folder, "art", "out.zip", _body([(1, first), (2, second)]))
    both = bytes.fromhex(first) + bytes.fromhex(second)
    assert etag == f"{_md5(both)}-2"
    assert (tmp_path / "buckets" / "art" / "out.zip").read_bytes() == b"a" * 10 + b"b" * 5
    assert not folder.exists()


def test_an_upload_is_found_only_for_its_own_object_and_job(uploads: Uploads) -> None:
    upload = uploads.begin("art", "out.zip", "job-1")
    for bucket, key, job in [("art", "out.zip", "job-2"), ("art", "other", "job-1")]:
        with pytest.raises(ArtifactDenied) as refused:
            uploads.find(upload, bucket, key, job)
        assert refused.value.code == "NoSuchUpload"
    with pytest.raises(ArtifactDenied):
        uploads.find("../../buckets", "art", "out.zip", "job-1")


def test_a_part_not_uploaded_or_out_of_order_is_refused(uploads: Uploads) -> None:
    folder = uploads.find(uploads.begin("art", "k", "job-1"), "art", "k", "job-1")
    etag = _part(folder, 1, b"data")
    with pytest.raises(ArtifactDenied) as refused:
        uploads.complete(folder, "art", "k", _body([(1, etag), (2, etag)]))
    assert refused.value.code == "InvalidPart"
    with pytest.raises(ArtifactDenied) as refused:
        uploads.complete(folder, "art", "k", _body([(2, etag), (1, etag)]))
    assert refused.value.code == "InvalidPartOrder"
    with pytest.raises(ArtifactDenied) as refused:
        uploads.complete(folder, "art", "k", b"<!DOCTYPE x><x/>")
    assert refused.value.code == "MalformedXML"


def test_uploads_no_job_can_reach_any_more_are_forgotten(uploads: Uploads) -> None:
    old = uploads.find(uploads.begin("art", "a", "job-1"), "art", "a", "job-1")
    recent = uploads.find(uploads.begin("art", "b", "job-1"), "art", "b", "job-1")
    then = time.time() - STALE_UPLOAD - 60
    os.utime(old, (then, then))
    uploads.begin("art", "c", "job-2")
    assert not old.exists()
    assert recent.exists()


@pytest.mark.parametrize("text", [None, "0", "10001", "x", "-1"])
def test_a_part_number_outside_s3s_range_is_refused(text: str | None) -> None:
    with pytest.raises(ArtifactDenied) as refused:
        part_number(text)
    assert refused.value.code == "InvalidArgument"
