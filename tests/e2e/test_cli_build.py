"""``conveyor build [PATH]``: one local build of a folder, no server, no pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SPEC = (
    "version: 0.2\n"
    "env:\n  exported-variables: [VERSION]\n"
    "phases:\n"
    "  build:\n    commands:\n"
    '      - echo "hello $WHO"\n'
    "      - mkdir -p out && cp app.txt out/\n"
    "      - export VERSION=1.$CODEBUILD_BUILD_NUMBER\n"
    "artifacts:\n  files: ['**/*']\n  base-directory: out\n"
)


def conveyor_build(folder: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "CONVEYOR_HOME": str(tmp_path / "home"),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "build", str(folder), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_builds_a_folder_with_env_values_and_unpacks_its_artifacts(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "buildspec.yml").write_text(SPEC)
    (folder / "app.txt").write_text("the app\n")
    out = tmp_path / "out"
    done = conveyor_build(folder, tmp_path, "--env", "WHO=world", "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hello world" in done.stdout
    assert "Entering phase BUILD" in done.stdout
    assert "Build SUCCEEDED" in done.stdout
    assert "Exported VERSION=1.1" in done.stdout
    assert (out / "app.txt").read_text() == "the app\n"
    again = conveyor_build(folder, tmp_path)
    assert "Exported VERSION=1.2" in again.stdout, "build numbers count on across builds"


def test_a_failing_build_exits_1_naming_its_phase(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "buildspec.yml").write_text(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - 'false'\n"
    )
    done = conveyor_build(folder, tmp_path)
    assert done.returncode == 1
    assert "Build FAILED" in done.stdout
    assert "Phase complete: BUILD State: FAILED" in done.stdout


def test_buildspec_option_takes_a_file_outside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "app.txt").write_text("x\n")
    other = tmp_path / "buildspec-test.yml"
    other.write_text("version: 0.2\nphases:\n  build:\n    commands:\n      - echo from-test\n")
    done = conveyor_build(folder, tmp_path, "--buildspec", str(other))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "from-test" in done.stdout


def test_a_folder_without_a_buildspec_is_refused_saying_so(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    done = conveyor_build(folder, tmp_path)
    assert done.returncode == 1
    assert "buildspec.yml" in done.stdout
