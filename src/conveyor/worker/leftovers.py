"""What a worker pool left behind when its server died: process groups and workspaces.

While an action runs, the pool records each process group it starts in
``work/<job id>.process`` as the group's id and the leader's start time (from ``/proc``).
When the server starts again it ends every recorded group whose leader is still the same
process (a reused pid has another start time and is left alone), then removes the files and
workspaces.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path

log = logging.getLogger("conveyor.worker")
SUFFIX = ".process"


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb", buffering=0) as stat:
            text = stat.read(4096)
    except OSError:
        return None
    # Field 22; the command name in field 2 may contain spaces, so count after its ')'.
    return text.rsplit(b")", 1)[1].split()[19].decode()


def record(work: Path, job_id: str, pid: int) -> None:
    """Note the process group ``pid`` of job ``job_id``: each action's first process starts
    here, so this is a plain append, no buffered file."""
    line = f"{pid} {start_time(pid) or '?'}\n".encode()
    marker = os.open(work / f"{job_id}{SUFFIX}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(marker, line)
    finally:
        os.close(marker)


def forget(work: Path, job_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (work / f"{job_id}{SUFFIX}").unlink()


def clean(work: Path) -> int:
    """End the recorded process groups that still run; remove markers and workspaces.
    The number of process groups ended."""
    ended = 0
    if not work.is_dir():
        return 0
    for marker in work.glob(f"*{SUFFIX}"):
        for line in marker.read_text(encoding="utf-8").splitlines():
            pid_text, _, started = line.partition(" ")
            pid = int(pid_text)
            if started != "?" and start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                    ended += 1
        marker.unlink()
    for leftover in work.iterdir():
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
    if ended:
        log.warning("ended %d process groups left running by an earlier run", ended)
    return ended
