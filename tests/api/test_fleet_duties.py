"""Several servers on one PostgreSQL database: one of them sweeps (leases, deadlines, queued
timeouts, retention) at a time, and another takes over within seconds when it goes."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from conveyor.config import Settings
from conveyor.server import running
from tests.support.engine import wait_for
from tests.support.fleet import shared_buckets

pytestmark = pytest.mark.postgres


def test_one_server_sweeps_and_another_takes_over_when_it_stops(
    postgres_url: str, tmp_path: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    shared_buckets(tmp_path / "buckets", one, two)
    first = Settings(home=one, database_url=postgres_url, detect_changes=False)
    second = Settings(home=two, database_url=postgres_url, detect_changes=False)
    with ExitStack() as one_stack, ExitStack() as two_stack:
        a = one_stack.enter_context(running(first)).application.services.sweeper
        b = two_stack.enter_context(running(second)).application.services.sweeper
        wait_for(lambda: a.leading or b.leading, 10, "a sweeping server")
        # Both have made a pass since; still one sweeps.
        wait_for(lambda: a.leading != b.leading, 10, "one sweeping server")
        leader, survivor = (a, b) if a.leading else (b, a)
        (one_stack if leader is a else two_stack).close()
        wait_for(lambda: survivor.leading, 10, "the other server to take over")
