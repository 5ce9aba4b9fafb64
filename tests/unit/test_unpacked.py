"""Artifacts unpacked once and copied into workspaces: the same files as a plain unpack, and
no workspace can change what the next one gets."""

from __future__ import annotations

import os
import stat
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.artifacts import ArtifactError
from conveyor.artifacts.archive import pack, unpack
from conveyor.artifacts.local import LocalBuckets
from conveyor.artifacts.unpacked import Unpacked


def _source(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "bin" / "run.sh").chmod(0o750)
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "docs" / "deep" / "a.md").write_text("a" * 10_000)
    (root / "docs" / "ro.txt").write_text("read only")
    (root / "docs" / "ro.txt").chmod(0o444)
    (root / "docs").chmod(0o775)  # not in the zip (it has files): unpacking makes it anew
    (root / "empty").mkdir()
    (root / "empty").chmod(0o700)
    (root / "README.md").write_text("readme")
    (root / "zero").write_text("")
    (root / "link-to-readme").symlink_to("README.md")
    (root / "docs" / "up").symlink_to("../bin")
    os.utime(root / "README.md", (1_000_000_000, 1_000_000_000))
    return root


def _snapshot(root: Path, *, ns: bool = False) -> dict[str, tuple[object, ...]]:
    """Every path under ``root`` with its kind, mode, content or target and file mtime (in
    seconds, or nanoseconds with ``ns``)."""
    seen: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        rel = path.relative_to(root).as_posix()
        if stat.S_ISLNK(info.st_mode):
            seen[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            seen[rel] = ("dir", stat.S_IMODE(info.st_mode))
        else:
            mode, content = stat.S_IMODE(info.st_mode), path.read_bytes()
            seen[rel] = ("file", mode, content, info.st_mtime_ns if ns else int(info.st_mtime))
    return seen


@pytest.fixture
def stored(tmp_path: Path) -> LocalBuckets:
    buckets = LocalBuckets(tmp_path / "buckets")
    pack(_source(tmp_path / "src"), tmp_path / "a.zip")
    buckets.put("art", "a.zip", tmp_path / "a.zip")
    return buckets


def test_materialise_gives_exactly_what_unpack_gives(tmp_path: Path, stored: LocalBuckets) -> None:
    expected = tmp_path / "expected"
    count = unpack(tmp_path / "a.zip", expected)
    cache = Unpacked(tmp_path / "cache")
    for name in ("one", "two"):
        assert (
            cache.materialise(
                stored, "art", "a.zip", tmp_path / name, scratch=tmp_path / "scratch.zip"
            )
            == count
        )
        assert _snapshot(tmp_path / name) == _snapshot(expected)


def test_writing_in_place_does_not_reach_the_next_workspace(
    tmp_path: Path, stored: LocalBuckets
) -> None:
    cache = Unpacked(tmp_path / "cache")
    first = tmp_path / "first"
    cache.materialise(stored, "art", "a.zip", first, scratch=tmp_path / "scratch.zip")
    with open(first / "README.md", "w") as out:  # truncates and writes the same inode
        out.write("changed")
    (first / "bin" / "run.sh").chmod(0o600)
    second = tmp_path / "second"
    cache.materialise(stored, "art", "a.zip", second, scratch=tmp_path / "scratch.zip")
    assert (second / "README.md").read_text() == "readme"
    assert stat.S_IMODE((second / "bin" / "run.sh").stat().st_mode) == 0o750
    assert (second / "README.md").stat().st_ino != (first / "README.md").stat().st_ino


class _Counting(LocalBuckets):
    """Local buckets that count the objects fetched."""

    fetched = 0

    def get(self, bucket: str, key: str, destination: Path) -> None:
        self.fetched += 1
        super().get(bucket, key, destination)


def _counting(tmp_path: Path) -> _Counting:
    buckets = _Counting(tmp_path / "counted")
    buckets.put("art", "a.zip", tmp_path / "a.zip")
    return buckets


def test_an_artifact_is_unpacked_once_and_a_rewritten_one_again(
    tmp_path: Path, stored: LocalBuckets
) -> None:
    stored = _counting(tmp_path)
    cache = Unpacked(tmp_path / "cache")
    for index in range(3):  # one action after the other, each handing its copy back
        workspace = tmp_path / f"w{index}"
        cache.materialise(stored, "art", "a.zip", workspace, scratch=tmp_path / "scratch.zip")
        cache.reclaim(workspace)
    assert stored.fetched == 1
    (tmp_path / "src" / "README.md").write_text("second version")
    pack(tmp_path / "src", tmp_path / "b.zip")
    stored.put("art", "a.zip", tmp_path / "b.zip")
    cache.materialise(stored, "art", "a.zip", tmp_path / "after", scratch=tmp_path / "scratch.zip")
    assert (tmp_path / "after" / "README.md").read_text() == "second version"
    assert stored.fetched == 2


def test_actions_at_the_same_time_get_copies_of_one_folder_unpacked_again(
    tmp_path: Path, stored: LocalBuckets
) -> None:
    stored = _counting(tmp_path)
    cache = Unpacked(tmp_path / "cache")
    expected = tmp_path / "expected"
    unpack(tmp_path / "a.zip", expected)
    for index in range(4):  # none handed back yet
        workspace = tmp_path / f"w{index}"
        cache.materialise(stored, "art", "a.zip", workspace, scratch=tmp_path / "scratch.zip")
        assert _snapshot(workspace) == _snapshot(expected)
    # The first took the unpacked folder itself; the others copy a folder unpacked again.
    assert stored.fetched == 2


def test_a_destination_with_files_is_merged_as_unpack_merges(
    tmp_path: Path, stored: LocalBuckets
) -> None:
    expected, target = tmp_path / "expected", tmp_path / "target"
    for folder in (expected, target):
        (folder / "docs").mkdir(parents=True)
        (folder / "docs" / "mine.txt").write_text("mine")
        (folder / "README.md").write_text("old")
    unpack(tmp_path / "a.zip", expected)
    Unpacked(tmp_path / "cache").materialise(
        stored, "art", "a.zip", target, scratch=tmp_path / "scratch.zip"
    )
    assert _snapshot(target) == _snapshot(expected)


def test_an_absolute_link_is_checked_against_the_destination(
    tmp_path: Path, stored: LocalBuckets
) -> None:
    target = tmp_path / "target"
    with zipfile.ZipFile(tmp_path / "abs.zip", "w") as archive:
        info = zipfile.ZipInfo("inside")
        info.create_system, info.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, str(target / "file"))
        archive.writestr("file", "content")
    stored.put("art", "abs.zip", tmp_path / "abs.zip")
    cache = Unpacked(tmp_path / "cache")
    cache.materialise(stored, "art", "abs.zip", target, scratch=tmp_path / "scratch.zip")
    assert os.readlink(target / "inside") == str(target / "file")
    assert (target / "inside").read_text() == "content"
    with pytest.raises(ArtifactError, match="outside the destination"):
        cache.materialise(
            stored, "art", "abs.zip", tmp_path / "elsewhere", scratch=tmp_path / "scratch.zip"
        )


def test_the_size_bound_holds_and_failures_are_not_kept(
    tmp_path: Path, stored: LocalBuckets
) -> None:
    cache = Unpacked(tmp_path / "cache", max_bytes=100)
    for attempt in range(2):
        with pytest.raises(ArtifactError, match="over 100 bytes"):
            cache.materialise(
                stored, "art", "a.zip", tmp_path / f"w{attempt}", scratch=tmp_path / "scratch.zip"
            )
    with pytest.raises(ArtifactError, match=r"No object missing\.zip"):
        cache.materialise(
            stored, "art", "missing.zip", tmp_path / "w", scratch=tmp_path / "scratch.zip"
        )


def test_least_recently_used_artifacts_go_beyond_the_bound(
    tmp_path: Path, stored: LocalBuckets
) -> None:
    cache = Unpacked(tmp_path / "cache", kept=2)
    for index in range(4):
        stored.put("art", f"k{index}.zip", tmp_path / "a.zip")
        cache.materialise(
            stored, "art", f"k{index}.zip", tmp_path / f"w{index}", scratch=tmp_path / "scratch.zip"
        )
    assert (tmp_path / "w3" / "README.md").read_text() == "readme"
    assert (
        cache.materialise(
            stored, "art", "k0.zip", tmp_path / "again", scratch=tmp_path / "scratch.zip"
        )
        > 0
    )
    assert _snapshot(tmp_path / "again") == _snapshot(tmp_path / "w0")


def test_the_bytes_kept_are_bounded_too(tmp_path: Path, stored: LocalBuckets) -> None:
    cache = Unpacked(tmp_path / "cache", kept_bytes=1)
    for index in range(3):
        cache.materialise(
            stored, "art", "a.zip", tmp_path / f"w{index}", scratch=tmp_path / "scratch.zip"
        )
        assert (tmp_path / f"w{index}" / "README.md").read_text() == "readme"
    instance = next(p for p in (tmp_path / "cache").iterdir() if p.is_dir())
    _wait_until(lambda: not [p for p in instance.iterdir() if p.is_dir()])


def _wait_until(check: Callable[[], bool]) -> None:
    """Removal happens off the caller's path: wait for it (bounded, never a time assertion)."""
    for _ in range(1000):
        if check():
            return
        time.sleep(0.01)
    raise AssertionError("the unpacked copy was never removed")
