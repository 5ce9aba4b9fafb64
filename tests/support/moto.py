"""moto's server on a free loopback port: the AWS endpoint that executors are tested against."""

from __future__ import annotations

import atexit
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest

from conveyor.config import Settings
from conveyor.server import Running, running

# What boto3 needs to sign requests to moto; moto accepts any credentials.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Shared:
    """One moto server per test process, started on first use and ended with the process:
    starting one costs seconds (it imports every service), resetting its state milliseconds."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def get(self) -> str:
        if self.process is None or self.process.poll() is not None:
            self.process, self.url = _start()
            atexit.register(_end, self.process)
        return self.url


def _start() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                _end(server)
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.05)


def _end(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


_SHARED = _Shared()


@contextmanager
def moto_server() -> Iterator[str]:
    """The URL of a moto server with nothing in it: this process's one, its state reset."""
    url = _SHARED.get()
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()
    yield url


def aws_client(service: str, endpoint: str, region: str = "us-east-1") -> Any:
    """A boto3 client of ``service`` on moto, for a test to look at what an action did."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@contextmanager
def server_calling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **changes: Any
) -> Iterator[Running]:
    """A Conveyor server (SQLite) whose executors sign their AWS calls with moto's test
    credentials; ``changes`` are settings (``aws_endpoints``, say)."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'conveyor.db'}", **changes
    )
    with running(settings) as live:
        yield live


def configure(endpoint: str, config: dict[str, Any]) -> None:
    """Change moto's own configuration (``{"stepfunctions": {"execute_state_machine": True}}``
    makes it run state machines instead of leaving their executions running)."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/config",
        data=json.dumps(config).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
