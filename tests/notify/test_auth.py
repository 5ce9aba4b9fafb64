"""With authentication required, notification rules are decided on the caller's policies
(``codestar-notifications:*`` actions) and signed requests, ARNs in paths included, pass."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from botocore.exceptions import ClientError

from conveyor.config import Settings
from conveyor.server import Running, running
from tests.notify.test_rules_api import FAILED, PIPELINE, TOPIC
from tests.support.auth import allow, make_user, signed_client
from tests.support.declarations import pipeline
from tests.support.errors import code


@pytest.fixture
def secured(settings: Settings) -> Iterator[Running]:
    with running(replace(settings, auth="required")) as live:
        yield live


def test_rules_are_decided_on_policies(secured: Running) -> None:
    admin = make_user(
        secured, "admin", policies=[allow("codepipeline:*", "codestar-notifications:*")]
    )
    signed_client(secured, admin).create_pipeline(pipeline=pipeline("app"))
    rules = signed_client(secured, admin, "codestar-notifications")
    arn = rules.create_notification_rule(
        Name="alerts",
        EventTypeIds=[FAILED],
        Resource=PIPELINE,
        Targets=[{"TargetType": "SNS", "TargetAddress": TOPIC}],
        DetailType="BASIC",
        Tags={"team": "web"},
    )["Arn"]
    rules.untag_resource(Arn=arn, TagKeys=["team"])
    assert rules.list_tags_for_resource(Arn=arn)["Tags"] == {}
    described = rules.describe_notification_rule(Arn=arn)
    assert described["CreatedBy"] == "arn:aws:iam::000000000000:user/admin"
    reader = make_user(
        secured,
        "reader",
        policies=[allow("codestar-notifications:DescribeNotificationRule", resource=arn)],
    )
    limited = signed_client(secured, reader, "codestar-notifications")
    assert limited.describe_notification_rule(Arn=arn)["Name"] == "alerts"
    elsewhere = make_user(
        secured,
        "elsewhere",
        policies=[allow("codestar-notifications:*", resource=arn[:-4] + "0000")],
    )
    with pytest.raises(ClientError) as excinfo:
        signed_client(secured, elsewhere, "codestar-notifications").describe_notification_rule(
            Arn=arn
        )
    assert code(excinfo) == "AccessDeniedException"
    with pytest.raises(ClientError) as excinfo:
        limited.delete_notification_rule(Arn=arn)
    assert code(excinfo) == "AccessDeniedException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
