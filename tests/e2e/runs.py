"""Running `conveyor` as people do, for the end-to-end tests: a subprocess on a pipe, or at
a terminal (a pty) that answers its prompts; and pipeline files for local runs."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from conveyor.cli import warm

CONVEYOR = [sys.executable, "-m", "conveyor"]
NO_TERMINAL = "run again with --approve, or answer at a terminal"


def said(output: str, text: str) -> bool:
    """Whether ``output`` holds ``text``, however many spaces align its columns."""
    return re.sub(r"[ \t]+", " ", text) in re.sub(r"[ \t]+", " ", output)


def environment(**extra: str) -> dict[str, str]:
    """This environment without Conveyor's settings, warm start off (tests/e2e/test_warm.py
    turns it on), and ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR" and not k.startswith("CONVEYOR")}
    return {**env, "TERM": "xterm-256color", "CONVEYOR_WARM_START": "0", **extra}


def conveyor_run(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CONVEYOR, "run", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=environment(),
        timeout=timeout,
    )


Expected = bytes | re.Pattern[bytes]


def _find(output: bytes, expected: Expected, start: int) -> int:
    """Where ``expected`` ends in ``output`` after ``start``; -1 when it is not there yet."""
    if isinstance(expected, bytes):
        at = output.find(expected, start)
        return -1 if at < 0 else at + len(expected)
    found = expected.search(output, start)
    return -1 if found is None else found.end()


def at_terminal(
    args: Sequence[str | Path],
    answers: Sequence[tuple[Expected, bytes]],
    timeout: float = 30,
    command: str = "run",
    **env: str,
) -> tuple[int, str]:
    """Run `conveyor run` (or another ``command``) at a pty, answering each prompt once it appears (in order, each
    looked for after the last); exit status, output."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a 120-column terminal, then conveyor
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
            os.execve(CONVEYOR[0], [*CONVEYOR, command, *map(str, args)], environment(**env))
        finally:
            os._exit(127)
    output, pending, seen = b"", list(answers), 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the child is gone
                    break
                if not data:
                    break
                output += data
            if pending and (end := _find(output, pending[0][0], seen)) >= 0:
                seen = end
                os.write(fd, pending.pop(0)[1])
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"timed out; output so far:\n{output.decode(errors='replace')}")
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def shell(name: str, *lines: str, run_order: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "actionTypeId": {
            "category": "Compute",
            "owner": "AWS",
            "provider": "Commands",
            "version": "1",
        },
        "inputArtifacts": [{"name": "Src"}],
        "commands": list(lines),
        "runOrder": run_order,
    }


def pipeline_file(folder: Path, *stages: tuple[str, list[dict[str, Any]]], **extra: Any) -> Path:
    """A YAML pipeline in ``folder`` with a Git source on ``./repo`` (a relative path) and no
    roleArn or artifactStore, as people write them for local runs."""
    source = {
        "name": "Source",
        "namespace": "SRC",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "Git", "version": "1"},
        "configuration": {"RepositoryUrl": "repo", "BranchName": "main"},
        "outputArtifacts": [{"name": "Src"}],
    }
    declaration = {
        "name": "local",
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [source]},
            *({"name": name, "actions": actions} for name, actions in stages),
        ],
        **extra,
    }
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"pipeline": declaration}, sort_keys=False))
    return path


def start_run(file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CONVEYOR, "run", str(file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environment(),
        text=True,
    )


def wait_running(process: subprocess.Popen[str], marker: str) -> None:
    deadline = time.monotonic() + 20
    while not running(marker):
        assert process.poll() is None and time.monotonic() < deadline, "the action never started"
        time.sleep(0.05)


def finish(process: subprocess.Popen[str], timeout: float) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return output


@contextmanager
def warm_runtime() -> Iterator[Path]:
    """A runtime folder (``XDG_RUNTIME_DIR``) for warm processes, short since a socket's path
    has a limit; its warm processes are stopped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="cw-", dir="/tmp"))
    try:
        yield folder
    finally:
        hosts = folder / "conveyor"
        if hosts.is_dir():
            pids = warm.host_pids(str(hosts))
            warm.stop_hosts(str(hosts))
            assert gone(pids), "a warm process did not end on SIGTERM"
        shutil.rmtree(folder, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def gone(pids: list[int], timeout: float = 10) -> bool:
    """Whether every one of ``pids`` has ended within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def running(marker: str) -> bool:
    found = subprocess.run(["pgrep", "-f", marker], check=False, capture_output=True, text=True)
    return bool(found.stdout.strip())
