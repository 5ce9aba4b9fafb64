"""TagResource, UntagResource and ListTagsForResource on pipelines and custom action types."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.declarations import pipeline
from tests.support.errors import code

ARN = "arn:aws:codepipeline:us-east-1:000000000000:app"
TYPE_ARN = "arn:aws:codepipeline:us-east-1:000000000000:actiontype:Custom/Build/Jenkins/1"


def tags(n: int, prefix: str = "k") -> list[dict[str, str]]:
    return [{"key": f"{prefix}{i}", "value": str(i)} for i in range(n)]


def create_custom_type(client: Any, **extra: Any) -> dict[str, Any]:
    response: dict[str, Any] = client.create_custom_action_type(
        category="Build",
        provider="Jenkins",
        version="1",
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 5},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 5},
        **extra,
    )
    return response


def test_tag_untag_and_list_a_pipeline(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline(), tags=[{"key": "team", "value": "web"}])
    client.tag_resource(
        resourceArn=ARN, tags=[{"key": "env", "value": "prod"}, {"key": "team", "value": "ops"}]
    )
    assert client.list_tags_for_resource(resourceArn=ARN)["tags"] == [
        {"key": "env", "value": "prod"},
        {"key": "team", "value": "ops"},
    ]
    client.untag_resource(resourceArn=ARN, tagKeys=["team", "absent"])
    assert client.list_tags_for_resource(resourceArn=ARN)["tags"] == [
        {"key": "env", "value": "prod"}
    ]


def test_tags_with_empty_values_are_kept(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline(), tags=[{"key": "flag", "value": ""}])
    assert client.list_tags_for_resource(resourceArn=ARN)["tags"] == [{"key": "flag", "value": ""}]


def test_list_tags_pages_when_asked(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline(), tags=tags(5))
    first = client.list_tags_for_resource(resourceArn=ARN, maxResults=2)
    assert len(first["tags"]) == 2
    keys = [t["key"] for t in first["tags"]]
    token = first["nextToken"]
    while token:
        page = client.list_tags_for_resource(resourceArn=ARN, maxResults=2, nextToken=token)
        keys += [t["key"] for t in page["tags"]]
        token = page.get("nextToken")
    assert keys == [f"k{i}" for i in range(5)]


def test_too_many_tags(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline(), tags=tags(49))
    client.tag_resource(
        resourceArn=ARN, tags=[{"key": "k0", "value": "again"}, {"key": "x", "value": "1"}]
    )
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(resourceArn=ARN, tags=[{"key": "y", "value": "1"}])
    assert code(excinfo) == "TooManyTagsException"
    assert len(client.list_tags_for_resource(resourceArn=ARN)["tags"]) == 50


def test_create_pipeline_with_too_many_tags_creates_nothing(client: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.create_pipeline(pipeline=pipeline(), tags=tags(51))
    assert code(excinfo) == "TooManyTagsException"
    assert client.list_pipelines()["pipelines"] == []


@pytest.mark.parametrize("key", ["aws:owner", "AWS:Owner"])
def test_reserved_tag_keys(client: Any, key: str) -> None:
    client.create_pipeline(pipeline=pipeline())
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(resourceArn=ARN, tags=[{"key": key, "value": "x"}])
    assert code(excinfo) == "InvalidTagsException"
    with pytest.raises(ClientError) as excinfo:
        client.untag_resource(resourceArn=ARN, tagKeys=[key])
    assert code(excinfo) == "InvalidTagsException"


def test_repeated_tag_keys_are_invalid(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline())
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(
            resourceArn=ARN, tags=[{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]
        )
    assert code(excinfo) == "InvalidTagsException"


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:codepipeline:us-east-1:000000000000:missing",
        "arn:aws:codepipeline:eu-west-1:000000000000:app",
        "arn:aws:codepipeline:us-east-1:111111111111:app",
        "arn:aws:codepipeline:us-east-1:000000000000:webhook:hook",
        "arn:aws:codepipeline:us-east-1:000000000000:actiontype:Custom/Build/Nope/1",
    ],
)
def test_tags_on_missing_resources(client: Any, arn: str) -> None:
    client.create_pipeline(pipeline=pipeline())
    with pytest.raises(ClientError) as excinfo:
        client.list_tags_for_resource(resourceArn=arn)
    assert code(excinfo) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(resourceArn=arn, tags=[{"key": "a", "value": "b"}])
    assert code(excinfo) == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:s3:::bucket", "ValidationException"),
        (
            "arn:aws:codepipeline:us-east-1:000000000000:actiontype:Custom/Build",
            "InvalidArnException",
        ),
        ("arn:aws:codepipeline:us-east-1:000000000000:a/b c", "InvalidArnException"),
    ],
)
def test_malformed_arns(client: Any, arn: str, expected: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        client.list_tags_for_resource(resourceArn=arn)
    assert code(excinfo) == expected


def test_tags_on_a_custom_action_type(client: Any) -> None:
    created = create_custom_type(client, tags=[{"key": "owner", "value": "ci"}])
    assert created["tags"] == [{"key": "owner", "value": "ci"}]
    client.tag_resource(resourceArn=TYPE_ARN, tags=[{"key": "tier", "value": "1"}])
    assert [t["key"] for t in client.list_tags_for_resource(resourceArn=TYPE_ARN)["tags"]] == [
        "owner",
        "tier",
    ]
    client.delete_custom_action_type(category="Build", provider="Jenkins", version="1")
    with pytest.raises(ClientError) as excinfo:
        client.list_tags_for_resource(resourceArn=TYPE_ARN)
    assert code(excinfo) == "ResourceNotFoundException"


def test_deleting_a_pipeline_drops_its_tags(client: Any) -> None:
    client.create_pipeline(pipeline=pipeline(), tags=[{"key": "a", "value": "b"}])
    client.delete_pipeline(name="app")
    client.create_pipeline(pipeline=pipeline())
    assert client.list_tags_for_resource(resourceArn=ARN)["tags"] == []
