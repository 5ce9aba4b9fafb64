"""Running blocking work (every store call) off the event loop, a few threads at a time.

The event loop only accepts connections, parses requests and writes answers; a store call
there, even a SQLite read of microseconds, stalls every other connection while it runs or
waits for a lock. So each handler runs in a worker thread. The threads are few: under load,
every extra thread running Python competes with the loop for the interpreter lock, and the
loop waits its turn at every socket call, so forty busy handler threads make a fresh
``/health`` wait as long as a slow handler does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

# Handler threads per server: for reads, and for writes, which queue for the database's
# write lock anyway (SQLite takes one writer at a time) and must not hold up the reads. Each
# busy one takes the interpreter lock from the loop and the workers: with 200 executions
# started at once and 50 readers, 2 and 1 gave a fresh /health a p99 of 110-125 ms and saw
# 160-180 executions through in 20 s, where 6 and 3 gave 307 ms and 68 executions.
READ_THREADS = 2
WRITE_THREADS = 1

T = TypeVar("T")


class Offloader:
    """Runs ``func(*args)`` in a worker thread, a few reads and a few writes at once. One per
    app: a limiter belongs to the event loop that first uses it."""

    def __init__(self, reads: int = READ_THREADS, writes: int = WRITE_THREADS) -> None:
        self._reads = CapacityLimiter(reads)
        self._writes = CapacityLimiter(writes)

    async def __call__(self, func: Callable[..., T], *args: object, write: bool = False) -> T:
        limiter = self._writes if write else self._reads
        return await anyio.to_thread.run_sync(func, *args, limiter=limiter)
