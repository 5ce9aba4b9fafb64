"""`conveyor run` as a newcomer meets it: a relative home, SIGTERM from a service manager or
`kill`, and an approval question that does not stop the live view."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.runs import (
    CONVEYOR,
    at_terminal,
    environment,
    finish,
    pipeline_file,
    said,
    shell,
)
from tests.support.engine import approval, make_repo


def test_a_relative_home_runs_git_sources(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo", {"README.md": "hello\n"})
    file = pipeline_file(tmp_path, ("Build", [shell("Check", "grep -q hello README.md")]))

    result = subprocess.run(
        [*CONVEYOR, "run", file.name, "--home", "state"],
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
        env=environment(),
        timeout=60,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert said(result.stdout, "Build/Check Succeeded")
    assert (tmp_path / "state" / "conveyor.db").exists()


def alive_in_group(group: int) -> list[str]:
    """The processes of process group ``group`` that are not zombies."""
    listed = subprocess.run(
        ["ps", "-e", "-o", "pgid=,pid=,stat="], check=True, capture_output=True, text=True
    )
    return [
        line
        for line in listed.stdout.splitlines()
        if line.split()[0] == str(group) and not line.split()[2].startswith("Z")
    ]


def test_sigterm_abandons_the_run_and_its_processes(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    pid_file = tmp_path / "build.pid"
    file = pipeline_file(
        tmp_path,
        ("Build", [shell("Sleep", f"echo $$ > {pid_file}", "sleep 60")]),
        ("After", [shell("Never", "echo never")]),
    )
    process = subprocess.Popen(
        [*CONVEYOR, "run", str(file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environment(),
        text=True,
    )
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert process.poll() is None and time.monotonic() < deadline, "the build never started"
        time.sleep(0.05)
    group = os.getpgid(int(pid_file.read_text()))
    assert alive_in_group(group)

    process.send_signal(signal.SIGTERM)
    output = finish(process, timeout=20)

    assert process.returncode == 128 + signal.SIGTERM, output
    assert "SIGTERM: abandoning the running actions" in output
    assert said(output, "Build/Sleep Abandoned")
    assert said(output, "After/Never Not run")
    assert "Execution Stopped" in output
    assert alive_in_group(group) == []


# The Gate row of the live view once it has waited a second or more: its clock runs on.
GATE_WAITED = re.compile(rb"Gate(?:\x1b\[[0-9;]*m|\s)+InProgress(?:\x1b\[[0-9;]*m|\s)+[1-9]\.\ds")


def test_the_live_view_keeps_its_clock_running_while_an_approval_is_asked(
    tmp_path: Path,
) -> None:
    make_repo(tmp_path / "repo")
    gate = approval("Gate", CustomData="Ship it?")
    file = pipeline_file(tmp_path, ("Release", [gate, shell("Ship", "echo shipped", run_order=2)]))

    status, output = at_terminal(
        [file],
        [
            (b"Approve? [y/N]", b""),
            (GATE_WAITED, b"y\r"),
            (b"Comment (optional):", b"fine by me\r"),
        ],
    )

    assert status == 0, output
    assert "Release/Gate: approved (fine by me)" in output
    assert "Ship it?" in output


def test_with_no_color_an_approval_is_asked_in_plain_lines(tmp_path: Path) -> None:
    make_repo(tmp_path / "repo")
    file = pipeline_file(
        tmp_path, ("Release", [approval("Gate"), shell("Ship", "echo shipped", run_order=2)])
    )

    status, output = at_terminal(
        [file],
        [(b"Approve? [y/N] ", b"n\n"), (b"Comment (optional): ", b"not today\n")],
        NO_COLOR="1",
    )

    assert status == 1, output
    assert "\x1b" not in output
    assert "Release/Gate: rejected (not today)" in output
    assert said(output, "Release/Ship Not run")
