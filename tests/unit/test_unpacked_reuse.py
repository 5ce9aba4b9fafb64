"""A copy handed back after an action is made like new for the next one: whatever the action
did to it, the next action gets exactly what a plain unpack gives, and nothing outside the
copy is touched."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.artifacts.archive import pack, unpack
from conveyor.artifacts.local import LocalBuckets
from conveyor.artifacts.unpacked import Unpacked
from tests.support.engine import wait_for
from tests.unit.test_unpacked import _snapshot, _source


def _append(path: Path) -> None:
    with path.open("a") as out:
        out.write("more")


def _write_same_size_keep_times(w: Path) -> None:
    path = w / "README.md"
    before = path.stat()
    path.write_text("README")  # as long as before
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _file_to_folder(w: Path) -> None:
    (w / "README.md").unlink()
    (w / "README.md").mkdir()
    (w / "README.md" / "inside").write_text("x")


def _folder_to_outside_link(w: Path) -> None:
    shutil.rmtree(w / "docs")
    (w / "docs").symlink_to(w.parent / "outside")


def _rename_folder_away_and_back(w: Path) -> None:
    (w / "docs").rename(w / "docs2")
    (w / "docs2" / "extra").write_text("x")
    (w / "docs2").rename(w / "docs")


# Things an action may do to its copy; each may fail when an earlier one removed its path.
CHANGES: dict[str, Callable[[Path], object]] = {
    "write in place": lambda w: (w / "README.md").write_text("changed"),
    "append": lambda w: _append(w / "docs" / "deep" / "a.md"),
    "same size, same times": _write_same_size_keep_times,
    "delete a file": lambda w: (w / "zero").unlink(),
    "delete a folder": lambda w: shutil.rmtree(w / "docs" / "deep"),
    "new file": lambda w: (w / "docs" / "new.txt").write_text("new"),
    "new folders": lambda w: (w / "empty" / "sub" / "x").mkdir(parents=True),
    "file to folder": _file_to_folder,
    "folder to a link outside": _folder_to_outside_link,
    "chmod a file": lambda w: (w / "bin" / "run.sh").chmod(0o600),
    "chmod a folder": lambda w: (w / "empty").chmod(0o500),
    "chmod a read-only file": lambda w: (w / "docs" / "ro.txt").chmod(0o666),
    "chmod the root": lambda w: w.chmod(0o700),
    "old times": lambda w: os.utime(w / "README.md", (1, 1)),
    "hard link out": lambda w: os.link(w / "README.md", w.parent / "outside" / "linked"),
    "rename a file": lambda w: (w / "zero").rename(w / "zero2"),
    "retarget a link": lambda w: (
        (w / "link-to-readme").unlink(),
        (w / "link-to-readme").symlink_to("/etc/passwd"),
    ),
    "rename a folder away and back": _rename_folder_away_and_back,
}


def _outside(root: Path) -> dict[str, tuple[object, ...]]:
    """What is outside the copy, where an action's links lead."""
    return _snapshot(root / "outside")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(sorted(CHANGES)), max_size=6), st.integers(1, 3))
def test_whatever_an_action_did_the_next_one_gets_a_copy_like_new(
    changes: list[str], rounds: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        buckets = LocalBuckets(root / "buckets")
        pack(_source(root / "src"), root / "a.zip")
        buckets.put("art", "a.zip", root / "a.zip")
        unpack(root / "a.zip", root / "expected")
        (root / "outside").mkdir()
        (root / "outside" / "keep.txt").write_text("keep")
        cache = Unpacked(root / "cache")
        workspace = root / "work" / "src"
        for _ in range(rounds):
            outside = _outside(root)
            cache.materialise(buckets, "art", "a.zip", workspace, scratch=root / "s.zip")
            assert _snapshot(workspace) == _snapshot(root / "expected")
            assert _outside(root) == outside  # making the copy like new stayed inside it
            for change in changes:
                with contextlib.suppress(OSError):
                    CHANGES[change](workspace)
            cache.reclaim(workspace)
            assert not workspace.exists()
        assert (root / "outside" / "keep.txt").read_text() == "keep"


def _stored(root: Path) -> LocalBuckets:
    buckets = LocalBuckets(root / "buckets")
    pack(_source(root / "src"), root / "a.zip")
    buckets.put("art", "a.zip", root / "a.zip")
    return buckets


def _marks(root: Path) -> dict[Path, tuple[int, int]]:
    """Each path's inode and change time: both stay as they are only if nothing touched it."""
    return {
        path.relative_to(root): (path.lstat().st_ino, path.lstat().st_ctime_ns)
        for path in root.rglob("*")
    }


def test_an_untouched_copy_is_lent_again_as_it_is(tmp_path: Path) -> None:
    buckets, cache = _stored(tmp_path), Unpacked(tmp_path / "cache")
    first, second = tmp_path / "w1" / "src", tmp_path / "w2" / "src"
    cache.materialise(buckets, "art", "a.zip", first, scratch=tmp_path / "s.zip")
    inodes = _marks(first)
    cache.reclaim(first)
    cache.materialise(buckets, "art", "a.zip", second, scratch=tmp_path / "s.zip")
    assert _marks(second) == inodes


def test_names_an_action_added_are_removed_and_the_rest_kept(tmp_path: Path) -> None:
    buckets, cache = _stored(tmp_path), Unpacked(tmp_path / "cache")
    first, second = tmp_path / "w1" / "src", tmp_path / "w2" / "src"
    cache.materialise(buckets, "art", "a.zip", first, scratch=tmp_path / "s.zip")
    inodes = _marks(first)
    (first / "build").mkdir()
    (first / "build" / "out.bin").write_bytes(b"x")
    (first / "docs" / "deep" / "__pycache__").mkdir()
    cache.reclaim(first)
    cache.materialise(buckets, "art", "a.zip", second, scratch=tmp_path / "s.zip")
    assert not (second / "build").exists()
    assert not (second / "docs" / "deep" / "__pycache__").exists()
    again = _marks(second)
    assert {name for name in inodes if again[name] != inodes[name]} <= {Path("docs/deep")}


def test_only_what_the_action_changed_is_made_again(tmp_path: Path) -> None:
    buckets, cache = _stored(tmp_path), Unpacked(tmp_path / "cache")
    first, second = tmp_path / "w1" / "src", tmp_path / "w2" / "src"
    # Once an action has changed a file, a folder is kept to make changed files from.
    cache.materialise(buckets, "art", "a.zip", first, scratch=tmp_path / "s.zip")
    (first / "zero").write_text("changed")
    cache.reclaim(first)
    cache.materialise(buckets, "art", "a.zip", first, scratch=tmp_path / "s.zip")
    assert (first / "zero").read_text() == ""
    cache.reclaim(first)
    cache.materialise(buckets, "art", "a.zip", first, scratch=tmp_path / "s.zip")
    inodes = _marks(first)
    (first / "README.md").write_text("changed")
    cache.reclaim(first)
    cache.materialise(buckets, "art", "a.zip", second, scratch=tmp_path / "s.zip")
    again = _marks(second)
    assert {name for name in inodes if again[name] != inodes[name]} == {Path("README.md")}
    assert (second / "README.md").read_text() == "readme"


def test_a_folder_the_action_put_in_place_of_its_copy_is_not_taken(tmp_path: Path) -> None:
    buckets, cache = _stored(tmp_path), Unpacked(tmp_path / "cache")
    first = tmp_path / "w1" / "src"
    cache.materialise(buckets, "art", "a.zip", first, scratch=tmp_path / "s.zip")
    shutil.rmtree(first)
    first.mkdir()
    (first / "mine").write_text("the action's")
    cache.reclaim(first)
    assert (first / "mine").read_text() == "the action's"
    second = tmp_path / "w2" / "src"
    cache.materialise(buckets, "art", "a.zip", second, scratch=tmp_path / "s.zip")
    assert not (second / "mine").exists()


def test_two_copies_lent_at_once_are_both_taken_back(tmp_path: Path) -> None:
    buckets, cache = _stored(tmp_path), Unpacked(tmp_path / "cache")
    one, two = tmp_path / "w1" / "src", tmp_path / "w2" / "src"
    for workspace in (one, two):
        cache.materialise(buckets, "art", "a.zip", workspace, scratch=tmp_path / "s.zip")
    (one / "README.md").write_text("one")
    (two / "README.md").write_text("two")
    cache.reclaim(one)
    cache.reclaim(two)
    assert not one.exists() and not two.exists()
    for workspace in (one, two):
        cache.materialise(buckets, "art", "a.zip", workspace, scratch=tmp_path / "s.zip")
        assert (workspace / "README.md").read_text() == "readme"


def test_a_copy_of_an_evicted_artifact_is_left_to_be_removed(tmp_path: Path) -> None:
    buckets, cache = _stored(tmp_path), Unpacked(tmp_path / "cache", kept=1)
    workspace = tmp_path / "w1" / "src"
    cache.materialise(buckets, "art", "a.zip", workspace, scratch=tmp_path / "s.zip")
    buckets.put("art", "b.zip", tmp_path / "a.zip")
    cache.materialise(buckets, "art", "b.zip", tmp_path / "w2" / "src", scratch=tmp_path / "s.zip")
    cache.reclaim(workspace)
    assert (workspace / "README.md").read_text() == "readme"


def test_a_folder_deeper_than_python_recurses_is_removed(tmp_path: Path) -> None:
    buckets, cache = _stored(tmp_path), Unpacked(tmp_path / "cache")
    workspace = tmp_path / "w1" / "src"
    cache.materialise(buckets, "art", "a.zip", workspace, scratch=tmp_path / "s.zip")
    for where in ("deep", "docs/deeper"):  # at the top, and inside a folder of the tree
        fd = os.open(workspace, os.O_RDONLY)
        for name in [*where.split("/")[:-1]]:
            fd = os.open(name, os.O_RDONLY, dir_fd=fd)
        leaf = where.split("/")[-1]
        for _ in range(1200):
            os.mkdir(leaf, dir_fd=fd)
            inner = os.open(leaf, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.close(fd)
    cache.reclaim(workspace)
    cache.materialise(buckets, "art", "a.zip", workspace, scratch=tmp_path / "s.zip")
    expected = tmp_path / "expected"
    unpack(tmp_path / "a.zip", expected)
    assert _snapshot(workspace) == _snapshot(expected)


def test_a_copy_a_process_still_works_in_is_not_taken_back(tmp_path: Path) -> None:
    buckets, cache = _stored(tmp_path), Unpacked(tmp_path / "cache")
    workspace = tmp_path / "w1" / "src"
    cache.materialise(buckets, "art", "a.zip", workspace, scratch=tmp_path / "s.zip")
    # A daemon the action started in its own session, out of reach of the process group kill.
    lingering = subprocess.Popen(["sleep", "60"], cwd=workspace / "docs", start_new_session=True)
    try:
        cache.reclaim(workspace)
        assert (workspace / "README.md").exists()  # left where it is, to be removed with it
        other = tmp_path / "w2" / "src"
        cache.materialise(buckets, "art", "a.zip", other, scratch=tmp_path / "s.zip")
        assert (other / "docs").stat().st_ino != (workspace / "docs").stat().st_ino
    finally:
        lingering.kill()
        lingering.wait()


def test_what_an_action_added_at_the_top_goes_when_the_copy_is_handed_back(
    tmp_path: Path,
) -> None:
    buckets, cache = _stored(tmp_path), Unpacked(tmp_path / "cache")
    workspace = tmp_path / "w1" / "src"
    cache.materialise(buckets, "art", "a.zip", workspace, scratch=tmp_path / "s.zip")
    (workspace / "build").mkdir()
    for index in range(50):
        (workspace / "build" / f"out{index}.o").write_bytes(b"x" * 100)
    cache.reclaim(workspace)
    kept = [p for p in (tmp_path / "cache").rglob("build") if p.parent.name != "trash"]
    wait_for(lambda: not [p for p in kept if p.exists()], 30, "the build output to be removed")
    cache.materialise(buckets, "art", "a.zip", workspace, scratch=tmp_path / "s.zip")
    assert not (workspace / "build").exists()
