"""Notification rules through the CodeStar Notifications API (REST-JSON), with boto3 and the
AWS CLI, on both databases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conveyor.server import Running
from tests.conftest import sqlite_only
from tests.support.declarations import pipeline
from tests.support.errors import code

PIPELINE = "arn:aws:codepipeline:us-east-1:000000000000:app"
TOPIC = "arn:aws:sns:us-east-1:000000000000:alerts"
HOOK = "https://hooks.example.com/conveyor"
FAILED = "codepipeline-pipeline-pipeline-execution-failed"
APPROVAL = "codepipeline-pipeline-manual-approval-needed"


def notifications_client(endpoint: str, *, validate: bool = True) -> Any:
    return boto3.client(
        "codestar-notifications",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="conveyor",
        aws_secret_access_key="conveyor",
        config=Config(
            parameter_validation=validate, retries={"mode": "standard", "max_attempts": 1}
        ),
    )


@pytest.fixture
def rules(server: Running, client: Any) -> Any:
    client.create_pipeline(pipeline=pipeline("app"))
    return notifications_client(server.endpoint)


def create(rules: Any, name: str = "alerts", **changes: Any) -> str:
    spec: dict[str, Any] = {
        "Name": name,
        "EventTypeIds": [FAILED],
        "Resource": PIPELINE,
        "Targets": [{"TargetType": "SNS", "TargetAddress": TOPIC}],
        "DetailType": "FULL",
        **changes,
    }
    arn: str = rules.create_notification_rule(**spec)["Arn"]
    return arn


def test_a_rule_is_created_described_listed_and_deleted(rules: Any) -> None:
    arn = create(rules, Tags={"team": "web"})
    assert arn.startswith("arn:aws:codestar-notifications:us-east-1:000000000000:notificationrule/")
    described = rules.describe_notification_rule(Arn=arn)
    assert described["Name"] == "alerts"
    assert described["Resource"] == PIPELINE
    assert described["DetailType"] == "FULL"
    assert described["Status"] == "ENABLED"
    assert described["Tags"] == {"team": "web"}
    assert described["EventTypes"] == [
        {
            "EventTypeId": FAILED,
            "ServiceName": "CodePipeline",
            "EventTypeName": "Pipeline execution: Failed",
            "ResourceType": "Pipeline",
        }
    ]
    assert described["Targets"] == [
        {"TargetAddress": TOPIC, "TargetType": "SNS", "TargetStatus": "ACTIVE"}
    ]
    assert described["CreatedTimestamp"] <= described["LastModifiedTimestamp"]
    listed = rules.list_notification_rules()["NotificationRules"]
    assert listed == [{"Id": arn.rpartition("/")[2], "Arn": arn}]
    assert rules.delete_notification_rule(Arn=arn)["Arn"] == arn
    assert rules.list_notification_rules()["NotificationRules"] == []
    with pytest.raises(ClientError) as excinfo:
        rules.describe_notification_rule(Arn=arn)
    assert code(excinfo) == "ResourceNotFoundException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_names_are_unique_unless_the_request_token_repeats(rules: Any) -> None:
    arn = create(rules, ClientRequestToken="first")
    assert create(rules, ClientRequestToken="first") == arn
    with pytest.raises(ClientError) as excinfo:
        create(rules)
    assert code(excinfo) == "ResourceAlreadyExistsException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_malformed_rules_get_the_models_errors(rules: Any, server: Running) -> None:
    raw = notifications_client(server.endpoint, validate=False)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"Name": "bad/name"}, "ValidationException", "Name"),
        ({"DetailType": "SOME"}, "ValidationException", "DetailType"),
        (
            {"EventTypeIds": ["codebuild-project-build-state-failed"]},
            "ValidationException",
            "EventTypeIds",
        ),
        (
            {"Resource": "arn:aws:codebuild:us-east-1:000000000000:project/x"},
            "ValidationException",
            "Resource",
        ),
        (
            {"Resource": "arn:aws:codepipeline:us-east-1:000000000000:ghost"},
            "ConfigurationException",
            "ghost",
        ),
        (
            {"Targets": [{"TargetType": "Pager", "TargetAddress": "x"}]},
            "ValidationException",
            "TargetType",
        ),
        (
            {"Targets": [{"TargetType": "SNS", "TargetAddress": "not-a-topic"}]},
            "ValidationException",
            "TargetAddress",
        ),
        (
            {"Targets": [{"TargetType": "Webhook", "TargetAddress": "ftp://x"}]},
            "ValidationException",
            "TargetAddress",
        ),
        ({"Tags": {"aws:owner": "x"}}, "ValidationException", "aws:"),
    ]
    for change, error, named in cases:
        with pytest.raises(ClientError) as excinfo:
            create(raw, **change)
        assert code(excinfo) == error, change
        assert named in excinfo.value.response["Error"]["Message"], change
    with pytest.raises(ClientError) as excinfo:
        raw.create_notification_rule(Name="x")
    assert code(excinfo) == "ValidationException"
    assert "'Resource' failed to satisfy constraint: Member must not be null" in str(excinfo.value)
    assert rules.list_notification_rules()["NotificationRules"] == []


def test_update_subscribe_unsubscribe_and_targets(rules: Any) -> None:
    arn = create(rules)
    rules.update_notification_rule(
        Arn=arn,
        Name="renamed",
        Status="DISABLED",
        EventTypeIds=[FAILED, APPROVAL],
        DetailType="BASIC",
    )
    described = rules.describe_notification_rule(Arn=arn)
    assert (described["Name"], described["Status"], described["DetailType"]) == (
        "renamed",
        "DISABLED",
        "BASIC",
    )
    assert [t["EventTypeId"] for t in described["EventTypes"]] == [FAILED, APPROVAL]
    signed = {"TargetType": "Webhook", "TargetAddress": HOOK + "#secret=s3cr3t"}
    assert rules.subscribe(Arn=arn, Target=signed)["Arn"] == arn
    targets = rules.describe_notification_rule(Arn=arn)["Targets"]
    # The secret is taken off the address and never shown.
    assert [t["TargetAddress"] for t in targets] == [TOPIC, HOOK]
    listed = rules.list_targets(Filters=[{"Name": "TARGET_TYPE", "Value": "Webhook"}])
    assert listed["Targets"] == [
        {"TargetAddress": HOOK, "TargetType": "Webhook", "TargetStatus": "ACTIVE"}
    ]
    assert "s3cr3t" not in json.dumps(rules.list_targets()["Targets"])
    with pytest.raises(ClientError) as excinfo:
        rules.delete_target(TargetAddress=HOOK)
    assert code(excinfo) == "ValidationException"
    rules.unsubscribe(Arn=arn, TargetAddress=HOOK)
    assert [t["TargetAddress"] for t in rules.describe_notification_rule(Arn=arn)["Targets"]] == [
        TOPIC
    ]
    # Unsubscribing keeps the target; deleting it forgets it.
    assert len(rules.list_targets()["Targets"]) == 2
    rules.delete_target(TargetAddress=HOOK)
    rules.delete_target(TargetAddress=TOPIC, ForceUnsubscribeAll=True)
    assert rules.list_targets()["Targets"] == []
    assert rules.describe_notification_rule(Arn=arn)["Targets"] == []


def test_list_filters_and_pages(rules: Any, client: Any) -> None:
    client.create_pipeline(pipeline=pipeline("other"))
    other = PIPELINE.replace(":app", ":other")
    made = sorted(create(rules, f"rule-{n}") for n in range(3))
    lone = create(rules, "lone", Resource=other, EventTypeIds=[APPROVAL])
    by_resource = rules.list_notification_rules(Filters=[{"Name": "RESOURCE", "Value": other}])
    assert [r["Arn"] for r in by_resource["NotificationRules"]] == [lone]
    by_event = rules.list_notification_rules(Filters=[{"Name": "EVENT_TYPE_ID", "Value": FAILED}])
    assert [r["Arn"] for r in by_event["NotificationRules"]] == made
    first = rules.list_notification_rules(MaxResults=2)
    second = rules.list_notification_rules(MaxResults=2, NextToken=first["NextToken"])
    seen = [r["Arn"] for r in first["NotificationRules"] + second["NotificationRules"]]
    assert seen == sorted([*made, lone])
    assert "NextToken" not in second
    with pytest.raises(ClientError) as excinfo:
        rules.list_notification_rules(NextToken="bm90LWlzc3VlZA==")
    assert code(excinfo) == "InvalidNextTokenException"
    paginator = rules.get_paginator("list_notification_rules")
    pages = list(paginator.paginate(PaginationConfig={"PageSize": 1}))
    assert sum(len(p["NotificationRules"]) for p in pages) == 4


def test_event_types_are_codepipelines(rules: Any) -> None:
    types = rules.list_event_types()["EventTypes"]
    ids = {t["EventTypeId"] for t in types}
    assert {FAILED, APPROVAL, "codepipeline-pipeline-action-execution-failed"} <= ids
    assert len(ids) == 18
    assert {t["ServiceName"] for t in types} == {"CodePipeline"}
    filtered = rules.list_event_types(Filters=[{"Name": "SERVICE_NAME", "Value": "CodeBuild"}])
    assert filtered["EventTypes"] == []
    paged = rules.list_event_types(MaxResults=5)
    assert len(paged["EventTypes"]) == 5 and "NextToken" in paged


def test_tags_of_a_rule(rules: Any) -> None:
    arn = create(rules, Tags={"team": "web"})
    assert rules.tag_resource(Arn=arn, Tags={"tier": "prod"})["Tags"] == {
        "team": "web",
        "tier": "prod",
    }
    rules.untag_resource(Arn=arn, TagKeys=["team"])
    assert rules.list_tags_for_resource(Arn=arn)["Tags"] == {"tier": "prod"}
    ghost = arn[:-4] + "0000"
    with pytest.raises(ClientError) as excinfo:
        rules.list_tags_for_resource(Arn=ghost)
    assert code(excinfo) == "ResourceNotFoundException"


@sqlite_only
def test_the_aws_cli_manages_rules(rules: Any, server: Running) -> None:
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", server.endpoint]
    env = {
        "AWS_ACCESS_KEY_ID": "conveyor",
        "AWS_SECRET_ACCESS_KEY": "conveyor",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": str(Path(sys.executable).parent),
    }
    created = subprocess.run(
        [
            *aws,
            "codestar-notifications",
            "create-notification-rule",
            "--name",
            "cli",
            "--resource",
            PIPELINE,
            "--detail-type",
            "BASIC",
            "--event-type-ids",
            FAILED,
            "--targets",
            f"TargetType=SNS,TargetAddress={TOPIC}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    arn = json.loads(created.stdout)["Arn"]
    subprocess.run(
        [*aws, "codestar-notifications", "untag-resource", "--arn", arn, "--tag-keys", "x"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    described = subprocess.run(
        [*aws, "codestar-notifications", "describe-notification-rule", "--arn", arn],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(described.stdout)["Name"] == "cli"
    missing = subprocess.run(
        [*aws, "codestar-notifications", "describe-notification-rule", "--arn", arn + "0"],
        capture_output=True,
        check=False,
        text=True,
        env=env,
    )
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
