"""Building and reading ARNs."""

from __future__ import annotations

import pytest

from conveyor.domain.actiontype import ActionTypeId
from conveyor.domain.arn import ResourceKind, Scope, parse_resource_arn
from conveyor.domain.errors import InvalidArnException

SCOPE = Scope("us-east-1", "000000000000")


def test_round_trips() -> None:
    type_id = ActionTypeId("Build", "Custom", "Jenkins", "1")
    assert parse_resource_arn(SCOPE.pipeline("app")).kind is ResourceKind.PIPELINE
    webhook = parse_resource_arn(SCOPE.webhook("hook"))
    assert (webhook.kind, webhook.name, webhook.scope) == (ResourceKind.WEBHOOK, "hook", SCOPE)
    action_type = parse_resource_arn(SCOPE.action_type(type_id))
    assert action_type.action_type == type_id
    assert SCOPE.action_type(type_id).endswith(":actiontype:Custom/Build/Jenkins/1")


def test_other_partitions() -> None:
    parsed = parse_resource_arn("arn:aws-cn:codepipeline:cn-north-1:123456789012:app")
    assert parsed.scope == Scope("cn-north-1", "123456789012", "aws-cn")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:s3:::bucket",
        "arn:aws:codepipeline:us-east-1:123:app",
        "arn:aws:codepipeline:us-east-1:000000000000:actiontype:Custom/Build/Jenkins",
        "arn:aws:codepipeline:us-east-1:000000000000:webhook:bad name",
        "arn:aws:codepipeline:us-east-1:000000000000:a/b",
    ],
)
def test_invalid(arn: str) -> None:
    with pytest.raises(InvalidArnException):
        parse_resource_arn(arn)
