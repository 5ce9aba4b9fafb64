"""The pure rules of webhooks: definitions, authentication of deliveries, filters."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from conveyor.domain.delivery import authenticate, unmatched
from conveyor.domain.errors import (
    InvalidWebhookAuthenticationParametersException,
    InvalidWebhookFilterPatternException,
)
from conveyor.domain.webhooks import (
    masked,
    parse_definition,
    require_placeholders,
    with_secret_kept,
)

BODY = b'{"ref": "refs/heads/main"}'


def raw(authentication: str = "GITHUB_HMAC", **configuration: str) -> dict[str, Any]:
    return {
        "name": "hook",
        "targetPipeline": "app",
        "targetAction": "Source",
        "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{BranchName}"}],
        "authentication": authentication,
        "authenticationConfiguration": configuration
        or ({"SecretToken": "k"} if authentication == "GITHUB_HMAC" else {}),
    }


@pytest.mark.parametrize(
    ("authentication", "configuration"),
    [
        ("GITHUB_HMAC", {"SecretToken": "k"}),
        ("IP", {"AllowedIPRange": "10.0.0.0/8"}),
        ("IP", {"AllowedIPRange": "2001:db8::/32"}),
        ("IP", {"AllowedIPRange": "192.0.2.7"}),
        ("UNAUTHENTICATED", {}),
    ],
)
def test_each_authentication_takes_its_own_configuration(
    authentication: str, configuration: dict[str, str]
) -> None:
    definition = parse_definition(
        {**raw(authentication), "authenticationConfiguration": configuration}
    )
    assert definition.authentication == authentication


@pytest.mark.parametrize(
    ("authentication", "configuration"),
    [
        ("GITHUB_HMAC", {}),
        ("GITHUB_HMAC", {"AllowedIPRange": "10.0.0.0/8"}),
        ("IP", {}),
        ("IP", {"AllowedIPRange": "ten"}),
        ("IP", {"AllowedIPRange": "10.0.0.0/8", "SecretToken": "k"}),
        ("UNAUTHENTICATED", {"SecretToken": "k"}),
        ("UNAUTHENTICATED", {"AllowedIPRange": "10.0.0.0/8"}),
    ],
)
def test_other_authentication_configurations_are_refused(
    authentication: str, configuration: dict[str, str]
) -> None:
    with pytest.raises(InvalidWebhookAuthenticationParametersException):
        parse_definition({**raw(authentication), "authenticationConfiguration": configuration})


@pytest.mark.parametrize("path", ["$.", "$.a[?(", "$$", ")(", "$.a.length()"])
def test_json_paths_that_cannot_be_read_are_refused(path: str) -> None:
    with pytest.raises(InvalidWebhookFilterPatternException, match="not a valid JsonPath"):
        parse_definition({**raw(), "filters": [{"jsonPath": path}]})


def test_placeholders_must_be_configuration_properties_of_the_action() -> None:
    definition = parse_definition(raw())
    require_placeholders(definition, {"BranchName": "main"})
    with pytest.raises(
        InvalidWebhookFilterPatternException, match=r"\{BranchName\}.*RepositoryUrl"
    ):
        require_placeholders(definition, {"RepositoryUrl": "x"})


def test_the_secret_is_masked_and_a_mask_sent_back_keeps_it() -> None:
    stored = raw(SecretToken="real")
    assert masked(stored)["authenticationConfiguration"] == {"SecretToken": "****"}
    assert stored["authenticationConfiguration"] == {"SecretToken": "real"}
    again = with_secret_kept(raw(SecretToken="****"), stored)
    assert again["authenticationConfiguration"] == {"SecretToken": "real"}
    assert with_secret_kept(raw(SecretToken="new"), stored)["authenticationConfiguration"] == {
        "SecretToken": "new"
    }


def signature(body: bytes, key: str, digest: Any = hashlib.sha256) -> str:
    return hmac.new(key.encode(), body, digest).hexdigest()


def test_hmac_deliveries_need_a_signature_of_the_body_with_the_secret() -> None:
    definition = parse_definition(raw(SecretToken="k"))
    good = {"x-hub-signature-256": "sha256=" + signature(BODY, "k")}
    assert authenticate(definition, BODY, good, None) is None
    upper = {"x-hub-signature-256": "sha256=" + signature(BODY, "k").upper()}
    assert authenticate(definition, BODY, upper, None) is None
    sha1 = {"x-hub-signature": "sha1=" + signature(BODY, "k", hashlib.sha1)}
    assert authenticate(definition, BODY, sha1, None) is None
    for headers in (
        {},
        {"x-hub-signature-256": "sha256=" + signature(BODY, "other")},
        {"x-hub-signature-256": signature(BODY, "k")},  # without its prefix
        {"x-hub-signature-256": "sha1=" + signature(BODY, "k", hashlib.sha1)},
        # A wrong SHA-256 signature is not saved by a right SHA-1 one.
        {"x-hub-signature-256": "sha256=00", **sha1},
    ):
        refusal = authenticate(definition, BODY, headers, None)
        assert refusal is not None and refusal.status == 401, headers


@pytest.mark.parametrize(
    ("client", "allowed"),
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),
        ("11.0.0.1", False),
        ("2001:db8::1", False),
        (None, False),
        ("not an address", False),
    ],
)
def test_ip_deliveries_must_come_from_the_range(client: str | None, allowed: bool) -> None:
    definition = parse_definition(raw("IP", AllowedIPRange="10.0.0.0/8"))
    refusal = authenticate(definition, BODY, {}, client)
    assert (refusal is None) == allowed
    assert refusal is None or refusal.status == 403


def test_unauthenticated_deliveries_always_pass() -> None:
    assert authenticate(parse_definition(raw("UNAUTHENTICATED")), b"", {}, None) is None


def test_filters_select_and_compare_with_placeholders_filled_in() -> None:
    definition = parse_definition(
        {
            **raw(),
            "filters": [
                {"jsonPath": "$.ref", "matchEquals": "refs/heads/{BranchName}"},
                {"jsonPath": "$.commits[*].id", "matchEquals": "b"},
                {"jsonPath": "$.forced", "matchEquals": "false"},
                {"jsonPath": "$.size", "matchEquals": "3"},
            ],
        }
    )
    config = {"BranchName": "main"}
    body = {"ref": "refs/heads/main", "commits": [{"id": "a"}, {"id": "b"}], "forced": False}
    assert unmatched(definition, {**body, "size": 3}, config) is None
    assert "filter 4" in str(unmatched(definition, body, config))
    assert "filter 1" in str(unmatched(definition, {**body, "size": 3}, {"BranchName": "dev"}))
    assert "filter 2" in str(
        unmatched(definition, {**body, "size": 3, "commits": [{"id": "c"}]}, config)
    )
