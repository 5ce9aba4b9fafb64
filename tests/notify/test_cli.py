"""``conveyor notifications failed`` lists what was given up on; ``retry ID`` sends it again."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from conveyor.cli.main import cli
from conveyor.config import Settings
from conveyor.server import running
from tests.conftest import make_client
from tests.notify.receiver import receiving
from tests.notify.test_delivery import FAILED, failing_pipeline, of, rule, run_again
from tests.support.engine import wait_for


def test_failed_notifications_are_listed_and_sent_again(settings: Settings, tmp_path: Path) -> None:
    quick = replace(settings, notification_retry_hours=2 / 3600)
    place = ["--home", str(settings.home), "--database", settings.database]
    runner = CliRunner()
    with running(quick) as server, receiving(failures=10**6, status=500) as receiver:
        client = make_client(server.endpoint)
        failing_pipeline(client, tmp_path)
        rule(server.endpoint, receiver.url, EventTypeIds=[FAILED])
        execution = run_again(client)

        def listed() -> list[dict[str, Any]]:
            result = runner.invoke(cli, ["notifications", "failed", "--json", *place])
            assert result.exit_code == 0, result.output
            rows: list[dict[str, Any]] = json.loads(result.output)
            return rows

        store = server.application.store

        def settled() -> list[dict[str, Any]]:
            # Every notification given up on (none still being retried), as listed.
            with store.read() as tx:
                if tx.deliveries.pending():
                    return []
            return listed()

        rows = wait_for(settled, timeout=60, what="the notifications given up on")
        assert rows[0]["Target"] == receiver.url
        assert rows[0]["Event"] == "CodePipeline Pipeline Execution State Change"
        assert rows[0]["LastError"] == f"HTTP 500 from {receiver.url}"
        text = runner.invoke(cli, ["notifications", "failed", *place])
        assert f"{rows[0]['Id']}\tapp\t" in text.output
        receiver.failures = 0
        for row in rows:
            again = runner.invoke(cli, ["notifications", "retry", str(row["Id"]), *place])
            assert again.exit_code == 0, again.output
        wait_for(lambda: of(receiver, execution), timeout=60, what="the notification")
        wait_for(lambda: not listed(), timeout=60, what="nothing failed")
        twice = runner.invoke(cli, ["notifications", "retry", str(rows[0]["Id"]), *place])
        assert twice.exit_code != 0
        assert "not failed" in twice.output
        missing = runner.invoke(cli, ["notifications", "retry", "999999", *place])
        assert "there is no notification 999999" in missing.output
