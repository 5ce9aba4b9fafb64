"""A source's checkout kept as its artifact unpacked: the first action that reads the artifact
gets exactly what unpacking it would give, without the object being fetched or unpacked, and
a tree that is not what the archive holds is never kept."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.actions.git import GitSource
from conveyor.artifacts.archive import pack, unpack
from conveyor.artifacts.local import LocalBuckets
from conveyor.artifacts.unpacked import Unpacked
from tests.support.gitrepo import commit_all, git
from tests.support.jobs import source_context
from tests.unit.test_unpacked import _snapshot, _source


class CountingBuckets(LocalBuckets):
    """Local buckets that count the objects fetched from them."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.fetched = 0

    def get(self, bucket: str, key: str, destination: Path) -> None:
        self.fetched += 1
        super().get(bucket, key, destination)


@pytest.fixture(params=[0o022, 0o002, 0o077], ids=["umask-022", "umask-002", "umask-077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run with each umask, since unpacking makes folders under it."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _adopted(tmp_path: Path, tree: Path, cache: Unpacked) -> tuple[CountingBuckets, bool]:
    buckets = CountingBuckets(tmp_path / "buckets")
    pack(tree, tmp_path / "a.zip")
    buckets.put("art", "a.zip", tmp_path / "a.zip")
    return buckets, cache.adopt(buckets, "art", "a.zip", tree, tmp_path / "a.zip")


def _materialised(tmp_path: Path, cache: Unpacked, buckets: CountingBuckets, name: str) -> Path:
    target = tmp_path / name
    cache.materialise(buckets, "art", "a.zip", target, scratch=tmp_path / "scratch.zip")
    return target


def test_the_first_reader_gets_the_tree_as_unpacking_gives_it_without_fetching_it(
    tmp_path: Path, umask: int
) -> None:
    cache = Unpacked(tmp_path / "cache")
    tree = _source(tmp_path / "src")
    buckets, adopted = _adopted(tmp_path, tree, cache)
    assert adopted and not tree.exists()
    expected = tmp_path / "expected"
    unpack(tmp_path / "a.zip", expected)
    first = _materialised(tmp_path, cache, buckets, "first")
    assert _snapshot(first, ns=True) == _snapshot(expected, ns=True)
    assert buckets.fetched == 0
    (first / "README.md").write_text("changed in place")
    cache.reclaim(first)
    second = _materialised(tmp_path, cache, buckets, "second")
    assert _snapshot(second, ns=True) == _snapshot(expected, ns=True)


def test_a_tree_changed_since_it_was_packed_is_not_kept(tmp_path: Path) -> None:
    cache = Unpacked(tmp_path / "cache")
    tree = _source(tmp_path / "src")
    buckets = CountingBuckets(tmp_path / "buckets")
    pack(tree, tmp_path / "a.zip")
    buckets.put("art", "a.zip", tmp_path / "a.zip")
    (tree / "docs" / "added.txt").write_text("not in the archive")
    (tree / "README.md").write_text("longer than it was")
    assert not cache.adopt(buckets, "art", "a.zip", tree, tmp_path / "a.zip")
    expected = tmp_path / "expected"
    unpack(tmp_path / "a.zip", expected)
    first = _materialised(tmp_path, cache, buckets, "first")
    assert _snapshot(first, ns=True) == _snapshot(expected, ns=True)
    assert buckets.fetched == 1


def test_a_tree_packed_in_part_is_not_kept(tmp_path: Path) -> None:
    cache = Unpacked(tmp_path / "cache")
    tree = _source(tmp_path / "src")
    buckets = CountingBuckets(tmp_path / "buckets")
    pack(tree, tmp_path / "a.zip", ["docs/**"])
    buckets.put("art", "a.zip", tmp_path / "a.zip")
    assert not cache.adopt(buckets, "art", "a.zip", tree, tmp_path / "a.zip")
    assert sorted(p.name for p in _materialised(tmp_path, cache, buckets, "one").iterdir()) == [
        "docs"
    ]


def test_a_tree_over_the_size_bound_is_not_kept_and_still_refused(tmp_path: Path) -> None:
    cache = Unpacked(tmp_path / "cache", max_bytes=5_000)
    buckets, adopted = _adopted(tmp_path, _source(tmp_path / "src"), cache)
    assert not adopted
    with pytest.raises(Exception, match="over 5000 bytes"):
        _materialised(tmp_path, cache, buckets, "one")


def test_an_object_already_unpacked_keeps_its_source(tmp_path: Path) -> None:
    cache = Unpacked(tmp_path / "cache")
    buckets, _ = _adopted(tmp_path, _source(tmp_path / "src"), cache)
    again = _source(tmp_path / "again")
    assert not cache.adopt(buckets, "art", "a.zip", again, tmp_path / "a.zip")
    _materialised(tmp_path, cache, buckets, "one")
    assert buckets.fetched == 0


def test_the_git_source_leaves_its_checkout_for_the_first_reader(tmp_path: Path) -> None:
    repo = tmp_path / "app"
    (repo / "lib").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "run.sh").write_text("#!/bin/sh\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "lib" / "code.py").write_text("x = 1\n")
    (repo / "latest").symlink_to("lib/code.py")
    commit_all(repo, "First commit", "2024-01-02T03:04:05+00:00")
    cache = Unpacked(tmp_path / "cache")
    context = source_context(tmp_path, {"RepositoryUrl": str(repo)})
    buckets = CountingBuckets(tmp_path / "buckets")
    result = GitSource(cache).run(replace(context, artifacts=buckets))
    assert result.succeeded, result.message
    key = "pipe/SourceOut.zip"
    expected = tmp_path / "expected"
    unpack(tmp_path / "buckets" / "artifacts" / key, expected)
    target = tmp_path / "reader"
    cache.materialise(buckets, "artifacts", key, target, scratch=tmp_path / "scratch.zip")
    assert _snapshot(target, ns=True) == _snapshot(expected, ns=True)
    assert buckets.fetched == 0
