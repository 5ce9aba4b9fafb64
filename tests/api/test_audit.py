"""The audit trail: a CloudTrail event for every call, read back with boto3's cloudtrail
client and the AWS CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conveyor.auth.audit import HIDDEN, LOCK, AuditTrail
from conveyor.config import Settings
from conveyor.server import Running, running
from conveyor.store import Store
from tests.conftest import make_client, sqlite_only
from tests.support.auth import allow, make_user, signed_client
from tests.support.engine import approval, declaration, make_repo, stage, wait_for

AUDITOR = [allow("cloudtrail:LookupEvents")]
# What `AuditTrail.record` is told of a read-only call by alice.
READ_CALL: dict[str, Any] = {
    "event_source": "codepipeline.amazonaws.com",
    "caller": {"type": "IAMUser", "userName": "alice", "accessKeyId": "AKIA"},
    "source_ip": "127.0.0.1",
    "user_agent": "test",
    "request_id": "r",
    "read_only": True,
    "resource": None,
    "params": {},
}


@pytest.fixture
def secured(settings: Settings) -> Iterator[Running]:
    with running(replace(settings, auth="required")) as live:
        yield live


def events(trail: Any, **query: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = trail.lookup_events(**query)["Events"]
    return found


def test_allowed_and_refused_calls_are_recorded(secured: Running) -> None:
    reader_key = make_user(secured, "reader", managed=["AWSCodePipeline_ReadOnlyAccess"])
    reader = signed_client(secured, reader_key)
    trail = signed_client(secured, make_user(secured, "auditor", policies=AUDITOR), "cloudtrail")
    reader.list_pipelines()
    with pytest.raises(ClientError):
        reader.delete_pipeline(name="app")
    found = events(
        trail, LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "reader"}]
    )
    assert [e["EventName"] for e in found] == ["DeletePipeline", "ListPipelines"]
    refused, allowed = (json.loads(e["CloudTrailEvent"]) for e in found)
    assert found[0]["AccessKeyId"] == reader_key[0]
    assert found[0]["EventSource"] == "codepipeline.amazonaws.com"
    assert found[0]["Resources"] == [
        {"ResourceType": "AWS::CodePipeline::Pipeline", "ResourceName": "app"}
    ]
    assert found[1]["ReadOnly"] == "true"
    assert isinstance(found[0]["EventTime"], datetime)
    assert refused["errorCode"] == "AccessDeniedException"
    assert refused["errorMessage"].startswith("User: arn:aws:iam::000000000000:user/reader is not")
    assert refused["requestParameters"] == {"name": "app"}
    assert refused["userIdentity"] == {
        "type": "IAMUser",
        "arn": "arn:aws:iam::000000000000:user/reader",
        "accountId": "000000000000",
        "accessKeyId": reader_key[0],
        "userName": "reader",
        "principalId": refused["userIdentity"]["principalId"],
    }
    assert refused["userIdentity"]["principalId"].startswith("AIDA")
    for event in (refused, allowed):
        assert event["awsRegion"] == "us-east-1"
        assert event["sourceIPAddress"] == "127.0.0.1"
        assert "Boto3" in event["userAgent"] or "botocore" in event["userAgent"]
        assert event["requestID"] and event["eventID"]
    assert "errorCode" not in allowed


def test_calls_refused_before_authentication_are_recorded(secured: Running) -> None:
    trail = signed_client(secured, make_user(secured, "auditor", policies=AUDITOR), "cloudtrail")
    with pytest.raises(ClientError):
        signed_client(secured, ("AKIANOBODYNOBODY0000", "x")).get_pipeline(name="app")
    [event] = events(
        trail,
        LookupAttributes=[
            {"AttributeKey": "AccessKeyId", "AttributeValue": "AKIANOBODYNOBODY0000"}
        ],
    )
    record = json.loads(event["CloudTrailEvent"])
    assert record["errorCode"] == "UnrecognizedClientException"
    assert record["eventName"] == "GetPipeline"


def test_mutations_record_their_response_and_secrets_are_masked(
    secured: Running, tmp_path: Path
) -> None:
    admin = signed_client(
        secured, make_user(secured, "admin", managed=["AWSCodePipeline_FullAccess"])
    )
    make_repo(tmp_path / "repo")
    admin.create_pipeline(pipeline=declaration("app", tmp_path / "repo", stage("Gate", approval())))
    trail = signed_client(secured, make_user(secured, "auditor", policies=AUDITOR), "cloudtrail")
    admin.put_webhook(
        webhook={
            "name": "hook",
            "targetPipeline": "app",
            "targetAction": "Source",
            "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/main"}],
            "authentication": "GITHUB_HMAC",
            "authenticationConfiguration": {"SecretToken": "very-secret"},
        }
    )
    [event] = events(
        trail, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "PutWebhook"}]
    )
    assert "very-secret" not in event["CloudTrailEvent"]
    record = json.loads(event["CloudTrailEvent"])
    config = record["requestParameters"]["webhook"]["authenticationConfiguration"]
    assert config == {"SecretToken": HIDDEN}
    assert record["responseElements"]["webhook"]["definition"]["name"] == "hook"
    assert event["Resources"] == [
        {"ResourceType": "AWS::CodePipeline::Webhook", "ResourceName": "hook"}
    ]


def test_lookup_pages_and_time_ranges(secured: Running) -> None:
    reader = signed_client(
        secured, make_user(secured, "reader", managed=["AWSCodePipeline_ReadOnlyAccess"])
    )
    trail = signed_client(secured, make_user(secured, "auditor", policies=AUDITOR), "cloudtrail")
    for _ in range(5):
        reader.list_pipelines()
    by_reader = [{"AttributeKey": "Username", "AttributeValue": "reader"}]
    seen: list[str] = []
    token: dict[str, str] = {}
    while True:
        page = trail.lookup_events(LookupAttributes=by_reader, MaxResults=2, **token)
        seen.extend(e["EventId"] for e in page["Events"])
        assert len(page["Events"]) <= 2
        if "NextToken" not in page:
            break
        token = {"NextToken": page["NextToken"]}
    assert len(seen) == len(set(seen)) == 5
    paginated = trail.get_paginator("lookup_events").paginate(LookupAttributes=by_reader)
    assert sum(len(p["Events"]) for p in paginated) == 5
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert events(trail, LookupAttributes=by_reader, StartTime=later) == []
    with pytest.raises(ClientError) as excinfo:
        trail.lookup_events(StartTime=later, EndTime=later - timedelta(hours=1))
    assert excinfo.value.response["Error"]["Code"] == "InvalidTimeRangeException"
    with pytest.raises(ClientError) as excinfo:
        trail.lookup_events(NextToken="forged")
    assert excinfo.value.response["Error"]["Code"] == "InvalidNextTokenException"
    twice = [*by_reader, {"AttributeKey": "Username", "AttributeValue": "other"}]
    with pytest.raises(ClientError) as excinfo:
        trail.lookup_events(LookupAttributes=twice)
    assert excinfo.value.response["Error"]["Code"] == "InvalidLookupAttributesException"
    read_only = [{"AttributeKey": "ReadOnly", "AttributeValue": "maybe"}]
    with pytest.raises(ClientError) as excinfo:
        trail.lookup_events(LookupAttributes=read_only)
    assert excinfo.value.response["Error"]["Code"] == "InvalidLookupAttributesException"


def test_lookup_events_needs_its_own_permission(secured: Running) -> None:
    admin_key = make_user(secured, "admin", managed=["AWSCodePipeline_FullAccess"])
    with pytest.raises(ClientError) as excinfo:
        signed_client(secured, admin_key, "cloudtrail").lookup_events()
    assert excinfo.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "cloudtrail:LookupEvents" in excinfo.value.response["Error"]["Message"]


@sqlite_only
def test_the_aws_cli_looks_up_events(secured: Running, tmp_path: Path) -> None:
    key_id, secret = make_user(secured, "auditor", policies=AUDITOR)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    aws = str(Path(sys.executable).with_name("aws"))
    with pytest.raises(ClientError):
        signed_client(secured, (key_id, secret)).list_pipelines()
    done = subprocess.run(
        [
            aws,
            "cloudtrail",
            "lookup-events",
            "--endpoint-url",
            secured.endpoint,
            "--max-results",
            "5",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    names = [e["EventName"] for e in json.loads(done.stdout)["Events"]]
    assert names == ["ListPipelines"]


def test_without_auth_calls_are_recorded_under_the_key_they_name(server: Running) -> None:
    make_client(server.endpoint, access_key="someone").list_pipelines()
    found = _cloudtrail(server).lookup_events(
        LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "someone"}]
    )["Events"]
    assert [e["EventName"] for e in found] == ["ListPipelines"]


def _cloudtrail(live: Running) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "cloudtrail",
        endpoint_url=live.endpoint,
        region_name="us-east-1",
        aws_access_key_id="conveyor",
        aws_secret_access_key="conveyor",
        config=Config(retries={"max_attempts": 1}),
    )


def test_old_events_are_pruned_after_the_retention(store: Store) -> None:
    now = [time.time()]
    audit = AuditTrail(store, "us-east-1", "000000000000", retention_days=1, clock=lambda: now[0])
    audit.record(event_name="ListPipelines", **READ_CALL)
    now[0] += 86400 / 2
    audit.record(event_name="GetPipeline", **READ_CALL)
    now[0] += 86400 * 0.75
    assert audit.prune() == 1
    assert [r.event_name for r in audit.lookup({}, None, None, 10)] == ["GetPipeline"]


@pytest.mark.postgres
def test_one_server_of_a_database_prunes_the_trail_and_another_takes_over(
    postgres_url: str,
) -> None:
    """Pruning is one duty of the servers sharing a database: the holder of the audit lock
    prunes; the others leave the records alone until it is gone, then one of them prunes."""
    first, second = Store.open(postgres_url), Store.open(postgres_url)
    now = [time.time()]
    trails = [
        AuditTrail(s, "us-east-1", "000000000000", 1, lambda: now[0], s.leadership(LOCK))
        for s in (first, second)
    ]
    try:
        holder, other = trails
        facts = {k: v for k, v in READ_CALL.items() if k != "request_id"}
        holder.record(event_name="ListPipelines", request_id="one", **facts)
        holder.flush()
        now[0] += 86400 * 2
        assert holder.prune() == 1
        other.record(event_name="GetPipeline", request_id="two", **facts)
        other.flush()
        now[0] += 86400 * 2
        assert other.prune() == 0  # the holder's duty
        assert [r.event_name for r in other.lookup({}, None, None, 10)] == ["GetPipeline"]
        holder.close()  # gives the lock up, as a server that stops (or dies) does
        # The lock goes with the holder's session, which its backend ends a moment later.
        assert wait_for(other.prune, timeout=10, what="the other trail to prune") == 1
        assert other.lookup({}, None, None, 10) == []
    finally:
        for trail in trails:
            trail.close()
        first.close()
        second.close()


def test_a_call_event_id_gives_its_request_id_back_and_a_repeated_one_is_still_kept(
    store: Store,
) -> None:
    """The event id is made from the request id, so the store keeps one; should a request
    be recorded twice, the batch takes fresh event ids rather than failing for ever."""
    audit = AuditTrail(store, "us-east-1", "000000000000")
    request_id = str(uuid.uuid4())
    facts: dict[str, Any] = {
        "event_source": "codepipeline.amazonaws.com",
        "caller": {"type": "IAMUser", "userName": "alice", "accessKeyId": "AKIA"},
        "source_ip": "127.0.0.1",
        "user_agent": "test",
        "request_id": request_id,
        "read_only": True,
        "resource": "arn:aws:codepipeline:us-east-1:000000000000:app",
        "params": {"name": "app"},
    }
    audit.record(event_name="GetPipeline", **facts)
    audit.flush()
    audit.record(event_name="GetPipeline", **facts)
    audit.flush()
    found = audit.lookup({}, None, None, 10)
    assert len(found) == 2 and len({r.event_id for r in found}) == 2
    records = [json.loads(r.record) for r in found]
    assert [r["requestID"] for r in records] == [request_id, request_id]
    assert [r["eventID"] for r in records] == [r.event_id for r in found]
    assert records[1]["resources"] == [
        {"ARN": "arn:aws:codepipeline:us-east-1:000000000000:app", "accountId": "000000000000"}
    ]


def test_secret_configuration_of_custom_actions_is_masked_in_the_trail(
    secured: Running, tmp_path: Path
) -> None:
    admin = signed_client(
        secured, make_user(secured, "admin", managed=["AWSCodePipeline_FullAccess"])
    )
    trail = signed_client(secured, make_user(secured, "auditor", policies=AUDITOR), "cloudtrail")
    admin.create_custom_action_type(
        category="Deploy",
        provider="Vault",
        version="1",
        configurationProperties=[
            {"name": "Target", "required": True, "key": True, "secret": False},
            {"name": "ApiKey", "required": True, "key": False, "secret": True},
        ],
        inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
    )
    make_repo(tmp_path / "repo")
    deploy = {
        "name": "Push",
        "actionTypeId": {
            "category": "Deploy",
            "owner": "Custom",
            "provider": "Vault",
            "version": "1",
        },
        "configuration": {"Target": "prod", "ApiKey": "abc-very-secret"},
        "inputArtifacts": [{"name": "Src"}],
    }
    admin.create_pipeline(pipeline=declaration("app", tmp_path / "repo", stage("Deploy", deploy)))
    [event] = events(
        trail, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreatePipeline"}]
    )
    assert "abc-very-secret" not in event["CloudTrailEvent"]
    record = json.loads(event["CloudTrailEvent"])
    [_, stage_record] = record["requestParameters"]["pipeline"]["stages"]
    assert stage_record["actions"][0]["configuration"]["Target"] == "prod"
