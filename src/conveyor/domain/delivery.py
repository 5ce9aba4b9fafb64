"""Judging one webhook delivery: does it prove where it comes from, and do its filters pass.

Authentication, by the webhook's type:

- ``GITHUB_HMAC``: ``X-Hub-Signature-256: sha256=<hex>`` (or, failing that, the older
  ``X-Hub-Signature: sha1=<hex>``) must be the HMAC of the raw body keyed with the secret
  token, compared in constant time;
- ``IP``: the sender's address must lie in ``AllowedIPRange`` (an IPv4 address reaching an
  IPv6 socket as ``::ffff:a.b.c.d`` counts as the IPv4 address);
- ``UNAUTHENTICATED``: every delivery passes.

Filters: every filter's ``jsonPath`` must select something in the JSON body; with
``matchEquals``, one of the selected values must equal it once its ``{Name}`` placeholders
hold the target action's configuration values. Strings compare as they are, other JSON values
as their compact JSON text (``true``, ``42``, ``null``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.domain.webhooks import WebhookAuthentication, WebhookDefinition, compiled

SIGNATURE_256 = "x-hub-signature-256"
SIGNATURE_1 = "x-hub-signature"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A delivery turned away: the HTTP status to answer and why."""

    status: int
    reason: str


def authenticate(
    definition: WebhookDefinition, body: bytes, headers: Mapping[str, str], client: str | None
) -> Refusal | None:
    """Why the delivery does not prove it comes from the webhook's sender, or None when it
    does. ``headers`` are keyed in lower case; ``client`` is the sender's address."""
    if definition.authentication == WebhookAuthentication.GITHUB_HMAC:
        return _signed(definition.secret_token or "", body, headers)
    if definition.authentication == WebhookAuthentication.IP:
        return _from_range(definition, client)
    return None


def _signed(secret: str, body: bytes, headers: Mapping[str, str]) -> Refusal | None:
    for header, prefix, digest in (
        (SIGNATURE_256, "sha256=", hashlib.sha256),
        (SIGNATURE_1, "sha1=", hashlib.sha1),
    ):
        given = headers.get(header)
        if given is None:
            continue
        expected = prefix + hmac.new(secret.encode(), body, digest).hexdigest()
        if hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
            return None
        return Refusal(401, f"The {header} signature does not match the body and secret token.")
    return Refusal(401, f"The delivery has no {SIGNATURE_256} (or {SIGNATURE_1}) signature.")


def _from_range(definition: WebhookDefinition, client: str | None) -> Refusal | None:
    network = definition.network
    try:
        address = ipaddress.ip_address((client or "").split("%", 1)[0])
    except ValueError:
        return Refusal(403, "The sender's address is not known, so it cannot be in range.")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if network is None or address not in network:
        return Refusal(403, f"The sender's address {address} is not in {network}.")
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def unmatched(
    definition: WebhookDefinition, payload: Any, configuration: Mapping[str, str]
) -> str | None:
    """Which filter the JSON ``payload`` does not pass, said for people, or None when it
    passes them all. ``configuration`` must hold every placeholder the filters name."""
    for index, rule in enumerate(definition.filters, 1):
        values = [match.value for match in compiled(rule.json_path).find(payload)]
        if not values:
            return f"filter {index}: {rule.json_path} selects nothing in the body"
        expected = rule.expected(configuration)
        if expected is not None and not any(_text(v) == expected for v in values):
            seen = ", ".join(repr(_text(v))[:80] for v in values[:3])
            return f"filter {index}: {rule.json_path} is {seen}, not {expected!r}"
    return None
