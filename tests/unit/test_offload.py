"""Handlers run off the event loop, a few reads and fewer writes at once, and a write never
waits behind the reads."""

from __future__ import annotations

import threading
import time

import anyio

from conveyor.api.offload import READ_THREADS, WRITE_THREADS, Offloader

DEADLINE = 60.0


class Gauge:
    """How many calls run at once, at most, per kind; each call waits for ``release``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = {"read": 0, "write": 0}
        self.most = {"read": 0, "write": 0}
        self.release = threading.Event()

    def call(self, kind: str) -> str:
        with self.lock:
            self.now[kind] += 1
            self.most[kind] = max(self.most[kind], self.now[kind])
        self.release.wait(DEADLINE)
        with self.lock:
            self.now[kind] -= 1
        return kind

    def wait_for(self, kind: str, count: int) -> None:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            with self.lock:
                if self.now[kind] >= count:
                    return
            time.sleep(0.01)
        raise AssertionError(f"{count} {kind} calls never ran at once")


def test_reads_and_writes_run_a_few_at_a_time_and_writes_pass_the_reads() -> None:
    gauge = Gauge()
    done: list[str] = []

    async def main() -> None:
        offload = Offloader()

        async def one(kind: str) -> None:
            done.append(await offload(gauge.call, kind, write=kind == "write"))

        async with anyio.create_task_group() as group:
            for _ in range(READ_THREADS * 3):
                group.start_soon(one, "read")
            for _ in range(WRITE_THREADS * 3):
                group.start_soon(one, "write")
            # Every read thread busy: the writes still get theirs.
            await anyio.to_thread.run_sync(gauge.wait_for, "read", READ_THREADS)
            await anyio.to_thread.run_sync(gauge.wait_for, "write", WRITE_THREADS)
            await anyio.sleep(0.2)  # room for a call beyond the limits to start, if it could
            gauge.release.set()

    anyio.run(main)
    assert gauge.most == {"read": READ_THREADS, "write": WRITE_THREADS}
    assert sorted(done) == ["read"] * (READ_THREADS * 3) + ["write"] * (WRITE_THREADS * 3)
