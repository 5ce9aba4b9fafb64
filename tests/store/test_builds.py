"""Builds on the store, both databases: builds a stopped server left running, and StopBuild
taken by one server for a build another server runs."""

from __future__ import annotations

from pathlib import Path

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
