"""With authentication required, the console asks for a signed-in user, shows and changes only
what the user's policies allow, and records each change in the audit trail."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from conveyor.config import Settings
from conveyor.console.signin import SESSION
from conveyor.server import Running, running
from tests.support.auth import allow, make_user, signed_client
from tests.support.engine import (
    approval,
    declaration,
    latest_execution_id,
    make_repo,
    stage,
    wait_for,
)

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


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
def pipelines(admin: Any, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo)
    for name in ("shop", "secret"):
        admin.create_pipeline(pipeline=declaration(name, repo, stage("Gate", approval())))


def _browser(live: Running) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = "test-browser"
    return session


def _csrf(session: requests.Session, live: Running, path: str) -> str:
    page = session.get(f"{live.endpoint}{path}")
    found = _CSRF.search(page.text)
    assert found, page.text
    return found[1]


def _sign_in(session: requests.Session, live: Running, key: tuple[str, str]) -> requests.Response:
    token = _csrf(session, live, "/console/sign-in")
    return session.post(
        f"{live.endpoint}/console/sign-in",
        data={"csrf": token, "accessKeyId": key[0], "secretAccessKey": key[1], "next": "/"},
        allow_redirects=False,
    )


def test_every_page_form_and_stream_asks_for_a_signed_in_user(
    secured: Running, pipelines: None
) -> None:
    browser = _browser(secured)
    for path in ("/", "/pipelines/shop", "/pipelines/shop/definition", "/action-types"):
        page = browser.get(f"{secured.endpoint}{path}", allow_redirects=False)
        assert page.status_code == 303, path
        assert page.headers["location"].startswith("/console/sign-in?next=")
    assert browser.get(f"{secured.endpoint}/console/events").status_code == 401
    token = _csrf(browser, secured, "/console/sign-in")
    started = browser.post(f"{secured.endpoint}/pipelines/shop/release", data={"csrf": token})
    assert started.status_code == 401
    sign_in = browser.get(f"{secured.endpoint}/console/sign-in")
    assert "there is no sign-in" not in sign_in.text


def test_a_wrong_secret_or_a_forged_session_signs_nobody_in(
    secured: Running, pipelines: None
) -> None:
    key = make_user(secured, "reader", managed=["AWSCodePipeline_ReadOnlyAccess"])
    browser = _browser(secured)
    refused = _sign_in(browser, secured, (key[0], "not-the-secret"))
    assert refused.status_code == 401
    assert "UnrecognizedClientException" in refused.text
    assert SESSION not in browser.cookies
    browser.cookies.set(SESSION, f"{key[0]}.99999999999.{'0' * 64}")
    page = browser.get(f"{secured.endpoint}/", allow_redirects=False)
    assert page.status_code == 303


def test_a_reader_sees_what_its_policy_allows_and_may_change_nothing(
    secured: Running, admin: Any, pipelines: None
) -> None:
    shop = "arn:aws:codepipeline:us-east-1:000000000000:shop"
    key = make_user(
        secured,
        "reader",
        policies=[
            allow("codepipeline:ListPipelines"),
            allow("codepipeline:Get*", "codepipeline:List*", resource=[shop, f"{shop}/*"]),
        ],
    )
    browser = _browser(secured)
    signed = _sign_in(browser, secured, key)
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    listed = browser.get(f"{secured.endpoint}/")
    assert listed.status_code == 200
    assert "Signed in as <strong>reader</strong>" in listed.text
    assert "/pipelines/shop" in listed.text and "/pipelines/secret" not in listed.text
    assert browser.get(f"{secured.endpoint}/pipelines/shop").status_code == 200
    hidden = browser.get(f"{secured.endpoint}/pipelines/secret")
    assert hidden.status_code == 403 and "AccessDeniedException" in hidden.text
    before = latest_execution_id(admin, "shop")
    token = _csrf(browser, secured, "/pipelines/shop")
    refused = browser.post(f"{secured.endpoint}/pipelines/shop/release", data={"csrf": token})
    assert refused.status_code == 400  # as the API answers AccessDeniedException
    assert "is not authorized to perform: codepipeline:StartPipelineExecution" in refused.text
    assert latest_execution_id(admin, "shop") == before


def test_a_change_is_made_as_the_user_and_recorded_in_the_audit_trail(
    secured: Running, admin: Any, pipelines: None
) -> None:
    key = make_user(secured, "releaser", managed=["AWSCodePipeline_FullAccess"])
    browser = _browser(secured)
    _sign_in(browser, secured, key)
    token = _csrf(browser, secured, "/pipelines/shop")
    done = browser.post(
        f"{secured.endpoint}/pipelines/shop/release", data={"csrf": token}, allow_redirects=False
    )
    assert done.status_code == 303
    newest = admin.list_pipeline_executions(pipelineName="shop")["pipelineExecutionSummaries"][0]
    assert newest["trigger"]["triggerDetail"].endswith(":user/releaser")
    auditor = make_user(secured, "auditor", policies=[allow("cloudtrail:LookupEvents")])
    trail = signed_client(secured, auditor, "cloudtrail")
    by_name = [{"AttributeKey": "EventName", "AttributeValue": "StartPipelineExecution"}]

    def recorded() -> list[dict[str, Any]]:
        events = trail.lookup_events(LookupAttributes=by_name)["Events"]
        return [e for e in events if e.get("Username") == "releaser"]

    event = json.loads(wait_for(recorded, 30, "the console's audit record")[0]["CloudTrailEvent"])
    assert event["userIdentity"]["accessKeyId"] == key[0]
    assert event["userAgent"].startswith("conveyor-console")
    assert event["requestParameters"]["name"] == "shop"


def test_signing_out_ends_the_session(secured: Running, pipelines: None) -> None:
    key = make_user(secured, "someone", managed=["AWSCodePipeline_ReadOnlyAccess"])
    browser = _browser(secured)
    _sign_in(browser, secured, key)
    token = _csrf(browser, secured, "/")
    out = browser.post(
        f"{secured.endpoint}/console/sign-out", data={"csrf": token}, allow_redirects=False
    )
    assert out.status_code == 303
    assert browser.get(f"{secured.endpoint}/", allow_redirects=False).status_code == 303


def test_a_deleted_key_ends_its_sessions(secured: Running, pipelines: None) -> None:
    key = make_user(secured, "leaver", managed=["AWSCodePipeline_ReadOnlyAccess"])
    browser = _browser(secured)
    _sign_in(browser, secured, key)
    assert browser.get(f"{secured.endpoint}/", allow_redirects=False).status_code == 200
    secured.application.access.identities.delete_key(key[0])
    wait_for(
        lambda: browser.get(f"{secured.endpoint}/", allow_redirects=False).status_code == 303,
        30,
        "the session to end",
    )


def test_sign_in_goes_back_only_to_a_page_of_this_server(secured: Running) -> None:
    key = make_user(secured, "traveller", managed=["AWSCodePipeline_ReadOnlyAccess"])
    browser = _browser(secured)
    token = _csrf(browser, secured, "/console/sign-in")
    answer = browser.post(
        f"{secured.endpoint}/console/sign-in",
        data={
            "csrf": token,
            "accessKeyId": key[0],
            "secretAccessKey": key[1],
            "next": "//evil.example/",
        },
        allow_redirects=False,
    )
    assert answer.headers["location"] == "/"
