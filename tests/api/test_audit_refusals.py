"""Requests refused before the API reads them (a Host that is not the server's, a body too
large or too slow) are in the audit trail too; and a policy decision that reads resource tags
runs off the event loop. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from conveyor.api.limits import MAX_BODY_BYTES, limit_bodies
from conveyor.auth.gate import Access, Caller
from conveyor.config import Settings
from conveyor.domain.errors import ConveyorError
from conveyor.server import Running, running
from tests.support.auth import allow, make_user, send, signed_client, signed_request
from tests.support.engine import approval, declaration, make_repo, stage

AUDITOR = [allow("cloudtrail:LookupEvents")]


@pytest.fixture
def secured(settings: Settings) -> Iterator[Running]:
    with running(replace(settings, auth="required")) as live:
        yield live


def refusals(live: Running, code: str) -> list[dict[str, Any]]:
    trail = signed_client(live, make_user(live, "auditor", policies=AUDITOR), "cloudtrail")
    found = [json.loads(e["CloudTrailEvent"]) for e in trail.lookup_events()["Events"]]
    return [e for e in found if e.get("errorCode") == code]


def test_a_request_for_another_host_is_recorded(secured: Running) -> None:
    key = make_user(secured, "alice", managed=["AWSCodePipeline_FullAccess"])
    request = signed_request(secured, "ListPipelines", {}, key)
    request.headers["User-Agent"] = "rebinding-page/1.0"
    status, _ = send(
        secured,
        request,
        lambda headers: [(k, "evil.example" if k.lower() == "host" else v) for k, v in headers],
    )
    assert status == 421
    (event,) = refusals(secured, "MisdirectedRequestException")
    assert event["eventName"] == "ListPipelines"
    assert event["eventSource"] == "codepipeline.amazonaws.com"
    assert "does not name this server" in event["errorMessage"]
    assert event["sourceIPAddress"] == "127.0.0.1"
    assert event["userAgent"] == "rebinding-page/1.0"
    assert event["userIdentity"] == {
        "type": "Unknown",
        "accountId": "000000000000",
        "accessKeyId": key[0],
    }
    assert event["requestID"] and event["eventID"]


def test_a_page_for_another_host_is_recorded_by_its_path(secured: Running) -> None:
    parts = urlsplit(secured.endpoint)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request("GET", "/pipelines", headers={"Host": "evil.example"})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 421
    (event,) = refusals(secured, "MisdirectedRequestException")
    assert event["eventName"] == "/pipelines"
    assert event["userIdentity"]["accessKeyId"] == "anonymous"  # no key is claimed
    assert event["requestID"] == response.headers["x-amzn-RequestId"]


def test_a_body_too_large_is_recorded_without_being_read(secured: Running) -> None:
    key = make_user(secured, "alice", managed=["AWSCodePipeline_FullAccess"])
    request = signed_request(secured, "CreatePipeline", {}, key)
    parts = urlsplit(secured.endpoint)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        # The length says more than is ever sent: the answer cannot wait for the body.
        connection.putrequest("POST", "/", skip_accept_encoding=True)
        for name, value in request.headers.items():
            connection.putheader(name, str(value))
        connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
        connection.endheaders(b"{}")
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 413
    (event,) = refusals(secured, "RequestEntityTooLargeException")
    assert event["eventName"] == "CreatePipeline"
    assert str(MAX_BODY_BYTES) in event["errorMessage"]
    assert event["userIdentity"]["accessKeyId"] == key[0]
    assert event["requestID"] == response.headers["x-amzn-RequestId"]
    assert event["readOnly"] is False


def test_a_body_too_slow_is_told_to_the_trail() -> None:
    told: list[tuple[str, str]] = []

    def refused(scope: Mapping[str, Any], error: ConveyorError, request_id: str) -> None:
        told.append((error.code, request_id))

    async def never_called(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("a refused request reached the app")

    async def trickle() -> dict[str, Any]:
        await asyncio.sleep(10)
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[dict[str, Any]] = []

    async def collect(message: Any) -> None:
        sent.append(message)

    app = limit_bodies(never_called, seconds=0.05, refused=refused)
    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    asyncio.run(app(scope, trickle, collect))
    assert sent[0]["status"] == 408
    headers = dict(sent[0]["headers"])
    assert told == [("RequestTimeoutException", headers[b"x-amzn-requestid"].decode())]


def test_a_resource_tag_condition_reads_tags_off_the_event_loop(
    secured: Running, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    admin = signed_client(
        secured, make_user(secured, "admin", managed=["AWSCodePipeline_FullAccess"])
    )
    repo = tmp_path / "repo"
    make_repo(repo)
    admin.create_pipeline(
        pipeline=declaration("mine", repo, stage("Gate", approval())),
        tags=[{"key": "team", "value": "web"}],
    )
    on_loop: list[bool] = []
    read_tags = Access._tags

    def spied(self: Access, caller: Caller, resource: str) -> Mapping[str, str]:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return read_tags(self, caller, resource)

    monkeypatch.setattr(Access, "_tags", spied)
    web = {"StringEquals": {"aws:ResourceTag/team": "web"}}
    member = signed_client(
        secured,
        make_user(secured, "web", policies=[allow("codepipeline:GetPipeline", Condition=web)]),
    )
    assert member.get_pipeline(name="mine")["pipeline"]["name"] == "mine"
    assert on_loop and not any(on_loop)
