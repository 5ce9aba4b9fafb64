"""Homes for several servers on one database: one secret key, and their buckets one shared
folder, as a fleet with local buckets needs (`conveyor.engine.sharing`); and a `conveyor
worker` process for a server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conveyor.auth.cipher import KEY_FILE, secret_key


def shared_key(*homes: Path) -> None:
    """Give every home the first one's key file."""
    key = secret_key(homes[0])
    for home in homes[1:]:
        home.mkdir(parents=True, exist_ok=True)
        (home / KEY_FILE).write_bytes(key + b"\n")


def shared_buckets(shared: Path, *homes: Path) -> None:
    """Make each home's ``buckets`` a symbolic link to the folder ``shared``, and give them
    one key."""
    shared.mkdir(parents=True, exist_ok=True)
    for home in homes:
        home.mkdir(parents=True, exist_ok=True)
        (home / "buckets").symlink_to(shared, target_is_directory=True)
    shared_key(*homes)


@contextmanager
def worker_process(
    endpoint: str, home: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    log = open(home.parent / "worker.log", "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conveyor",
            "worker",
            "--endpoint",
            endpoint,
            "--home",
            str(home),
            *args,
        ],
        env={k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")} | (env or {}),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
