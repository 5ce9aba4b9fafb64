"""Webhooks through boto3, and deliveries to their URLs over HTTP, on both databases."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from conveyor.api.limits import MAX_BODY_BYTES
from conveyor.server import Running
from tests.support.engine import commands, declaration, make_repo, stage
from tests.support.errors import code

ARN = "arn:aws:codepipeline:us-east-1:000000000000:webhook:hook"
SECRET = "s3cret-token"
PUSH = {"ref": "refs/heads/main", "repository": {"name": "app"}, "after": "a" * 40}


def webhook(
    name: str = "hook",
    *,
    authentication: str = "GITHUB_HMAC",
    configuration: dict[str, str] | None = None,
    filters: list[dict[str, str]] | None = None,
    action: str = "Source",
    pipeline: str = "app",
) -> dict[str, Any]:
    return {
        "name": name,
        "targetPipeline": pipeline,
        "targetAction": action,
        "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{BranchName}"}]
        if filters is None
        else filters,
        "authentication": authentication,
        "authenticationConfiguration": {"SecretToken": SECRET}
        if configuration is None
        else configuration,
    }


def signed(body: bytes, secret: str = SECRET, kind: str = "sha256") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, getattr(hashlib, kind)).hexdigest()
    header = "X-Hub-Signature-256" if kind == "sha256" else "X-Hub-Signature"
    return {header: f"{kind}={digest}"}


def deliver(url: str, body: bytes | dict[str, Any], **headers: str) -> tuple[int, Any]:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(
            "POST", parts.path, body=raw, headers={"Content-Type": "application/json", **headers}
        )
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    return response.status, answer


def executions(client: Any, trigger: str = "Webhook") -> list[dict[str, Any]]:
    summaries = client.list_pipeline_executions(pipelineName="app")["pipelineExecutionSummaries"]
    return [s for s in summaries if s["trigger"]["triggerType"] == trigger]


@pytest.fixture
def app(client: Any, tmp_path: Path) -> Any:
    repo = tmp_path / "repo"
    make_repo(repo)
    client.create_pipeline(
        pipeline=declaration("app", repo, stage("Build", commands("Make", "true")))
    )
    return client


def put(client: Any, **changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = client.put_webhook(webhook=webhook(**changes))["webhook"]
    return item


# -- the API ---------------------------------------------------------------------------------


def test_put_webhook_answers_its_item_with_the_secret_redacted(app: Any, server: Running) -> None:
    item = app.put_webhook(webhook=webhook(), tags=[{"key": "team", "value": "web"}])["webhook"]
    assert item["arn"] == ARN
    assert item["url"].startswith(f"{server.endpoint}/webhooks/")
    assert item["definition"]["authenticationConfiguration"] == {"SecretToken": "****"}
    assert item["definition"]["filters"] == webhook()["filters"]
    assert item["tags"] == [{"key": "team", "value": "web"}]
    assert "lastTriggered" not in item and "errorCode" not in item
    [listed] = app.list_webhooks()["webhooks"]
    assert listed["url"] == item["url"]
    assert listed["definition"]["authenticationConfiguration"] == {"SecretToken": "****"}


def test_put_webhook_again_replaces_it_and_keeps_its_url(app: Any) -> None:
    first = put(app)
    # The mask sent back keeps the stored secret, as UpdatePipeline does for secrets.
    second = put(app, configuration={"SecretToken": "****"}, filters=[{"jsonPath": "$.ref"}])
    assert second["url"] == first["url"]
    assert second["definition"]["filters"] == [{"jsonPath": "$.ref"}]
    body = json.dumps(PUSH).encode()
    status, answer = deliver(second["url"], body, **signed(body))
    assert status == 200 and answer["started"] is True


def test_a_webhook_deleted_and_put_again_gets_a_new_url(app: Any) -> None:
    old = put(app)["url"]
    app.delete_webhook(name="hook")
    app.delete_webhook(name="hook")  # deleting what is gone succeeds, as the model says
    assert app.list_webhooks()["webhooks"] == []
    new = put(app)["url"]
    assert new != old
    body = json.dumps(PUSH).encode()
    status, answer = deliver(old, body, **signed(body))
    assert status == 404 and "ListWebhooks" in answer["message"]


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"pipeline": "nope"}, "PipelineNotFoundException", "nope"),
        ({"action": "Missing"}, "ValidationException", "webhook.targetAction"),
        ({"configuration": {}}, "InvalidWebhookAuthenticationParametersException", "SecretToken"),
        (
            {"configuration": {"SecretToken": "x", "AllowedIPRange": "10.0.0.0/8"}},
            "InvalidWebhookAuthenticationParametersException",
            "AllowedIPRange",
        ),
        (
            {"authentication": "IP", "configuration": {"AllowedIPRange": "10.0.0.0/33"}},
            "InvalidWebhookAuthenticationParametersException",
            "CIDR",
        ),
        (
            {"authentication": "IP", "configuration": {"SecretToken": "x"}},
            "InvalidWebhookAuthenticationParametersException",
            "AllowedIPRange",
        ),
        (
            {"authentication": "UNAUTHENTICATED", "configuration": {"SecretToken": "x"}},
            "InvalidWebhookAuthenticationParametersException",
            "no authenticationConfiguration",
        ),
        (
            {"filters": [{"jsonPath": "$.commits[?("}]},
            "InvalidWebhookFilterPatternException",
            "$.commits[?(",
        ),
        (
            {"filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}]},
            "InvalidWebhookFilterPatternException",
            "{Branch}",
        ),
        ({"authentication": "OAUTH"}, "ValidationException", "webhook.authentication"),
        ({"name": "no spaces"}, "ValidationException", "webhook.name"),
    ],
)
def test_put_webhook_refuses_bad_definitions(
    app: Any, changes: dict[str, Any], error: str, words: str
) -> None:
    with pytest.raises(ClientError) as excinfo:
        put(app, **changes)
    assert code(excinfo) == error
    assert words in excinfo.value.response["Error"]["Message"]
    assert app.list_webhooks()["webhooks"] == []


def test_list_webhooks_pages_in_name_order(app: Any) -> None:
    for name in ("e", "b", "d", "a", "c"):
        put(app, name=name)
    names, token, pages = [], None, 0
    while True:
        page = app.list_webhooks(MaxResults=2, **({"NextToken": token} if token else {}))
        names += [w["definition"]["name"] for w in page["webhooks"]]
        pages += 1
        token = page.get("NextToken")
        if token is None:
            break
    assert names == ["a", "b", "c", "d", "e"] and pages == 3
    with pytest.raises(ClientError) as excinfo:
        app.list_webhooks(NextToken="forged.token")
    assert code(excinfo) == "InvalidNextTokenException"


def test_register_and_deregister_need_an_existing_webhook(app: Any, unchecked_client: Any) -> None:
    put(app)
    assert app.register_webhook_with_third_party(webhookName="hook")["ResponseMetadata"]
    assert app.deregister_webhook_with_third_party(webhookName="hook")["ResponseMetadata"]
    for call in (
        app.register_webhook_with_third_party,
        app.deregister_webhook_with_third_party,
    ):
        with pytest.raises(ClientError) as excinfo:
            call(webhookName="other")
        assert code(excinfo) == "WebhookNotFoundException"
        with pytest.raises(ClientError) as excinfo:
            call()
        assert code(excinfo) == "WebhookNotFoundException"
        assert "webhookName" in excinfo.value.response["Error"]["Message"]


def test_webhooks_are_tagged_by_arn(app: Any) -> None:
    put(app)
    app.tag_resource(resourceArn=ARN, tags=[{"key": "env", "value": "prod"}])
    assert app.list_tags_for_resource(resourceArn=ARN)["tags"] == [{"key": "env", "value": "prod"}]
    assert put(app)["tags"] == [{"key": "env", "value": "prod"}]
    app.untag_resource(resourceArn=ARN, tagKeys=["env"])
    assert app.list_tags_for_resource(resourceArn=ARN)["tags"] == []
    app.tag_resource(resourceArn=ARN, tags=[{"key": "env", "value": "prod"}])
    app.delete_webhook(name="hook")
    with pytest.raises(ClientError) as excinfo:
        app.list_tags_for_resource(resourceArn=ARN)
    assert code(excinfo) == "ResourceNotFoundException"
    # A webhook made again under the name starts without the old one's tags.
    assert "tags" not in put(app)
    with pytest.raises(ClientError) as excinfo:
        app.put_webhook(webhook=webhook(), tags=[{"key": "aws:x", "value": "y"}])
    assert code(excinfo) == "InvalidTagsException"


# -- deliveries ------------------------------------------------------------------------------


def test_a_signed_delivery_starts_the_pipeline_with_the_webhook_as_trigger(app: Any) -> None:
    url = put(app)["url"]
    body = json.dumps(PUSH).encode()
    status, answer = deliver(url, body, **signed(body))
    assert status == 200 and answer["started"] is True
    execution = app.get_pipeline_execution(
        pipelineName="app", pipelineExecutionId=answer["pipelineExecutionId"]
    )["pipelineExecution"]
    assert execution["trigger"] == {"triggerType": "Webhook", "triggerDetail": ARN}
    [item] = app.list_webhooks()["webhooks"]
    assert item["lastTriggered"].timestamp() > 0
    # The older SHA-1 signature is accepted too.
    status, answer = deliver(url, body, **signed(body, kind="sha1"))
    assert status == 200 and answer["started"] is True
    assert len(executions(app)) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": "not even hex"},
        signed(b"another body"),
        signed(json.dumps(PUSH).encode(), secret="wrong"),
        signed(json.dumps(PUSH).encode(), secret="wrong", kind="sha1"),
    ],
)
def test_a_delivery_without_the_right_signature_is_refused(
    app: Any, headers: dict[str, str]
) -> None:
    url = put(app)["url"]
    status, answer = deliver(url, json.dumps(PUSH).encode(), **headers)
    assert status == 401 and answer["started"] is False
    assert "signature" in answer["message"]
    assert executions(app) == []
    assert "lastTriggered" not in app.list_webhooks()["webhooks"][0]


def test_ip_webhooks_take_deliveries_from_their_range_only(app: Any) -> None:
    inside = put(app, authentication="IP", configuration={"AllowedIPRange": "127.0.0.0/8"})
    status, answer = deliver(inside["url"], PUSH)
    assert status == 200 and answer["started"] is True
    outside = put(
        app, name="far", authentication="IP", configuration={"AllowedIPRange": "192.0.2.0/24"}
    )
    status, answer = deliver(outside["url"], PUSH)
    assert status == 403 and "192.0.2.0/24" in answer["message"]
    assert len(executions(app)) == 1


def test_filters_decide_which_deliveries_start_the_pipeline(app: Any) -> None:
    url = put(
        app,
        authentication="UNAUTHENTICATED",
        configuration={},
        filters=[
            {"jsonPath": "$.ref", "matchEquals": "refs/heads/{BranchName}"},
            {"jsonPath": "$.repository.name"},
        ],
    )["url"]
    status, answer = deliver(url, PUSH)
    assert status == 200 and answer["started"] is True
    for body, words in (
        ({**PUSH, "ref": "refs/heads/other"}, "refs/heads/main"),
        ({"ref": "refs/heads/main"}, "$.repository.name selects nothing"),
        ({"ref": 7, "repository": {"name": "app"}}, "'7'"),
        ({}, "$.ref selects nothing"),
        (b"", "$.ref selects nothing"),  # an empty body is an empty object
    ):
        status, answer = deliver(url, body)
        assert status == 200 and answer["started"] is False, body
        assert words in answer["message"]
    assert len(executions(app)) == 1


def test_hostile_deliveries_get_a_4xx_and_start_nothing(app: Any) -> None:
    url = put(app, authentication="UNAUTHENTICATED", configuration={})["url"]
    deep = b'{"a":' * 600 + b"1" + b"}" * 600
    for body, status_wanted in (
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"ref": "\\ud800"}', 400),
        (b"\xff\xfe{}", 400),
        (deep, 400),
    ):
        status, answer = deliver(url, body)
        assert status == status_wanted, body[:20]
        assert answer["message"]
    # A filter reaching into a body nested as deep as the server allows still answers.
    put(
        app,
        name="descend",
        authentication="UNAUTHENTICATED",
        configuration={},
        filters=[{"jsonPath": "$..b"}],
    )
    nested = b'{"a":' * 499 + b"1" + b"}" * 499
    descend = next(w for w in app.list_webhooks()["webhooks"] if w["arn"].endswith(":descend"))
    status, answer = deliver(descend["url"], nested)
    assert 200 <= status < 500 and answer["started"] is False
    status, answer = deliver(url, b"{}", **{"Content-Length": str(MAX_BODY_BYTES + 1)})
    assert status == 413
    for path in ("/webhooks/unknown", "/webhooks/" + "A" * 43):
        status, answer = deliver(url.split("/webhooks/")[0] + path, PUSH)
        assert status == 404
    assert executions(app) == []


def test_a_webhook_whose_pipeline_is_gone_says_so(app: Any) -> None:
    url = put(app, authentication="UNAUTHENTICATED", configuration={})["url"]
    app.delete_pipeline(name="app")
    status, answer = deliver(url, PUSH)
    assert status == 409 and "app" in answer["message"]
    [item] = app.list_webhooks()["webhooks"]
    assert item["errorCode"] == "PipelineNotFoundException"
    assert "app" in item["errorMessage"]


def test_a_started_delivery_clears_the_error_it_met_before(app: Any) -> None:
    url = put(app, authentication="UNAUTHENTICATED", configuration={})["url"]
    pipeline = app.get_pipeline(name="app")["pipeline"]
    renamed = json.loads(json.dumps(pipeline))
    renamed["stages"][0]["actions"][0]["name"] = "Fetch"
    app.update_pipeline(pipeline=renamed)
    status, answer = deliver(url, PUSH)
    assert status == 409
    assert app.list_webhooks()["webhooks"][0]["errorCode"] == "ActionNotFoundException"
    app.update_pipeline(pipeline=pipeline)
    status, answer = deliver(url, PUSH)
    assert status == 200 and answer["started"] is True
    item = app.list_webhooks()["webhooks"][0]
    assert "errorCode" not in item and "lastTriggered" in item
