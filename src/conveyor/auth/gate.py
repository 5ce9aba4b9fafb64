"""The request gate: who is calling, whether they may, and where a request may come from.

With authentication required, a request is its signer's: the access key in the signature
must be one of the store's and the signature must be right (`conveyor.auth.sigv4`); then each
operation is decided on the caller's policies (`conveyor.domain.policy`). Without it, as
before, the caller is named after whatever access key the request carries and may do
anything: such a server listens on loopback only (`conveyor.server`).

The Host check keeps a web page from reaching a loopback server through a DNS name that
resolves to 127.0.0.1 (DNS rebinding): a request must name the server's own address.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from conveyor.auth.audit import AuditTrail
from conveyor.auth.identities import IdentityService, Principal
from conveyor.auth.sigv4 import (
    Received,
    check_payload,
    check_scope,
    check_time,
    read_authorization,
    verify,
)
from conveyor.domain.arn import Scope
from conveyor.domain.errors import AccessDeniedException, UnrecognizedClientException
from conveyor.domain.policy import Decision, evaluate
from conveyor.store import Store

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
# The longest access key id AWS issues (IAM's AccessKeyId shape); the caller's ARN, and the
# owner of the jobs it claims, are stored in columns sized for it.
MAX_ACCESS_KEY = 128
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True, slots=True)
class Caller:
    """The caller of one request."""

    arn: str
    access_key: str
    source_ip: str
    # The signer with its policies; None when authentication is off (everything is allowed).
    principal: Principal | None = None
    # Facts computed once per request for policy conditions (resource tags, by ARN).
    memo: dict[str, Any] = field(default_factory=dict)

    @property
    def user(self) -> str:
        return self.principal.user if self.principal else self.arn.rpartition("/")[2]

    def identity(self, account: str) -> dict[str, Any]:
        """The CloudTrail ``userIdentity`` element."""
        found: dict[str, Any] = {
            "type": "IAMUser",
            "arn": self.arn,
            "accountId": account,
            "accessKeyId": self.access_key,
            "userName": self.user,
        }
        if self.principal is not None:
            found["principalId"] = self.principal.user_id
        return found


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hostname(value: str) -> str:
    """The name in a Host header, without its port (and an IPv6 address without brackets)."""
    if value.startswith("["):
        return value[1:].partition("]")[0].lower()
    return value.rpartition(":")[0].lower() if value.count(":") == 1 else value.lower()


class Access:
    def __init__(
        self,
        store: Store,
        identities: IdentityService,
        audit: AuditTrail,
        scope: Scope,
        *,
        required: bool,
        host: str,
        public_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.identities = identities
        self.audit = audit
        self.scope = scope
        self.required = required
        self._clock = clock
        if host in _WILDCARDS:
            self._hosts: frozenset[str] | None = None
        else:
            names = {host.lower().strip("[]")}
            if is_loopback(host):
                names |= _LOOPBACK_NAMES
            if public_url:
                names.add((urlsplit(public_url).hostname or "").lower())
            self._hosts = frozenset(names)

    def host_problem(self, value: str | None) -> str | None:
        """Why a request with this Host header is refused, or None when it is not."""
        if self._hosts is None:
            return None
        name = _hostname(value or "")
        if name in self._hosts:
            return None
        return (
            f"The Host header {value!r} does not name this server"
            f" ({', '.join(sorted(self._hosts))}); set public_url to the address clients use."
        )

    def looks_up(self, request: Received) -> bool:
        """Whether authenticating ``request`` would read the store (its key is not cached)."""
        if not self.required:
            return False
        match = _CREDENTIAL.search(",".join(request.header("authorization")))
        return match is not None and not self.identities.is_cached(match[1])

    def authenticate(self, request: Received, service: str, source_ip: str) -> Caller:
        """The caller, or the AWS error for a missing, malformed or wrong signature."""
        if not self.required:
            return self._anonymous(request, source_ip)
        auth = read_authorization(request)
        now = datetime.fromtimestamp(self._clock(), UTC)
        stamp = check_time(request, auth, now)
        check_scope(auth, self.scope.region, service)
        principal = self.identities.principal(auth.access_key)
        if principal is None:
            raise UnrecognizedClientException(
                "The security token included in the request is invalid."
            )
        check_payload(request)
        verify(request, auth, principal.secret, stamp)
        return Caller(principal.arn, auth.access_key, source_ip, principal)

    def _anonymous(self, request: Received, source_ip: str) -> Caller:
        return unsigned_caller(request.header("authorization"), self.scope.account, source_ip)

    def reads_tags(self, caller: Caller, resource: str) -> bool:
        """Whether deciding on ``resource`` would read its tags from the store: a policy of
        the caller has an ``aws:ResourceTag/...`` condition and the tags are not read yet."""
        principal = caller.principal
        if principal is None or tagged_arn(resource) in caller.memo:
            return False
        return any(
            statement.mentions("aws:resourcetag/")
            for policy in principal.policies
            for statement in policy.statements
        )

    def decide(self, caller: Caller, action: str, resource: str) -> Decision:
        if caller.principal is None:
            return Decision.ALLOWED
        return evaluate(caller.principal.policies, action, resource, self._facts(caller, resource))

    def authorize(self, caller: Caller, action: str, resource: str) -> None:
        """Refuse with AWS's `AccessDeniedException` unless the caller may."""
        decision = self.decide(caller, action, resource)
        if decision is Decision.ALLOWED:
            return
        why = (
            "with an explicit deny in an identity-based policy"
            if decision is Decision.EXPLICIT_DENY
            else f"because no identity-based policy allows the {action} action"
        )
        raise AccessDeniedException(
            f"User: {caller.arn} is not authorized to perform: {action}"
            f" on resource: {resource} {why}"
        )

    def _facts(self, caller: Caller, resource: str) -> Callable[[str], str | Sequence[str] | None]:
        principal = caller.principal
        assert principal is not None

        def facts(key: str) -> str | Sequence[str] | None:
            if key == "aws:sourceip":
                return caller.source_ip
            if key == "aws:username":
                return principal.user
            if key == "aws:userid":
                return principal.user_id
            if key == "aws:principalarn":
                return principal.arn
            if key == "aws:securetransport":
                return "false"
            if key == "aws:currenttime":
                return datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if key.startswith("aws:resourcetag/"):
                return self._tags(caller, resource).get(key.removeprefix("aws:resourcetag/"))
            return None

        return facts

    def _tags(self, caller: Caller, resource: str) -> Mapping[str, str]:
        """The tags of the pipeline, action type or webhook ``resource`` is in, by lower-case
        key."""
        arn = tagged_arn(resource)
        if arn not in caller.memo:
            with self.store.read() as tx:
                caller.memo[arn] = {k.lower(): v for k, v in tx.tags.of(arn).items()}
        found: Mapping[str, str] = caller.memo[arn]
        return found


def unsigned_caller(authorization: Sequence[str], account: str, source_ip: str) -> Caller:
    """The caller when signatures are not checked: named after the access key it sends."""
    match = _CREDENTIAL.search(",".join(authorization))
    user = match[1] if match else "anonymous"
    if len(user) > MAX_ACCESS_KEY:
        raise UnrecognizedClientException(
            "The security token included in the request is invalid: the access key in the"
            f" Credential of the Authorization header has {len(user)} characters, more than"
            f" the {MAX_ACCESS_KEY} an access key may have."
        )
    return Caller(f"arn:aws:iam::{account}:user/{user}", user, source_ip)


def tagged_arn(resource: str) -> str:
    """The taggable ARN a resource belongs to: a stage or action's pipeline."""
    head, sep, rest = resource.rpartition(":")
    if not sep or rest.startswith(("actiontype", "webhook")) or "/" not in rest:
        return resource
    if head.endswith((":actiontype", ":webhook")):
        return resource
    return f"{head}:{rest.split('/', 1)[0]}"
