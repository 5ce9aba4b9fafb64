"""Slack and SNS targets, and an outbox that outlives its server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conveyor.config import Settings
from conveyor.notify.targets import Destination, Sender, SendFailed
from conveyor.server import running
from tests.conftest import make_client
from tests.notify.receiver import receiving
from tests.notify.test_delivery import FAILED, failing_pipeline, of, rule, run_again
from tests.support.engine import (
    approval,
    approval_token,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
)
from tests.support.moto import CREDENTIALS, aws_client, moto_server


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with moto_server() as url:
        yield url


def test_a_slack_target_gets_a_message_with_a_console_link(
    settings: Settings, tmp_path: Path
) -> None:
    with (
        running(replace(settings, public_url="https://ci.example.com")) as server,
        receiving() as receiver,
    ):
        client = make_client(server.endpoint)
        failing_pipeline(client, tmp_path)
        rule(server.endpoint, receiver.url, "Slack", EventTypeIds=[FAILED])
        execution = run_again(client)

        def mine() -> list[str]:
            return [t for r in receiver.got if execution in (t := r.json()["text"])]

        texts = wait_for(mine, what="a Slack message")
    assert texts[0].startswith("*app*: Pipeline Execution FAILED")
    assert f"<https://ci.example.com/pipelines/app/executions/{execution}|" in texts[0]


def test_an_sns_target_is_published_to(moto: str) -> None:
    """Published to moto's SNS, read back through an SQS subscription. (Through a server once
    ``aws_endpoints`` accepts ``sns``: its check is the job workers' and knows only the
    services actions call.)"""
    sns, sqs = aws_client("sns", moto), aws_client("sqs", moto)
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=attributes["Attributes"]["QueueArn"])
    note = {"detailType": "CodePipeline Pipeline Execution State Change", "detail": {"x": 1}}
    # A time-out a loaded machine's moto answers within; the message is read back as soon as
    # it is there, however long that takes, rather than within one fixed wait.
    sender = Sender("http://localhost", {"sns": moto}, "us-east-1", timeout=60)
    sender.send(Destination("SNS", topic), note)

    def received() -> list[Any]:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return list(got.get("Messages", []))

    messages = wait_for(received, what="the message in the queue")
    assert [json.loads(json.loads(m["Body"])["Message"]) for m in messages] == [note]
    with pytest.raises(SendFailed, match="SNS refused"):
        sender.send(Destination("SNS", topic.replace("alerts", "ghost")), note)
    with pytest.raises(SendFailed, match="no SNS endpoint"):
        Sender("http://localhost", {}, "us-east-1").send(Destination("SNS", topic), note)


def test_pending_deliveries_outlive_a_stopped_server(settings: Settings, tmp_path: Path) -> None:
    with receiving(failures=10**6, status=503) as receiver:
        with running(settings) as server:
            client = make_client(server.endpoint)
            failing_pipeline(client, tmp_path)
            rule(server.endpoint, receiver.url, EventTypeIds=[FAILED])
            execution = run_again(client)
            wait_for(lambda: receiver.got, what="a first attempt")

            def kept() -> list[Any]:
                with server.application.store.read() as tx:
                    return tx.deliveries.pending()

            wait_for(kept, what="the failed notification kept")  # at the next pass
        receiver.failures = 0
        with running(settings):
            notes = wait_for(lambda: of(receiver, execution), timeout=60, what="the delivery")
    assert notes[0]["detail"]["state"] == "FAILED"


def test_an_approval_notice_names_the_token_and_links(settings: Settings, tmp_path: Path) -> None:
    topic = "arn:aws:sns:us-east-1:000000000000:reviewers"
    repo = tmp_path / "repo"
    make_repo(repo, {"README": "x"})
    gate = approval(
        "Approve",
        NotificationArn=topic,
        ExternalEntityLink="https://example.com/change",
        CustomData="Look at the change",
    )
    with running(replace(settings, public_url="https://ci.example.com")) as server:
        client = make_client(server.endpoint)
        client.create_pipeline(pipeline=declaration("app", repo, stage("Gate", gate)))
        execution = wait_for(lambda: latest_execution_id(client, "app"), what="an execution")
        token = approval_token(client, "app", "Gate", "Approve")
        store = server.application.store

        def notice() -> list[Any]:
            with store.read() as tx:
                found = tx.deliveries.pending() + tx.deliveries.with_status("FAILED")
            return [d for d in found if d.address == topic]

        found = wait_for(notice, what="the approval notice")[0]
    message = found.payload
    assert message["region"] == "us-east-1"
    assert message["consoleLink"] == "https://ci.example.com/pipelines/app"
    approval_part = message["approval"]
    assert approval_part["pipelineName"] == "app"
    assert (approval_part["stageName"], approval_part["actionName"]) == ("Gate", "Approve")
    assert approval_part["token"] == token
    assert approval_part["externalEntityLink"] == "https://example.com/change"
    assert approval_part["customData"] == "Look at the change"
    assert approval_part["approvalReviewLink"].startswith("https://ci.example.com/pipelines/app")
    assert token in approval_part["approvalReviewLink"]
    assert len(approval_part["expires"]) == len("2026-12-08T17:26Z")
    assert execution
