"""Authentication and authorization with `auth: required`: boto3 and botocore-signed raw
requests against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conveyor.config import Settings
from conveyor.server import Running, running
from tests.conftest import sqlite_only
from tests.support.auth import allow, deny, make_user, send, signed_client, signed_request
from tests.support.engine import approval, declaration, make_repo, stage
from tests.support.engine import approval_token as token_of

PIPE = "arn:aws:codepipeline:us-east-1:000000000000"


@pytest.fixture
def secured(settings: Settings) -> Iterator[Running]:
    with running(replace(settings, auth="required")) as live:
        yield live


@pytest.fixture
def admin(secured: Running) -> Any:
    return signed_client(
        secured, make_user(secured, "admin", managed=["AWSCodePipeline_FullAccess"])
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    make_repo(path)
    return path


def pipeline(name: str, repo: Path) -> dict[str, Any]:
    return declaration(name, repo, stage("Gate", approval()))


def error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    e = excinfo.value.response["Error"]
    return e["Code"], e["Message"]


def test_an_unsigned_request_is_missing_its_token(secured: Running) -> None:
    client = boto3.client(
        "codepipeline",
        endpoint_url=secured.endpoint,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as excinfo:
        client.list_pipelines()
    assert error(excinfo) == ("MissingAuthenticationTokenException", "Missing Authentication Token")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_unknown_key_is_unrecognized(secured: Running) -> None:
    client = signed_client(secured, ("AKIAUNKNOWNUNKNOWN00", "whatever"))
    with pytest.raises(ClientError) as excinfo:
        client.list_pipelines()
    assert error(excinfo) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_a_wrong_secret_is_an_invalid_signature(secured: Running) -> None:
    key_id, _ = make_user(secured, "alice", managed=["AWSCodePipeline_FullAccess"])
    with pytest.raises(ClientError) as excinfo:
        signed_client(secured, (key_id, "not-the-secret")).list_pipelines()
    code, message = error(excinfo)
    assert code == "InvalidSignatureException"
    assert message.startswith("The request signature we calculated does not match")


def test_a_request_signed_more_than_five_minutes_ago_has_expired(
    secured: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = make_user(secured, "alice", managed=["AWSCodePipeline_FullAccess"])
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=6)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: past.replace(tzinfo=None))
    status, body = send(secured, signed_request(secured, "ListPipelines", {}, key))
    assert status == 400
    assert body["__type"] == "InvalidSignatureException"
    assert body["message"].startswith(
        f"Signature expired: {past:%Y%m%dT%H%M%SZ} is now earlier than"
    )
    assert body["message"].endswith(" - 5 min.)")


def test_a_request_signed_in_the_future_is_not_yet_current(
    secured: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = make_user(secured, "alice", managed=["AWSCodePipeline_FullAccess"])
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=6)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: future.replace(tzinfo=None))
    status, body = send(secured, signed_request(secured, "ListPipelines", {}, key))
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    assert body["message"].startswith(f"Signature not yet current: {future:%Y%m%dT%H%M%SZ}")
    monkeypatch.undo()
    assert send(secured, signed_request(secured, "ListPipelines", {}, key))[0] == 200


def test_a_key_signed_for_another_region_or_service_is_refused(secured: Running) -> None:
    key = make_user(secured, "alice", managed=["AWSCodePipeline_FullAccess"])
    status, body = send(
        secured, signed_request(secured, "ListPipelines", {}, key, region="eu-west-1")
    )
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    assert "valid region" in body["message"]
    status, body = send(secured, signed_request(secured, "ListPipelines", {}, key, service="s3"))
    assert body == {
        "__type": "InvalidSignatureException",
        "message": "Credential should be scoped to correct service: 'codepipeline'.",
    }


def test_a_signed_request_is_served(secured: Running) -> None:
    key = make_user(secured, "alice", managed=["AWSCodePipeline_ReadOnlyAccess"])
    assert send(secured, signed_request(secured, "ListPipelines", {}, key)) == (
        200,
        {"pipelines": []},
    )


def _headers_without(name: str) -> Any:
    return lambda headers: [(k, v) for k, v in headers if k.lower() != name]


def _rewrite_authorization(old: str, new: str) -> Any:
    return lambda headers: [
        (k, v.replace(old, new) if k.lower() == "authorization" else v) for k, v in headers
    ]


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        (
            lambda h: [
                (k, "AWS4-HMAC-SHA256 Credential" if k == "Authorization" else v) for k, v in h
            ],
            "IncompleteSignatureException",
            "cannot read 'Credential'",
        ),
        (
            _rewrite_authorization("AWS4-HMAC-SHA256", "AWS4-HMAC-MD5"),
            "IncompleteSignatureException",
            "Unsupported AWS 'algorithm'",
        ),
        (_headers_without("x-amz-date"), "IncompleteSignatureException", "'X-Amz-Date'"),
        (
            _rewrite_authorization("SignedHeaders=", "SignedHeaders=host;"),
            "IncompleteSignatureException",
            "distinct lower-case headers",
        ),
        (
            _rewrite_authorization("Signature=", "Signature=0"),
            "InvalidSignatureException",
            "does not match",
        ),
        (
            _rewrite_authorization(";x-amz-target,", ","),
            "IncompleteSignatureException",
            "'X-Amz-Target' must be a 'SignedHeader'",
        ),
        (
            lambda h: [*h, ("Authorization", "AWS4-HMAC-SHA256 again")],
            "IncompleteSignatureException",
            "more than one Authorization header",
        ),
    ],
)
def test_malformed_signatures_are_clear_errors(
    secured: Running, change: Any, code: str, words: str
) -> None:
    key = make_user(secured, "alice", managed=["AWSCodePipeline_FullAccess"])
    status, body = send(secured, signed_request(secured, "ListPipelines", {}, key), change)
    assert status == 400
    assert body["__type"] == code
    assert words in body["message"]


def test_a_body_that_does_not_match_its_declared_hash_is_refused(secured: Running) -> None:
    key = make_user(secured, "alice", managed=["AWSCodePipeline_FullAccess"])
    request = signed_request(secured, "ListPipelines", {}, key)
    status, body = send(secured, request, body=b'{"maxResults": 1}')
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    request.headers["X-Amz-Content-SHA256"] = "0" * 64
    status, body = send(secured, request)
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    assert "x-amz-content-sha256" in body["message"]


def _host(name: str) -> Any:
    return lambda headers: [(k, name if k.lower() == "host" else v) for k, v in headers]


def test_a_request_for_another_host_name_is_refused(secured: Running) -> None:
    """DNS rebinding: a page served by evil.example whose name now resolves to 127.0.0.1."""
    key = make_user(secured, "alice", managed=["AWSCodePipeline_FullAccess"])
    request = signed_request(secured, "ListPipelines", {}, key)
    status, body = send(secured, request, _host("evil.example:80"))
    assert status == 421
    assert "does not name this server" in body["text"]
    port = secured.endpoint.rpartition(":")[2]
    # localhost is this server's too; the signature (made for 127.0.0.1) is what fails then.
    status, body = send(secured, request, _host(f"localhost:{port}"))
    assert (status, body["__type"]) == (400, "InvalidSignatureException")


def test_a_read_only_user_reads_and_changes_nothing(
    secured: Running, admin: Any, repo: Path
) -> None:
    admin.create_pipeline(pipeline=pipeline("app", repo))
    reader = signed_client(
        secured, make_user(secured, "reader", managed=["AWSCodePipeline_ReadOnlyAccess"])
    )
    assert reader.get_pipeline(name="app")["pipeline"]["name"] == "app"
    assert [p["name"] for p in reader.list_pipelines()["pipelines"]] == ["app"]
    reader.get_pipeline_state(name="app")
    with pytest.raises(ClientError) as excinfo:
        reader.start_pipeline_execution(name="app")
    assert error(excinfo) == (
        "AccessDeniedException",
        "User: arn:aws:iam::000000000000:user/reader is not authorized to perform:"
        f" codepipeline:StartPipelineExecution on resource: {PIPE}:app because no"
        " identity-based policy allows the codepipeline:StartPipelineExecution action",
    )
    with pytest.raises(ClientError) as excinfo:
        reader.delete_pipeline(name="app")
    assert error(excinfo)[0] == "AccessDeniedException"


def test_an_approver_may_approve_one_action_only(secured: Running, admin: Any, repo: Path) -> None:
    admin.create_pipeline(
        pipeline=declaration("app", repo, stage("Gate", approval("QA"), approval("Release")))
    )
    approver = signed_client(
        secured,
        make_user(
            secured,
            "qa",
            managed=["AWSCodePipeline_ReadOnlyAccess"],
            policies=[allow("codepipeline:PutApprovalResult", resource=f"{PIPE}:app/Gate/QA")],
        ),
    )
    qa, release = (
        token_of(approver, "app", "Gate", "QA"),
        token_of(approver, "app", "Gate", "Release"),
    )
    approver.put_approval_result(
        pipelineName="app",
        stageName="Gate",
        actionName="QA",
        token=qa,
        result={"summary": "ok", "status": "Approved"},
    )
    with pytest.raises(ClientError) as excinfo:
        approver.put_approval_result(
            pipelineName="app",
            stageName="Gate",
            actionName="Release",
            token=release,
            result={"summary": "ok", "status": "Approved"},
        )
    code, message = error(excinfo)
    assert code == "AccessDeniedException"
    assert f"on resource: {PIPE}:app/Gate/Release because" in message


def test_a_deny_on_one_stage_overrides_full_access(
    secured: Running, admin: Any, repo: Path
) -> None:
    admin.create_pipeline(pipeline=declaration("app", repo, stage("Prod", approval())))
    operator = signed_client(
        secured,
        make_user(
            secured,
            "operator",
            managed=["AWSCodePipeline_FullAccess"],
            policies=[deny("codepipeline:*StageTransition", resource=f"{PIPE}:app/Prod")],
        ),
    )
    with pytest.raises(ClientError) as excinfo:
        operator.disable_stage_transition(
            pipelineName="app", stageName="Prod", transitionType="Inbound", reason="no"
        )
    assert error(excinfo) == (
        "AccessDeniedException",
        "User: arn:aws:iam::000000000000:user/operator is not authorized to perform:"
        f" codepipeline:DisableStageTransition on resource: {PIPE}:app/Prod with an explicit"
        " deny in an identity-based policy",
    )
    operator.disable_stage_transition(
        pipelineName="app", stageName="Source", transitionType="Outbound", reason="fine"
    )
    assert operator.get_pipeline(name="app")["pipeline"]["name"] == "app"


def test_a_condition_on_the_source_address(secured: Running, admin: Any, repo: Path) -> None:
    admin.create_pipeline(pipeline=pipeline("app", repo))
    elsewhere = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    here = {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}
    remote = signed_client(
        secured,
        make_user(
            secured, "remote", policies=[allow("codepipeline:GetPipeline", Condition=elsewhere)]
        ),
    )
    local = signed_client(
        secured,
        make_user(secured, "local", policies=[allow("codepipeline:GetPipeline", Condition=here)]),
    )
    with pytest.raises(ClientError) as excinfo:
        remote.get_pipeline(name="app")
    assert error(excinfo)[0] == "AccessDeniedException"
    assert local.get_pipeline(name="app")["pipeline"]["name"] == "app"


def test_list_pipelines_shows_only_what_the_caller_may_read(
    secured: Running, admin: Any, repo: Path
) -> None:
    for name in ("team-a", "team-b", "other"):
        admin.create_pipeline(pipeline=pipeline(name, repo))
    team = signed_client(
        secured,
        make_user(
            secured,
            "team",
            policies=[
                allow("codepipeline:ListPipelines"),
                allow("codepipeline:GetPipeline", resource=f"{PIPE}:team-*"),
            ],
        ),
    )
    assert sorted(p["name"] for p in team.list_pipelines()["pipelines"]) == ["team-a", "team-b"]
    assert len(admin.list_pipelines()["pipelines"]) == 3


def test_a_resource_tag_condition(secured: Running, admin: Any, repo: Path) -> None:
    admin.create_pipeline(pipeline=pipeline("mine", repo), tags=[{"key": "team", "value": "web"}])
    admin.create_pipeline(pipeline=pipeline("theirs", repo), tags=[{"key": "team", "value": "db"}])
    web = {"StringEquals": {"aws:ResourceTag/team": "web"}}
    member = signed_client(
        secured,
        make_user(secured, "web", policies=[allow("codepipeline:GetPipeline", Condition=web)]),
    )
    assert member.get_pipeline(name="mine")["pipeline"]["name"] == "mine"
    with pytest.raises(ClientError) as excinfo:
        member.get_pipeline(name="theirs")
    assert error(excinfo)[0] == "AccessDeniedException"


def test_a_deleted_key_stops_working(secured: Running) -> None:
    key = make_user(secured, "alice", managed=["AWSCodePipeline_ReadOnlyAccess"])
    client = signed_client(secured, key)
    client.list_pipelines()
    secured.application.access.identities.delete_key(key[0])
    with pytest.raises(ClientError) as excinfo:
        client.list_pipelines()
    assert error(excinfo)[0] == "UnrecognizedClientException"


def test_policies_of_a_group_apply_to_its_users(secured: Running) -> None:
    identities = secured.application.access.identities
    identities.create("group", "readers", managed=["AWSCodePipeline_ReadOnlyAccess"])
    key = make_user(secured, "carol")
    client = signed_client(secured, key)
    with pytest.raises(ClientError) as excinfo:
        client.list_pipelines()
    assert error(excinfo)[0] == "AccessDeniedException"
    identities.add_member("readers", "carol")
    assert client.list_pipelines()["pipelines"] == []


@sqlite_only
def test_the_aws_cli_works_with_a_users_keys(
    secured: Running, admin: Any, repo: Path, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    admin.create_pipeline(pipeline=pipeline("app", repo))
    key_id, secret = make_user(secured, "cli", managed=["AWSCodePipeline_ReadOnlyAccess"])
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    aws = str(Path(sys.executable).with_name("aws"))
    listed = subprocess.run(
        [aws, "codepipeline", "list-pipelines", "--endpoint-url", secured.endpoint],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert [p["name"] for p in json.loads(listed.stdout)["pipelines"]] == ["app"]
    refused = subprocess.run(
        [
            aws,
            "codepipeline",
            "delete-pipeline",
            "--name",
            "app",
            "--endpoint-url",
            secured.endpoint,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0
    assert "AccessDeniedException" in refused.stderr


@pytest.mark.parametrize("path", ["/caf%C3%A9", "/%FF%FE", "/logs/%E2%9C%93"])
def test_unicode_in_paths_is_never_a_server_error(secured: Running, path: str) -> None:
    import http.client

    host, port = secured.endpoint.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST", path, body=b"{}", headers={"X-Amz-Target": "x"})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert 400 <= response.status < 500
