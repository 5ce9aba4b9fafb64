"""IAM identity-based policies: reading documents and deciding a request, as IAM does.

A request is denied unless some statement allows it, and any statement that denies it wins
over every allow. A statement matches when its Action (or every pattern of its NotAction
misses), its Resource (or NotResource) and all its Conditions match. Actions compare without
regard to case, resources and condition values as written; ``*`` and ``?`` are wildcards.
Condition operators: StringEquals, StringNotEquals, StringEqualsIgnoreCase, StringLike,
StringNotLike, ArnEquals, ArnLike, ArnNotEquals, ArnNotLike, Bool, IpAddress, NotIpAddress;
several keys under one operator must all match, several values of one key are alternatives.
A key the request lacks fails every operator except the negated ones.

Pure: the caller hands over the request's facts through a lookup function.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

VERSIONS = frozenset({"2012-10-17", "2008-10-17"})
_STATEMENT_FIELDS = frozenset(
    {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}
)
# A request's facts: a condition key (lower case) → its value(s), or None when it has none.
Facts = Callable[[str], str | Sequence[str] | None]


class PolicyError(ValueError):
    """A policy document that IAM would refuse; the message names the statement and field."""


class Effect(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


class Decision(StrEnum):
    ALLOWED = "allowed"
    # No statement allows it (IAM: "because no identity-based policy allows the … action").
    IMPLICIT_DENY = "implicit"
    # A statement denies it (IAM: "with an explicit deny in an identity-based policy").
    EXPLICIT_DENY = "explicit"


@lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if pattern == "*":
        return True
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def _ip_in(cidr: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


# operator → (test of one request value against one policy value, negated?)
_OPERATORS: Mapping[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda want, got: want == got, False),
    "StringNotEquals": (lambda want, got: want == got, True),
    "StringEqualsIgnoreCase": (lambda want, got: want.lower() == got.lower(), False),
    "StringLike": (wildcard_match, False),
    "StringNotLike": (wildcard_match, True),
    "ArnEquals": (lambda want, got: want == got, False),
    "ArnNotEquals": (lambda want, got: want == got, True),
    "ArnLike": (wildcard_match, False),
    "ArnNotLike": (wildcard_match, True),
    "Bool": (lambda want, got: want.lower() == got.lower(), False),
    "IpAddress": (_ip_in, False),
    "NotIpAddress": (_ip_in, True),
}
OPERATORS = frozenset(_OPERATORS)


@dataclass(frozen=True, slots=True)
class Condition:
    operator: str
    # Lower case: IAM's global condition keys compare without regard to case.
    key: str
    values: tuple[str, ...]

    def holds(self, facts: Facts) -> bool:
        test, negated = _OPERATORS[self.operator]
        found = facts(self.key)
        if found is None:
            return negated
        got = [found] if isinstance(found, str) else list(found)
        hit = any(test(want, value) for want in self.values for value in got)
        return not hit if negated else hit


@dataclass(frozen=True, slots=True)
class Statement:
    effect: Effect
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_action: bool = False
    not_resource: bool = False
    conditions: tuple[Condition, ...] = ()
    sid: str | None = None

    def applies(self, action: str, resource: str, facts: Facts) -> bool:
        hit = any(wildcard_match(p, action, ignore_case=True) for p in self.actions)
        if hit == self.not_action:
            return False
        hit = any(wildcard_match(p, resource) for p in self.resources)
        if hit == self.not_resource:
            return False
        return all(condition.holds(facts) for condition in self.conditions)

    def mentions(self, key_prefix: str) -> bool:
        return any(c.key.startswith(key_prefix) for c in self.conditions)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    statements: tuple[Statement, ...]


def evaluate(policies: Sequence[Policy], action: str, resource: str, facts: Facts) -> Decision:
    """IAM's decision for one action on one resource under the caller's policies."""
    allowed = False
    for policy in policies:
        for statement in policy.statements:
            if statement.effect is Effect.ALLOW and allowed:
                continue
            if statement.applies(action, resource, facts):
                if statement.effect is Effect.DENY:
                    return Decision.EXPLICIT_DENY
                allowed = True
    return Decision.ALLOWED if allowed else Decision.IMPLICIT_DENY


# Reading documents.


def parse_policy(name: str, document: str | Mapping[str, Any]) -> Policy:
    """The policy in ``document`` (JSON text or its parsed form), or `PolicyError`."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as exc:
            raise PolicyError(
                f"policy {name}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
            ) from None
    if not isinstance(document, Mapping):
        raise PolicyError(f"policy {name}: a policy document is a JSON object")
    unknown = sorted(set(document) - {"Version", "Id", "Statement"})
    if unknown:
        raise PolicyError(f"policy {name}: unknown field {unknown[0]!r}")
    version = document.get("Version")
    if version is not None and version not in VERSIONS:
        raise PolicyError(f"policy {name}: Version must be 2012-10-17, not {version!r}")
    raw = document.get("Statement")
    if raw is None:
        raise PolicyError(f"policy {name}: the Statement field is missing")
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list) or not items:
        raise PolicyError(f"policy {name}: Statement must be an object or a non-empty list")
    return Policy(name, tuple(_statement(name, i, item) for i, item in enumerate(items)))


def _strings(where: str, field: str, value: Any) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise PolicyError(f"{where}: {field} must be a string or a non-empty list of strings")
    return tuple(values)


def _statement(name: str, index: int, item: Any) -> Statement:
    sid = item.get("Sid") if isinstance(item, Mapping) else None
    where = f"policy {name}, statement {index + 1}" + (f" ({sid})" if sid else "")
    if not isinstance(item, Mapping):
        raise PolicyError(f"{where}: a statement is a JSON object")
    if "Principal" in item or "NotPrincipal" in item:
        raise PolicyError(f"{where}: Principal has no place in an identity-based policy")
    unknown = sorted(set(item) - _STATEMENT_FIELDS)
    if unknown:
        raise PolicyError(f"{where}: unknown field {unknown[0]!r}")
    effect = item.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{where}: Effect must be Allow or Deny, not {effect!r}")
    actions, not_action = _one_of(where, item, "Action")
    resources, not_resource = _one_of(where, item, "Resource")
    for action in actions:
        if action != "*" and ":" not in action:
            raise PolicyError(
                f"{where}: {'NotAction' if not_action else 'Action'} {action!r}"
                " is not of the form service:Operation"
            )
    return Statement(
        Effect(effect),
        actions,
        resources,
        not_action,
        not_resource,
        _conditions(where, item.get("Condition")),
        sid if isinstance(sid, str) else None,
    )


def _one_of(where: str, item: Mapping[str, Any], field: str) -> tuple[tuple[str, ...], bool]:
    negated = f"Not{field}"
    if (field in item) == (negated in item):
        raise PolicyError(f"{where}: give exactly one of {field} and {negated}")
    if field in item:
        return _strings(where, field, item[field]), False
    return _strings(where, negated, item[negated]), True


def _conditions(where: str, raw: Any) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: Condition must be an object of operators")
    found = []
    for operator, keys in raw.items():
        if operator not in _OPERATORS:
            raise PolicyError(
                f"{where}: Condition operator {operator!r} is not one of"
                f" {', '.join(sorted(_OPERATORS))}"
            )
        if not isinstance(keys, Mapping) or not keys:
            raise PolicyError(f"{where}: Condition {operator} must be an object of keys")
        for key, values in keys.items():
            field = f"Condition {operator} {key}"
            strings = _strings(
                where, field, str(values).lower() if isinstance(values, bool) else values
            )
            if operator.endswith("IpAddress"):
                for value in strings:
                    try:
                        ipaddress.ip_network(value, strict=False)
                    except ValueError:
                        raise PolicyError(
                            f"{where}: {field}: {value!r} is not an IP address or range"
                        ) from None
            found.append(Condition(operator, str(key).lower(), strings))
    return tuple(found)
