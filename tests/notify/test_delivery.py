"""Notifications delivered from the events of real executions: to a signed webhook, after a
receiver's failures, never to a receiver that always fails, and as kept failures."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conveyor.config import Settings
from conveyor.notify.senders import back_off
from conveyor.server import Running, running
from tests.notify.receiver import Receiver, receiving
from tests.notify.test_rules_api import notifications_client
from tests.support.engine import (
    commands,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
    wait_status,
)

FAILED = "codepipeline-pipeline-pipeline-execution-failed"
ACTION_FAILED = "codepipeline-pipeline-action-execution-failed"
PIPELINE = "arn:aws:codepipeline:us-east-1:000000000000:app"


@pytest.fixture
def quick_server(settings: Settings) -> Iterator[Running]:
    """A server that gives up on a failing target after a few seconds."""
    with running(replace(settings, notification_retry_hours=4 / 3600)) as live:
        yield live


def failing_pipeline(client: Any, tmp_path: Path) -> str:
    """A pipeline whose executions fail in their Build action; its first execution is over."""
    repo = tmp_path / "repo"
    make_repo(repo, {"README": "x"})
    spec = declaration("app", repo, stage("Build", commands("Fail", "echo broken; exit 3")))
    client.create_pipeline(pipeline=spec)
    first = wait_for(lambda: latest_execution_id(client, "app"), what="a first execution")
    wait_status(client, "app", first, "Failed", timeout=60)
    return str(first)


def rule(endpoint: str, address: str, target_type: str = "Webhook", **extra: Any) -> str:
    rules = notifications_client(endpoint)
    spec: dict[str, Any] = {
        "Name": "alerts",
        "EventTypeIds": [FAILED, ACTION_FAILED],
        "Resource": PIPELINE,
        "Targets": [{"TargetType": target_type, "TargetAddress": address}],
        "DetailType": "FULL",
        **extra,
    }
    arn: str = rules.create_notification_rule(**spec)["Arn"]
    return arn


def run_again(client: Any) -> str:
    execution: str = client.start_pipeline_execution(name="app")["pipelineExecutionId"]
    wait_status(client, "app", execution, "Failed", timeout=60)
    return execution


def of(receiver: Receiver, execution: str) -> list[dict[str, Any]]:
    return [
        r.json()
        for r, code in zip(receiver.got, receiver.answered, strict=False)
        if code == 200 and r.json()["detail"].get("execution-id") == execution
    ]


def test_a_failing_execution_is_delivered_to_a_signed_webhook(
    server: Running, client: Any, tmp_path: Path
) -> None:
    failing_pipeline(client, tmp_path)
    with receiving() as receiver:
        arn = rule(server.endpoint, receiver.url + "#secret=s3cr3t")
        execution = run_again(client)
        notes = wait_for(
            lambda: len(of(receiver, execution)) >= 2 and of(receiver, execution),
            what="two notifications",
        )
    kinds = [(n["detailType"], n["detail"]["state"]) for n in notes]
    assert kinds == [
        ("CodePipeline Action Execution State Change", "FAILED"),
        ("CodePipeline Pipeline Execution State Change", "FAILED"),
    ]
    action, pipeline = notes
    assert action["notificationRuleArn"] == arn
    assert action["source"] == "aws.codepipeline"
    assert action["resources"] == [PIPELINE]
    # AWS's processed shape: no envelope version or id; a FULL rule's extra attributes.
    assert "version" not in action and "id" not in action
    information = action["additionalAttributes"]["additionalInformation"]
    assert information
    assert pipeline["additionalAttributes"] == {
        "failedActionCount": 1,
        "failedActions": [{"action": "Fail", "additionalInformation": information}],
        "failedStage": "Build",
    }
    for got in receiver.got:
        expected = "sha256=" + hmac.new(b"s3cr3t", got.body, hashlib.sha256).hexdigest()
        assert got.headers["X-Conveyor-Signature-256"] == expected
    # The secret is kept sealed.
    with server.application.store.read() as tx:
        kept = tx.notifications.target(receiver.url)
    assert kept is not None and kept.secret is not None
    assert kept.secret.startswith("conveyor:sealed:") and "s3cr3t" not in kept.secret


def test_a_receiver_that_fails_twice_gets_it_the_third_time(
    server: Running, client: Any, tmp_path: Path
) -> None:
    failing_pipeline(client, tmp_path)
    with receiving(failures=2, status=503) as receiver:
        rule(server.endpoint, receiver.url, EventTypeIds=[FAILED])
        execution = run_again(client)
        wait_for(lambda: of(receiver, execution), timeout=60, what="the notification")
        assert receiver.answered[:3] == [503, 503, 200]
        assert len({r.body for r in receiver.got[:3]}) == 1


def test_a_receiver_that_never_succeeds_is_kept_as_failed(
    quick_server: Running, tmp_path: Path
) -> None:
    from tests.conftest import make_client

    client = make_client(quick_server.endpoint)
    failing_pipeline(client, tmp_path)
    with receiving(failures=10**6, status=410) as receiver:
        rule(quick_server.endpoint, receiver.url, EventTypeIds=[FAILED])
        run_again(client)
        store = quick_server.application.store

        def settled() -> list[Any]:
            with store.read() as tx:
                if tx.deliveries.pending():
                    return []
                return list(tx.deliveries.with_status("FAILED"))

        kept = wait_for(settled, timeout=60, what="every delivery kept as failed")
        # Retried with back-off (1 s, 2 s, ...) for the 4 s allowed, counted from when the
        # notification was made: one that waited behind another may get a single try.
        assert 2 <= kept[0].attempts <= 5
        assert all(1 <= k.attempts <= 5 for k in kept)
        assert kept[0].last_error == f"HTTP 410 from {receiver.url}"
        tries = len(receiver.got)
        assert tries == sum(k.attempts for k in kept)
        with store.read() as tx:
            target = tx.notifications.target(receiver.url)
        assert target is not None and target.status == "UNREACHABLE"
        # Kept, not retried in a loop.
        threading.Event().wait(2.5)
        assert len(receiver.got) == tries


def test_back_off_doubles_up_to_an_hour() -> None:
    assert [back_off(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert back_off(40) == 3600.0


def test_a_target_that_hangs_holds_up_no_other(
    server: Running, client: Any, tmp_path: Path
) -> None:
    failing_pipeline(client, tmp_path)
    with receiving() as stuck, receiving() as prompt:
        stuck.hanging.set()
        rules = notifications_client(server.endpoint)
        rules.create_notification_rule(
            Name="both",
            EventTypeIds=[FAILED],
            Resource=PIPELINE,
            Targets=[
                {"TargetType": "Webhook", "TargetAddress": stuck.url},
                {"TargetType": "Webhook", "TargetAddress": prompt.url},
            ],
            DetailType="BASIC",
        )
        execution = run_again(client)
        wait_for(lambda: stuck.got, what="the stuck target to be called")
        # The stuck target holds its request (for up to the 10 s time-out); the other target
        # and the engine go on.
        notes = wait_for(lambda: of(prompt, execution), timeout=60, what="the prompt target")
        assert notes[0]["detail"]["state"] == "FAILED"
        assert "additionalAttributes" not in notes[0]
        assert run_again(client)
