"""Buckets as folders: objects stored and fetched whole, keys with folders, no escaping,
MD5 ETags, listings and modes kept."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from conveyor.artifacts import ArtifactError, ArtifactStore
from conveyor.artifacts.local import LocalBuckets


def _file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_put_then_get_returns_the_same_bytes(tmp_path: Path) -> None:
    store: ArtifactStore = LocalBuckets(tmp_path / "buckets")
    store.put("artifacts", "pipe/exec-1/Source.zip", _file(tmp_path / "a.zip", b"zip bytes"))
    assert store.exists("artifacts", "pipe/exec-1/Source.zip")
    assert (tmp_path / "buckets" / "artifacts" / "pipe" / "exec-1" / "Source.zip").is_file()
    store.get("artifacts", "pipe/exec-1/Source.zip", tmp_path / "copy.zip")
    assert (tmp_path / "copy.zip").read_bytes() == b"zip bytes"


def test_put_replaces_an_object_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = LocalBuckets(tmp_path / "buckets")
    store.put("b", "k.zip", _file(tmp_path / "one", b"one"))
    store.put("b", "k.zip", _file(tmp_path / "two", b"two"))
    assert [p.name for p in (tmp_path / "buckets" / "b").iterdir()] == ["k.zip"]
    assert store.path("b", "k.zip").read_bytes() == b"two"


def test_get_overwrites_the_destination(tmp_path: Path) -> None:
    store = LocalBuckets(tmp_path / "buckets")
    store.put("b", "k", _file(tmp_path / "src", b"new"))
    destination = _file(tmp_path / "dest", b"old")
    store.get("b", "k", destination)
    assert destination.read_bytes() == b"new"


def test_missing_objects_are_reported(tmp_path: Path) -> None:
    store = LocalBuckets(tmp_path / "buckets")
    assert not store.exists("b", "nothing")
    with pytest.raises(ArtifactError, match="nothing"):
        store.get("b", "nothing", tmp_path / "x")


@pytest.mark.parametrize("bucket", ["", ".", "..", "a/b", "a\\b"])
def test_bucket_names_that_could_escape_are_refused(tmp_path: Path, bucket: str) -> None:
    with pytest.raises(ArtifactError, match="bucket"):
        LocalBuckets(tmp_path).put(bucket, "k", _file(tmp_path / "f", b"x"))


@pytest.mark.parametrize("key", ["", "../x", "a/../../x", "/abs", "a//b", "a/./b", "dir/"])
def test_keys_that_could_escape_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalBuckets(tmp_path / "buckets")
    with pytest.raises(ArtifactError, match="key"):
        store.put("b", key, _file(tmp_path / "f", b"x"))
    with pytest.raises(ArtifactError):
        store.exists("b", key)
    assert not (tmp_path / "x").exists()


def test_stat_gives_size_md5_etag_and_no_version(tmp_path: Path) -> None:
    store = LocalBuckets(tmp_path / "buckets")
    store.put("b", "dir/k.zip", _file(tmp_path / "f", b"zip bytes"))
    info = store.stat("b", "dir/k.zip")
    assert info is not None
    assert (info.size, info.etag, info.version_id) == (
        9,
        hashlib.md5(b"zip bytes").hexdigest(),
        None,
    )
    assert info.last_modified == (tmp_path / "buckets" / "b" / "dir" / "k.zip").stat().st_mtime
    store.put("b", "dir/k.zip", _file(tmp_path / "g", b"other"))
    changed = store.stat("b", "dir/k.zip")
    assert changed is not None and changed.etag == hashlib.md5(b"other").hexdigest()
    assert store.stat("b", "dir") is None
    assert store.stat("b", "missing") is None
    assert store.stat("b", "dir/k.zip", version_id="v1") is None
    with pytest.raises(ArtifactError, match="No version v1"):
        store.get("b", "dir/k.zip", tmp_path / "x", version_id="v1")


def test_list_gives_sorted_keys_under_a_prefix_without_partial_files(tmp_path: Path) -> None:
    store = LocalBuckets(tmp_path / "buckets")
    for key in ("site/b.html", "site/a/x.js", "other.zip"):
        store.put("b", key, _file(tmp_path / "f", b"x"))
    (tmp_path / "buckets" / "b" / "site" / ".b.html.0123.partial").write_bytes(b"half")
    assert store.list("b") == ["other.zip", "site/a/x.js", "site/b.html"]
    assert store.list("b", "site/") == ["site/a/x.js", "site/b.html"]
    assert store.list("nothing") == []


def test_a_copy_keeps_the_file_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: object, target: object) -> None:
        raise OSError("cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    source = _file(tmp_path / "run.sh", b"#!/bin/sh\n")
    source.chmod(0o751)
    store = LocalBuckets(tmp_path / "buckets")
    store.put("b", "run.sh", source)
    assert stat.S_IMODE(store.path("b", "run.sh").stat().st_mode) == 0o751
    assert store.path("b", "run.sh").stat().st_ino != source.stat().st_ino
