"""Packing folders into zips and unpacking them safely: modes, links, globs, hostile entries."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from conveyor.artifacts import ArtifactError
from conveyor.artifacts.archive import pack, unpack


def _tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "bin" / "run.sh").chmod(0o755)
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "docs" / "deep" / "a.md").write_text("a")
    (root / "docs" / "b.txt").write_text("b")
    (root / "README.md").write_text("readme")
    (root / ".hidden").write_text("h")
    (root / "empty").mkdir()
    (root / "link-to-readme").symlink_to("README.md")
    (root / "link-to-docs").symlink_to("docs")
    return root


def _names(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as opened:
        return opened.namelist()


def _hostile(path: Path, *entries: tuple[str, bytes, int]) -> Path:
    """A zip whose entries are (name, content, st_mode) exactly as given."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, content, mode in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            archive.writestr(info, content)
    return path


def test_pack_then_unpack_keeps_contents_modes_and_links(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    count = pack(source, tmp_path / "a.zip")
    out = tmp_path / "out"
    assert unpack(tmp_path / "a.zip", out) == count == 8
    assert (out / "bin" / "run.sh").read_text() == "#!/bin/sh\necho hi\n"
    assert stat.S_IMODE((out / "bin" / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "README.md").stat().st_mode) == 0o644
    assert os.readlink(out / "link-to-readme") == "README.md"
    assert os.readlink(out / "link-to-docs") == "docs"
    assert (out / "empty").is_dir()
    assert (out / ".hidden").read_text() == "h"


def test_pack_stores_links_as_links_never_following_them(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    (source / "outside").symlink_to("/etc")
    pack(source, tmp_path / "a.zip")
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        outside = archive.getinfo("outside")
        assert stat.S_ISLNK(outside.external_attr >> 16)
        assert archive.read("outside") == b"/etc"
        assert not any(
            name.startswith(("outside/", "link-to-docs/")) for name in archive.namelist()
        )


def test_pack_order_is_deterministic(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    pack(source, tmp_path / "a.zip")
    pack(source, tmp_path / "b.zip")
    assert _names(tmp_path / "a.zip") == _names(tmp_path / "b.zip")
    assert _names(tmp_path / "a.zip")[0] == ".hidden"


def test_pack_selects_by_glob_and_folder_names(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    assert pack(source, tmp_path / "a.zip", ["*.md"]) == 1
    assert _names(tmp_path / "a.zip") == ["README.md"]
    pack(source, tmp_path / "b.zip", ["**/*.md"])
    assert _names(tmp_path / "b.zip") == ["README.md", "docs/deep/a.md"]
    pack(source, tmp_path / "c.zip", ["docs"])
    assert _names(tmp_path / "c.zip") == ["docs/b.txt", "docs/deep/a.md"]
    pack(source, tmp_path / "d.zip", ["docs/**/*"], exclude=["**/*.txt"])
    assert _names(tmp_path / "d.zip") == ["docs/deep/a.md"]
    assert pack(source, tmp_path / "e.zip", exclude=["**/*"]) == 0


def test_pack_can_discard_paths_but_refuses_clashing_names(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    pack(source, tmp_path / "a.zip", ["docs/**/*"], discard_paths=True)
    assert sorted(_names(tmp_path / "a.zip")) == ["a.md", "b.txt"]
    (source / "docs" / "deep" / "b.txt").write_text("again")
    with pytest.raises(ArtifactError, match=r"b\.txt"):
        pack(source, tmp_path / "b.zip", ["docs/**/*"], discard_paths=True)


def test_pack_leaves_out_its_own_destination(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src")
    (source / "out.zip").write_text("stale")
    pack(source, source / "out.zip")
    assert "out.zip" not in _names(source / "out.zip")


def test_unpack_refuses_a_parent_escape(tmp_path: Path) -> None:
    archive = _hostile(tmp_path / "h.zip", ("ok.txt", b"x", 0o100644), ("../x", b"x", 0o100644))
    with pytest.raises(ArtifactError, match=r"\.\./x"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "out" / "ok.txt").exists()  # checked before anything is written


def test_unpack_refuses_an_absolute_path(tmp_path: Path) -> None:
    target = tmp_path / "abs.txt"
    archive = _hostile(tmp_path / "h.zip", (str(target), b"x", 0o100644))
    with pytest.raises(ArtifactError, match="absolute"):
        unpack(archive, tmp_path / "out")
    assert not target.exists()


def test_unpack_accepts_dot_dot_that_stays_inside(tmp_path: Path) -> None:
    archive = _hostile(tmp_path / "h.zip", ("a/../b.txt", b"x", 0o100644))
    assert unpack(archive, tmp_path / "out") == 1
    assert (tmp_path / "out" / "b.txt").read_text() == "x"


def test_unpack_refuses_a_link_outside_and_a_write_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    archive = _hostile(
        tmp_path / "h.zip",
        ("etc", str(victim).encode(), 0o120777),
        ("etc/passwd", b"owned", 0o100644),
    )
    with pytest.raises(ArtifactError, match="etc"):
        unpack(archive, tmp_path / "out")
    assert list(victim.iterdir()) == []


def test_unpack_refuses_a_relative_link_climbing_out(tmp_path: Path) -> None:
    archive = _hostile(tmp_path / "h.zip", ("up", b"../..", 0o120777))
    with pytest.raises(ArtifactError, match="up"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "up").is_symlink()


def test_unpack_refuses_a_link_chain_that_ends_outside(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    archive = _hostile(
        tmp_path / "h.zip",
        ("sub/", b"", 0o40755),
        ("a", b"sub/../b/x", 0o120777),  # inside while b does not exist yet
        ("b", b".", 0o120777),  # b is the root itself, so sub/../b/.. would climb out
        ("c", b"b/../victim", 0o120777),
        ("c/f", b"owned", 0o100644),
    )
    with pytest.raises(ArtifactError):
        unpack(archive, tmp_path / "out")
    assert list(victim.iterdir()) == []


def test_unpack_notices_a_link_redirected_by_a_later_link(tmp_path: Path) -> None:
    archive = _hostile(
        tmp_path / "h.zip",
        ("d/", b"", 0o40755),
        ("l", b"x/../../escape", 0o120777),  # x missing: lexically out already -> refused
    )
    with pytest.raises(ArtifactError, match="'l'"):
        unpack(archive, tmp_path / "out")
    archive = _hostile(
        tmp_path / "h2.zip",
        ("l", b"x/../y", 0o120777),  # resolves to out/y while x does not exist
        ("x", b".", 0o120777),  # now x/.. is the parent of out: l points outside
    )
    with pytest.raises(ArtifactError, match="outside"):
        unpack(archive, tmp_path / "out2")
    assert not (tmp_path / "out2" / "l").is_symlink()


def test_unpack_enforces_the_size_bound(tmp_path: Path) -> None:
    archive = _hostile(tmp_path / "h.zip", ("a", b"x" * 600, 0o100644), ("b", b"y" * 600, 0o100644))
    with pytest.raises(ArtifactError, match="'b'"):
        unpack(archive, tmp_path / "out", max_bytes=1000)
    assert unpack(archive, tmp_path / "out2", max_bytes=1200) == 2


def test_unpack_restores_folder_modes_after_writing_into_them(tmp_path: Path) -> None:
    archive = _hostile(tmp_path / "h.zip", ("ro/", b"", 0o40555), ("ro/f", b"f", 0o100400))
    unpack(archive, tmp_path / "out")
    assert stat.S_IMODE((tmp_path / "out" / "ro").stat().st_mode) == 0o555
    assert stat.S_IMODE((tmp_path / "out" / "ro" / "f").stat().st_mode) == 0o400
    (tmp_path / "out" / "ro").chmod(0o755)


def test_unpack_replaces_an_existing_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("safe")
    out = tmp_path / "out"
    out.mkdir()
    (out / "f").symlink_to(victim)
    unpack(_hostile(tmp_path / "h.zip", ("f", b"new", 0o100644)), out)
    assert victim.read_text() == "safe"
    assert (out / "f").read_text() == "new" and not (out / "f").is_symlink()


def test_unpack_reports_a_broken_zip(tmp_path: Path) -> None:
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match=r"bad\.zip"):
        unpack(tmp_path / "bad.zip", tmp_path / "out")


def test_unpack_gives_files_the_time_the_zip_records(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    for name, size in (("small.txt", 10), ("large.bin", 100_000)):
        (tmp_path / "src" / name).write_bytes(b"x" * size)
        os.utime(tmp_path / "src" / name, (1_000_000_000, 1_000_000_000))
    pack(tmp_path / "src", tmp_path / "a.zip")
    unpack(tmp_path / "a.zip", tmp_path / "out")
    for name in ("small.txt", "large.bin"):
        assert abs((tmp_path / "out" / name).stat().st_mtime - 1_000_000_000) <= 2
