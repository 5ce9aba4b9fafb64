"""`conveyor run FILE` as people run it: a subprocess, on a pipe or at a terminal (a pty)."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

from tests.e2e.runs import (
    NO_TERMINAL,
    at_terminal,
    conveyor_run,
    finish,
    pipeline_file,
    running,
    said,
    shell,
    start_run,
    wait_running,
)
from tests.support.engine import approval, commit, git, make_repo


def test_a_succeeding_run_names_every_action_and_sums_up(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo", {"README.md": "hello\n"})
    file = pipeline_file(
        tmp_path,
        ("Build", [shell("UnitTests", "grep -q hello README.md"), shell("Lint", "echo lint ok")]),
        ("Deploy", [shell("Ship", "echo shipped")]),
    )

    result = conveyor_run(file)

    assert result.returncode == 0, result.stdout + result.stderr
    for action in ("Source/Source", "Build/UnitTests", "Build/Lint", "Deploy/Ship"):
        assert said(result.stdout, f"{action} Succeeded"), action
    assert "Summary" in result.stdout
    assert "Execution Succeeded in" in result.stdout


def test_a_failing_run_exits_non_zero_and_shows_the_log_tail(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    file = pipeline_file(
        tmp_path,
        ("Build", [shell("Broken", "echo preparing", "echo the-last-words >&2; exit 3")]),
        ("Deploy", [shell("Ship", "echo shipped")]),
    )

    result = conveyor_run(file)

    assert result.returncode == 1
    assert "Build/Broken failed: " in result.stdout
    assert "| the-last-words" in result.stdout
    assert "Execution Failed" in result.stdout
    assert said(result.stdout, "Deploy/Ship Not run")


def test_var_sets_a_pipeline_variable(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    file = pipeline_file(
        tmp_path,
        (
            "Build",
            [
                shell(
                    "Check",
                    'test "#{variables.GREETING}" = "hi there" || { echo "got #{variables.GREETING}"; exit 1; }',
                )
            ],
        ),
        variables=[{"name": "GREETING", "defaultValue": "hello"}],
    )

    assert conveyor_run(file).returncode == 1
    result = conveyor_run(file, "--var", "GREETING=hi there")
    assert result.returncode == 0, result.stdout + result.stderr


def test_source_runs_a_local_folder_with_its_uncommitted_changes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, {"README.md": "committed\n", ".gitignore": "*.log\n"})
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(repo), str(work))
    (work / "README.md").write_text("modified\n")
    (work / "new.txt").write_text("untracked\n")
    (work / "build.log").write_text("ignored\n")
    file = pipeline_file(
        tmp_path,
        (
            "Build",
            [
                shell(
                    "Check",
                    "grep -qx modified README.md",
                    "grep -qx untracked new.txt",
                    "test ! -e build.log && test ! -e .git",
                    'echo "message: #{SRC.CommitMessage}"',
                    'test -n "#{SRC.CommitId}"',
                )
            ],
        ),
    )

    result = conveyor_run(file, "--source", f"Source={work}", "--home", tmp_path / "home")

    assert result.returncode == 0, result.stdout + result.stderr
    logs = "".join(p.read_text() for p in (tmp_path / "home" / "logs").iterdir())
    assert f"message: Local folder {work} as it is now" in logs
    assert git(work, "status", "--short").split("\n") == ["M README.md", "?? new.txt"]


def test_revision_runs_an_older_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    first = make_repo(repo, {"version.txt": "1\n"})
    commit(repo, {"version.txt": "2\n"}, "second")
    file = pipeline_file(tmp_path, ("Build", [shell("Check", "grep -qx 1 version.txt")]))

    assert conveyor_run(file).returncode == 1
    result = conveyor_run(file, "--revision", f"Source={first}")
    assert result.returncode == 0, result.stdout + result.stderr


def approval_pipeline(tmp_path: Path) -> Path:
    make_repo(tmp_path / "repo")
    gate = approval(
        "Gate",
        CustomData="Ship commit #{SRC.CommitId}?",
        ExternalEntityLink="https://review.invalid/1",
    )
    return pipeline_file(tmp_path, ("Release", [gate, shell("Ship", "echo shipped", run_order=2)]))


def test_approve_approves_every_approval(tmp_path: Path) -> None:
    result = conveyor_run(approval_pipeline(tmp_path), "--approve")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Release/Gate: approved (--approve)" in result.stdout
    assert said(result.stdout, "Release/Ship Succeeded")


def test_without_a_terminal_an_approval_fails_saying_how_to_approve(tmp_path: Path) -> None:
    result = conveyor_run(approval_pipeline(tmp_path))

    assert result.returncode == 1
    assert NO_TERMINAL in result.stdout
    assert said(result.stdout, "Release/Ship Not run")


def test_at_a_terminal_an_approval_is_asked(tmp_path: Path) -> None:
    status, output = at_terminal(
        [approval_pipeline(tmp_path)],
        [(b"Approve? [y/N]", b"y\r"), (b"Comment (optional):", b"fine by me\r")],
    )

    assert status == 0, output
    assert "Release/Gate waits for your approval" in output
    assert "Ship commit " in output and "https://review.invalid/1" in output
    assert "\x1b[" in output  # the live view, in colour
    assert "fine by me" in output


def test_no_color_at_a_terminal_prints_plain_lines(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    file = pipeline_file(tmp_path, ("Build", [shell("UnitTests", "echo ok")]))

    status, output = at_terminal([file], [], NO_COLOR="1")

    assert status == 0, output
    assert "\x1b" not in output
    assert said(output, "Build/UnitTests Succeeded")


def test_ctrl_c_stops_the_run_once_running_actions_finish(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    marker = f"conveyor-test-{uuid.uuid4().hex[:12]}"
    file = pipeline_file(
        tmp_path,
        ("Build", [shell("Nap", f"(exec -a {marker} sleep 1)", "echo woke up")]),
        ("After", [shell("Never", "echo never")]),
    )
    process = start_run(file)
    wait_running(process, marker)

    process.send_signal(signal.SIGINT)
    output = finish(process, timeout=15)

    assert process.returncode == 130
    assert "press Ctrl-C again to abandon them" in output
    assert said(output, "Build/Nap Succeeded")
    assert said(output, "After/Never Not run")
    assert "Execution Stopped" in output


def test_ctrl_c_twice_abandons_the_run_and_leaves_nothing_running(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    marker = f"conveyor-test-{uuid.uuid4().hex[:12]}"
    file = pipeline_file(
        tmp_path,
        ("Build", [shell("Sleep", "echo going to sleep", f"(exec -a {marker} sleep 30)")]),
        ("After", [shell("Never", "echo never")]),
    )
    process = start_run(file)
    wait_running(process, marker)

    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    output = finish(process, timeout=10)

    assert process.returncode == 130
    assert time.monotonic() - started < 6
    assert not running(marker)
    assert said(output, "Build/Sleep Abandoned")
    assert said(output, "After/Never Not run")
    assert "Execution Stopped" in output


def test_a_home_keeps_state_and_a_second_run_updates_the_pipeline(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    home = tmp_path / "home"
    first = pipeline_file(tmp_path, ("Build", [shell("One", "echo one > one.txt")]))
    assert conveyor_run(first, "--home", home).returncode == 0
    second = pipeline_file(tmp_path, ("Build", [shell("Two", "echo two")]))

    result = conveyor_run(second, "--home", home)

    assert result.returncode == 0, result.stdout + result.stderr
    assert said(result.stdout, "Build/Two Succeeded")
    assert f"Artifacts and deployed files: {home / 'buckets'}" in result.stdout
    assert (home / "conveyor.db").exists()
