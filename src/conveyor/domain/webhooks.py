"""Webhook definitions (``WebhookDefinition``) and the rules PutWebhook holds them to.

A definition names its target (a source action of the first stage of a pipeline), the filters
a delivery's JSON body must pass, and how a delivery proves where it comes from:

=================  =============================================================
authentication     authenticationConfiguration
=================  =============================================================
GITHUB_HMAC        ``SecretToken`` only: the key of the body's HMAC signature
IP                 ``AllowedIPRange`` only: a CIDR range (or one address)
UNAUTHENTICATED    nothing
=================  =============================================================

Anything else is an ``InvalidWebhookAuthenticationParametersException``. A filter's
``jsonPath`` must be an expression JsonPath can read, and the ``{Name}`` placeholders of its
``matchEquals`` must name configuration properties of the target action; otherwise
``InvalidWebhookFilterPatternException``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from conveyor.domain.errors import (
    InvalidWebhookAuthenticationParametersException,
    InvalidWebhookFilterPatternException,
)
from conveyor.domain.pipeline import MASK

if TYPE_CHECKING:
    from jsonpath_ng import JSONPath

SECRET_TOKEN = "SecretToken"
ALLOWED_IP_RANGE = "AllowedIPRange"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookAuthentication(StrEnum):
    GITHUB_HMAC = "GITHUB_HMAC"
    IP = "IP"
    UNAUTHENTICATED = "UNAUTHENTICATED"


# The configuration member each authentication type needs; the others must be left out.
_NEEDS = {
    WebhookAuthentication.GITHUB_HMAC: SECRET_TOKEN,
    WebhookAuthentication.IP: ALLOWED_IP_RANGE,
    WebhookAuthentication.UNAUTHENTICATED: None,
}


@dataclass(frozen=True, slots=True)
class FilterRule:
    json_path: str
    match_equals: str | None = None

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The configuration properties ``matchEquals`` names, in order."""
        return tuple(_PLACEHOLDER.findall(self.match_equals or ""))

    def expected(self, configuration: Mapping[str, str]) -> str | None:
        """``matchEquals`` with each ``{Name}`` replaced by the action's value of ``Name``."""
        if self.match_equals is None:
            return None
        return _PLACEHOLDER.sub(lambda m: configuration[m[1]], self.match_equals)


@dataclass(frozen=True, slots=True)
class WebhookDefinition:
    name: str
    target_pipeline: str
    target_action: str
    filters: tuple[FilterRule, ...]
    authentication: WebhookAuthentication
    secret_token: str | None = None
    allowed_ip_range: str | None = None

    @property
    def network(self) -> IPNetwork | None:
        """The allowed range of an ``IP`` webhook."""
        return _network(self.allowed_ip_range) if self.allowed_ip_range else None


@lru_cache(maxsize=1024)
def compiled(json_path: str) -> JSONPath:
    """The JsonPath expression, parsed once; `InvalidWebhookFilterPatternException` when it
    cannot be."""
    from jsonpath_ng.ext.parser import parse as parse_jsonpath  # here: slow to import

    try:
        expression: JSONPath = parse_jsonpath(json_path)
    except Exception as exc:  # the parser raises several kinds, all meaning "not JsonPath"
        raise InvalidWebhookFilterPatternException(
            f"The filter jsonPath '{json_path}' is not a valid JsonPath expression: {exc}"
        ) from exc
    return expression


def _network(text: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise InvalidWebhookAuthenticationParametersException(
            f"authenticationConfiguration.AllowedIPRange '{text}' is not a CIDR range such as "
            "192.0.2.0/24."
        ) from exc


def parse_definition(raw: Mapping[str, Any]) -> WebhookDefinition:
    """The definition of the wire shape, checked by the rules of the module's docstring."""
    authentication = WebhookAuthentication(raw["authentication"])
    configuration = raw.get("authenticationConfiguration") or {}
    needed = _NEEDS[authentication]
    given = sorted(k for k in (SECRET_TOKEN, ALLOWED_IP_RANGE) if configuration.get(k))
    if needed is not None and needed not in given:
        raise InvalidWebhookAuthenticationParametersException(
            f"Authentication {authentication} needs authenticationConfiguration.{needed}."
        )
    extra = [k for k in given if k != needed]
    if extra:
        allowed = f"only {needed}" if needed else "no authenticationConfiguration"
        raise InvalidWebhookAuthenticationParametersException(
            f"Authentication {authentication} takes {allowed}, not {', '.join(extra)}."
        )
    definition = WebhookDefinition(
        name=raw["name"],
        target_pipeline=raw["targetPipeline"],
        target_action=raw["targetAction"],
        filters=tuple(
            FilterRule(f["jsonPath"], f.get("matchEquals")) for f in raw.get("filters") or ()
        ),
        authentication=authentication,
        secret_token=configuration.get(SECRET_TOKEN),
        allowed_ip_range=configuration.get(ALLOWED_IP_RANGE),
    )
    definition.network  # noqa: B018 - an IP range that cannot be read is refused here
    for rule in definition.filters:
        compiled(rule.json_path)
    return definition


def check_placeholders(
    definition: WebhookDefinition, configuration: Mapping[str, str]
) -> str | None:
    """Why the filters cannot be evaluated against the target action's ``configuration`` (a
    placeholder it has no property for), or None when they can."""
    for index, rule in enumerate(definition.filters, 1):
        for name in rule.placeholders:
            if name not in configuration:
                known = ", ".join(sorted(configuration)) or "none"
                return (
                    f"Filter {index} matchEquals '{rule.match_equals}' names {{{name}}}, which "
                    f"is not a configuration property of action '{definition.target_action}' "
                    f"(it has: {known})."
                )
    return None


def require_placeholders(definition: WebhookDefinition, configuration: Mapping[str, str]) -> None:
    problem = check_placeholders(definition, configuration)
    if problem is not None:
        raise InvalidWebhookFilterPatternException(problem)


def with_secret_kept(raw: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """``raw``, with a ``SecretToken`` sent back as the mask replaced by the stored one, as
    UpdatePipeline keeps masked secrets."""
    result = dict(raw)
    configuration = dict(raw.get("authenticationConfiguration") or {})
    if configuration.get(SECRET_TOKEN) == MASK and previous is not None:
        kept = (previous.get("authenticationConfiguration") or {}).get(SECRET_TOKEN)
        if kept:
            configuration[SECRET_TOKEN] = kept
            result["authenticationConfiguration"] = configuration
    return result


def masked(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The wire definition with its secret token redacted, as every answer shows it."""
    result = dict(raw)
    configuration = dict(raw.get("authenticationConfiguration") or {})
    if configuration.get(SECRET_TOKEN):
        configuration[SECRET_TOKEN] = MASK
    result["authenticationConfiguration"] = configuration
    return result
