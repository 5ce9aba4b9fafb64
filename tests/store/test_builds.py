"""Builds on the store, both databases: builds a stopped server left running, and StopBuild
taken by one server for a build another server runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conveyor.actions.base import ProviderConfig
from conveyor.artifacts.local import LocalBuckets
from conveyor.builds import BuildPool
from conveyor.domain.arn import Scope
from conveyor.domain.builds import Timeline
from conveyor.engine.builds import BuildService
from conveyor.engine.clock import SystemClock
from conveyor.store import BuildRecord, ProjectRecord, Store
from tests.support.engine import wait_for

SCOPE = Scope("us-east-1", "000000000000")


def build_row(build_id: str, **data: str) -> BuildRecord:
    timeline = Timeline().enter("SUBMITTED", 1.0).enter("BUILD", 2.0)
    return BuildRecord(
        build_id, "app", 1, "IN_PROGRESS", 1.0, None, {**data, "phases": timeline.dump()}
    )


def test_recover_faults_this_nodes_builds_and_orphaned_pipeline_builds(store: Store) -> None:
    service = BuildService(store, SCOPE, SystemClock())
    with store.write() as tx:
        tx.builds.insert(build_row("app:mine", node="n1"))
        tx.builds.insert(build_row("app:other", node="n2"))
        tx.builds.insert(build_row("app:piped", initiator="codepipeline/p"))
    assert service.recover("n1") == 2
    with store.read() as tx:
        found = tx.builds.get_many(["app:mine", "app:other", "app:piped"])
    assert {k: v.status for k, v in found.items()} == {
        "app:mine": "FAULT",
        "app:other": "IN_PROGRESS",
        "app:piped": "FAULT",
    }
    [build] = service.batch_get(["app:mine"])[0]
    assert build["phases"][-2]["phaseStatus"] == "FAULT"
    assert build["phases"][-1]["phaseType"] == "COMPLETED"


def test_stop_build_taken_by_another_server_stops_the_build_where_it_runs(
    store: Store, tmp_path: Path
) -> None:
    """Server A runs the build; server B (same database, no such build of its own) takes the
    StopBuild: A sees the request and stops it."""
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 600\n"
    definition = {
        "source": {"type": "NO_SOURCE", "buildspec": spec},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {"type": "LINUX_CONTAINER", "image": "x", "computeType": "y"},
        "timeoutInMinutes": 60,
    }
    with store.write() as tx:
        tx.projects.insert(ProjectRecord("app", definition, 1.0, 1.0))
    home = tmp_path / "home"
    home.mkdir()
    server_a = BuildService(store, SCOPE, SystemClock())
    config = ProviderConfig(home=home, builds=server_a)
    pool = BuildPool(server_a, config, LocalBuckets(home / "buckets"), home, size=1, node="a")
    pool.start()
    try:
        build_id = server_a.start({"projectName": "app"}, "tester")["id"]

        def in_build() -> bool:
            [build] = server_a.batch_get([build_id])[0]
            return bool(build["currentPhase"] == "BUILD")

        wait_for(in_build, 60, "the build to reach BUILD")
        server_b = BuildService(store, SCOPE, SystemClock())
        answer = server_b.stop(build_id)
        assert answer["buildStatus"] == "IN_PROGRESS"

        def stopped() -> str | None:
            [build] = server_b.batch_get([build_id])[0]
            return str(build["buildStatus"]) if build["buildComplete"] else None

        assert wait_for(stopped, 60, "the build to stop") == "STOPPED"
    finally:
        pool.close()


class SteppedClock:
    """The system's time, moved on by ``skip`` seconds when a test says so."""

    def __init__(self) -> None:
        self.skip = 0.0

    def now(self) -> float:
        return SystemClock().now() + self.skip


def test_a_build_waiting_for_a_thread_past_its_queued_timeout_times_out(
    store: Store, tmp_path: Path
) -> None:
    """One build thread, held by a first build: the second waits in QUEUED. Before its queued
    timeout (StartBuild's override, 5 minutes) it stays queued; once the clock passes it,
    it ends TIMED_OUT in QUEUED, as CodeBuild reports a build that timed out in the queue,
    and it does not run when the thread is free again."""
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 600\n"
    definition = {
        "source": {"type": "NO_SOURCE", "buildspec": spec},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {"type": "LINUX_CONTAINER", "image": "x", "computeType": "y"},
        "timeoutInMinutes": 60,
        "queuedTimeoutInMinutes": 480,
    }
    with store.write() as tx:
        tx.projects.insert(ProjectRecord("app", definition, 1.0, 1.0))
    home = tmp_path / "home"
    home.mkdir()
    clock = SteppedClock()
    service = BuildService(store, SCOPE, clock)
    config = ProviderConfig(home=home, builds=service)
    pool = BuildPool(service, config, LocalBuckets(home / "buckets"), home, size=1, node="a")
    pool.start()
    try:
        first = service.start({"projectName": "app"}, "tester")["id"]

        def phase_of(build_id: str) -> str:
            [build] = service.batch_get([build_id])[0]
            return str(build["currentPhase"])

        wait_for(lambda: phase_of(first) == "BUILD", 60, "the first build to reach BUILD")
        second = service.start(
            {"projectName": "app", "queuedTimeoutInMinutesOverride": 5}, "tester"
        )["id"]
        assert service.expire_queued([second]) == []
        clock.skip = 4 * 60.0
        assert service.expire_queued([second]) == []
        [build] = service.batch_get([second])[0]
        assert (build["buildStatus"], build["currentPhase"]) == ("IN_PROGRESS", "QUEUED")
        assert build["queuedTimeoutInMinutes"] == 5

        clock.skip = 5 * 60.0 + 1

        def ended() -> dict[str, Any] | None:
            [build] = service.batch_get([second])[0]
            return build if build["buildComplete"] else None

        build = wait_for(ended, 60, "the queued build to time out")
        assert build["buildStatus"] == "TIMED_OUT"
        assert [p["phaseType"] for p in build["phases"]] == ["SUBMITTED", "QUEUED", "COMPLETED"]
        queued = build["phases"][1]
        assert queued["phaseStatus"] == "TIMED_OUT"
        [context] = queued["contexts"]
        assert context["statusCode"] == "BUILD_TIMED_OUT"
        assert "queued timeout of 5 minutes" in context["message"]
        assert phase_of(first) == "BUILD"

        service.stop(first)
        wait_for(lambda: phase_of(first) == "COMPLETED", 60, "the first build to stop")
        third = service.start({"projectName": "app"}, "tester")["id"]
        wait_for(lambda: phase_of(third) == "BUILD", 60, "the next build to take the thread")
        [build] = service.batch_get([second])[0]
        assert build["buildStatus"] == "TIMED_OUT"
        assert len(build["phases"]) == 3
        service.stop(third)
    finally:
        pool.close()


def test_a_thread_does_not_run_a_build_that_waited_past_its_queued_timeout(
    store: Store, tmp_path: Path
) -> None:
    """`take`, as a free thread takes a build: one within its queued timeout runs, one past
    it ends TIMED_OUT there, one that already ended does not run."""
    service = BuildService(store, SCOPE, SystemClock())
    timeline = Timeline().enter("SUBMITTED", 1.0).enter("QUEUED", 1.0)
    late = {"queuedTimeoutInMinutes": 5, "phases": timeline.dump()}
    now = SystemClock().now()
    with store.write() as tx:
        tx.builds.insert(BuildRecord("app:late", "app", 0, "IN_PROGRESS", now - 301, None, late))
        tx.builds.insert(BuildRecord("app:soon", "app", 0, "IN_PROGRESS", now - 200, None, late))
        tx.builds.insert(BuildRecord("app:done", "app", 0, "STOPPED", now - 301, now, late))
    assert service.take("app:soon") is True
    assert service.take("app:late") is False
    assert service.take("app:done") is False
    found, _ = service.batch_get(["app:late", "app:soon", "app:done"])
    assert [b["buildStatus"] for b in found] == ["TIMED_OUT", "IN_PROGRESS", "STOPPED"]
