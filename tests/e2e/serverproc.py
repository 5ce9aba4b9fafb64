"""A `conveyor server` subprocess on a free loopback port, for end-to-end tests and the demo."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_up(endpoint: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"the server at {endpoint} did not answer within {timeout} s")


@contextmanager
def server_process(
    home: Path,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The server on ``port`` (a free one by default); its log in ``server-<port>.log``
    beside the home."""
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "conveyor",
        "server",
        "--port",
        str(port),
        "--home",
        str(home),
        *args,
    ]
    # The log goes to a file beside the home: a pipe nobody reads would fill and stall the
    # server once it has logged 64 KiB.
    log = open(home.parent / f"server-{port}.log", "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        wait_until_up(endpoint, process)
        yield endpoint, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
