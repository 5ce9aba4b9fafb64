"""CodeBuild files: artifact selection and symbolic links, the cache, hostile input zips."""

from __future__ import annotations

import zipfile
from pathlib import Path

from conveyor.actions.base import ArtifactLocation, FailureType
from conveyor.artifacts.local import LocalBuckets
from tests.unit.test_codebuild import context, log_of, output, run, zipped

SYMLINKS = """\
version: 0.2
phases:
  build:
    commands:
      - mkdir -p dist/lib && echo lib > dist/lib/real.txt
      - ln -s real.txt dist/lib/alias.txt
      - echo outside > ../outside.txt && ln -s "$PWD/../outside.txt" dist/out.txt
      - ln -s lib dist/folder
      - ln -s /etc/passwd dist/host-file.txt
artifacts:
  base-directory: dist
  files: ['**/*']
"""


def _entries(tmp_path: Path, name: str) -> dict[str, tuple[bool, bytes]]:
    path = LocalBuckets(tmp_path / "buckets").path("art", f"out/{name}.zip")
    with zipfile.ZipFile(path) as archive:
        return {
            i.filename: ((i.external_attr >> 16) & 0o170000 == 0o120000, archive.read(i))
            for i in archive.infolist()
        }


def test_without_enable_symlinks_links_are_stored_as_the_files_they_point_to(  # not host files
    tmp_path: Path,
) -> None:
    result = run(tmp_path, context(tmp_path, SYMLINKS, outputs=(output("Out"),)))
    assert result.succeeded, result.message
    assert _entries(tmp_path, "Out") == {
        "folder/alias.txt": (False, b"lib\n"),
        "folder/real.txt": (False, b"lib\n"),
        "lib/alias.txt": (False, b"lib\n"),
        "lib/real.txt": (False, b"lib\n"),
        "out.txt": (False, b"outside\n"),
    }


def test_enable_symlinks_keeps_internal_links(tmp_path: Path) -> None:
    buildspec = SYMLINKS + "  enable-symlinks: yes\n"
    result = run(tmp_path, context(tmp_path, buildspec, outputs=(output("Out"),)))
    assert result.succeeded, result.message
    assert _entries(tmp_path, "Out") == {
        "folder": (True, b"lib"),
        "lib/alias.txt": (True, b"real.txt"),
        "lib/real.txt": (False, b"lib\n"),
        "out.txt": (False, b"outside\n"),  # it leads outside: stored as the file
    }


def test_an_output_zip_keeps_modes_times_empty_folders_and_the_order_of_a_walk(
    tmp_path: Path,
) -> None:
    """CodeBuild zips the chosen files as they are in the build's folder: an executable stays
    executable, a file keeps its time, an empty folder chosen by a glob is kept, and the
    entries come in the order of a walk of the folders by name."""
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - mkdir -p dist/a dist/a-b dist/empty && echo run > dist/a/run.sh && chmod 750 dist/a/run.sh
      - echo x > dist/a-b/x.txt && echo y > dist/a.txt && touch -d '2020-02-03 04:05:06' dist/a.txt
artifacts:
  base-directory: dist
  files: ['**/*']
"""
    result = run(tmp_path, context(tmp_path, buildspec, outputs=(output("Out"),)))
    assert result.succeeded, result.message
    path = LocalBuckets(tmp_path / "buckets").path("art", "out/Out.zip")
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == ["a/run.sh", "a-b/x.txt", "a.txt", "empty/"]
    modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
    assert modes["a/run.sh"] == 0o750
    assert next(i for i in infos if i.filename == "a.txt").date_time == (2020, 2, 3, 4, 5, 6)


def test_exclude_paths_and_base_directory_globs(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - mkdir -p build-a/logs build-b && touch build-a/a.bin build-a/logs/x.log build-b/b.bin
artifacts:
  base-directory: 'build-*'
  files: ['**/*']
  exclude-paths: ['logs/**/*', 'logs']
"""
    assert run(tmp_path, context(tmp_path, buildspec, outputs=(output("Out"),))).succeeded
    assert set(zipped(tmp_path, "Out")) == {"a.bin", "b.bin"}


def test_no_matching_artifact_paths_fails_the_upload(tmp_path: Path) -> None:
    buildspec = (
        "version: 0.2\nphases:\n  build:\n    commands: [true]\nartifacts:\n  files: [dist/*]\n"
    )
    job = context(tmp_path, buildspec, outputs=(output("Out"),))
    result = run(tmp_path, job)
    assert not result.succeeded
    assert result.summary is not None
    assert result.summary.startswith("Build failed in phase UPLOAD_ARTIFACTS: Output artifact Out")
    assert "no matching artifact paths found" in result.summary


def test_cache_paths_are_kept_between_builds_of_a_project(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  install:
    commands:
      - if [ -f deps/lib.txt ]; then echo "cache hit $(cat deps/lib.txt)"; else echo miss; fi
      - mkdir -p deps && echo "v1" > deps/lib.txt
cache:
  paths: ['deps/**/*', '/root/.cache/**/*']
"""
    first = context(tmp_path, buildspec)
    assert run(tmp_path, first, cache=tmp_path / "cache").succeeded
    assert "miss\n" in log_of(first)
    assert (tmp_path / "cache" / "app" / "default" / "deps" / "lib.txt").read_text() == "v1\n"
    second = context(tmp_path, buildspec, workspace="second")
    assert run(tmp_path, second, cache=tmp_path / "cache").succeeded
    assert "cache hit v1\n" in log_of(second)
    assert "/root/.cache/**/* stay where they are on this host" in log_of(second)


def test_a_cache_key_names_the_slot(tmp_path: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands: [mkdir -p deps && cp lock.txt deps/]
cache:
  key: deps-$(codebuild-hash-files lock.txt)
  paths: ['deps/**/*']
"""
    job = context(tmp_path, buildspec, files={"lock.txt": "pinned\n"})
    assert run(tmp_path, job, cache=tmp_path / "cache").succeeded
    (slot,) = (tmp_path / "cache" / "app").iterdir()
    assert slot.name.startswith("deps-") and len(slot.name) == len("deps-") + 64
    assert (slot / "deps" / "lock.txt").read_text() == "pinned\n"


def _hostile(tmp_path: Path, entries: dict[str, bytes]) -> ArtifactLocation:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for name, data in entries.items():
            out.writestr(name, data)
    LocalBuckets(tmp_path / "buckets").put("art", "in/evil.zip", archive)
    return ArtifactLocation("Src", "art", "in/evil.zip")


def test_a_hostile_input_zip_fails_cleanly(tmp_path: Path) -> None:
    inputs = (_hostile(tmp_path, {"buildspec.yml": b"version: 0.2", "../../escape.txt": b"x"}),)
    job = context(tmp_path, inputs=inputs)
    result = run(tmp_path, job)
    assert (result.succeeded, result.failure_type) == (False, FailureType.JOB_FAILED)
    assert result.message is not None
    assert result.message.startswith("DOWNLOAD_SOURCE failed: Input artifact Src: Unsafe entry")
    assert not (tmp_path / "escape.txt").exists()


def test_an_input_too_large_once_unpacked_fails(tmp_path: Path) -> None:
    inputs = (_hostile(tmp_path, {"big.bin": b"\0" * 200_000}),)
    result = run(tmp_path, context(tmp_path, inputs=inputs), max_artifact_bytes=100_000)
    assert result.message is not None and "over 100000 bytes" in result.message
