"""Users, groups, their policies and access keys: the rules around the rows.

Names follow IAM (users up to 64 characters of ``[A-Za-z0-9+=,.@_-]``, groups up to 128);
policy documents are checked when they are attached, so a document with a mistake is refused
with its statement and field named, never found out at the first request. A key's secret is
shown once, when it is made, and kept sealed.

The server asks `principal` for the user behind each signed request; what it finds is kept
for `CACHE_SECONDS`, so a deleted key or changed policy takes effect within that time on every
server of the database, whichever process made the change.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from conveyor.auth.cipher import Cipher, LazyCipher
from conveyor.domain.access import MANAGED
from conveyor.domain.arn import Scope
from conveyor.domain.policy import Policy, PolicyError, parse_policy
from conveyor.store import DuplicateKey, KeyRecord, PrincipalRecord, Store
from conveyor.store.identities import GROUP, USER

CACHE_SECONDS = 2.0
_USER_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")
_GROUP_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,128}")
_POLICY_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,128}")
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


class IdentityError(ValueError):
    """A user, group, key or policy that cannot be made or found; the message says why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The user behind an access key, with every policy that applies to it."""

    user: str
    user_id: str
    arn: str
    access_key: str
    secret: str
    policies: tuple[Policy, ...]


@dataclass(frozen=True, slots=True)
class NewKey:
    access_key_id: str
    secret_access_key: str
    user: str


def _new_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:17].upper()


class IdentityService:
    def __init__(
        self,
        store: Store,
        cipher: Cipher | LazyCipher,
        scope: Scope,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._cipher = cipher
        self._scope = scope
        self._clock = clock
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def user_arn(self, user: str) -> str:
        return f"arn:{self._scope.partition}:iam::{self._scope.account}:user/{user}"

    # Users and groups.

    def create(
        self,
        kind: str,
        name: str,
        policies: Sequence[tuple[str, str]] = (),
        managed: Sequence[str] = (),
        members: Sequence[str] = (),
    ) -> PrincipalRecord:
        """Make a user or group with inline ``policies`` (name, JSON document), ``managed``
        policy names and ``members`` (a user's groups, a group's users), in one transaction;
        or raise `IdentityError`."""
        pattern = _USER_NAME if kind == USER else _GROUP_NAME
        if not pattern.fullmatch(name):
            raise IdentityError(
                f"{kind} name {name!r} must be 1 to {64 if kind == USER else 128} characters"
                " of letters, digits and +=,.@_-"
            )
        documents = [(policy, _checked(policy, text)) for policy, text in policies]
        for policy in managed:
            if policy not in MANAGED:
                raise IdentityError(
                    f"{policy!r} is not a managed policy; there are {', '.join(sorted(MANAGED))}"
                )
        names = [p for p, _ in documents] + list(managed)
        if len(set(names)) != len(names):
            raise IdentityError(f"{kind} {name}: two policies have the same name")
        try:
            with self.store.write() as tx:
                if tx.identities.exists(kind, name):
                    raise IdentityError(f"{kind} {name} already exists")
                if kind == USER:
                    tx.identities.add_user(name, _new_id("AIDA"), self._clock())
                else:
                    tx.identities.add_group(name, _new_id("AGPA"), self._clock())
                for policy, text in documents:
                    tx.identities.attach(kind, name, policy, text)
                for policy in managed:
                    tx.identities.attach(kind, name, policy, None)
                other = GROUP if kind == USER else USER
                for member in members:
                    if not tx.identities.exists(other, member):
                        raise IdentityError(f"{other} {member} does not exist")
                    group, user = (member, name) if kind == USER else (name, member)
                    tx.identities.add_member(group, user)
        except DuplicateKey:
            raise IdentityError(f"{kind} {name} already exists") from None
        self.forget()
        return self.get(kind, name)

    def add_member(self, group: str, user: str) -> None:
        try:
            with self.store.write() as tx:
                for kind, who in ((GROUP, group), (USER, user)):
                    if not tx.identities.exists(kind, who):
                        raise IdentityError(f"{kind} {who} does not exist")
                tx.identities.add_member(group, user)
        except DuplicateKey:
            raise IdentityError(f"user {user} is already in group {group}") from None
        self.forget()

    def get(self, kind: str, name: str) -> PrincipalRecord:
        with self.store.read() as tx:
            found = tx.identities.principals(kind, name)
        if not found:
            raise IdentityError(f"{kind} {name} does not exist")
        return found[0]

    def all(self, kind: str) -> list[PrincipalRecord]:
        with self.store.read() as tx:
            return tx.identities.principals(kind)

    def delete(self, kind: str, name: str) -> None:
        with self.store.write() as tx:
            if not tx.identities.delete(kind, name):
                raise IdentityError(f"{kind} {name} does not exist")
        self.forget()

    # Access keys.

    def create_key(self, user: str) -> NewKey:
        secret = secrets.token_urlsafe(30)
        key_id = _new_key_id()
        with self.store.write() as tx:
            if not tx.identities.exists(USER, user):
                raise IdentityError(f"user {user} does not exist")
            tx.identities.add_key(key_id, user, self._cipher.seal(secret), self._clock())
        return NewKey(key_id, secret, user)

    def keys(self, user: str | None = None) -> list[KeyRecord]:
        with self.store.read() as tx:
            return tx.identities.keys(user)

    def delete_key(self, key_id: str) -> None:
        with self.store.write() as tx:
            if not tx.identities.delete_key(key_id):
                raise IdentityError(f"access key {key_id} does not exist")
        self.forget()

    # What the server asks.

    def principal(self, key_id: str) -> Principal | None:
        """The user who owns ``key_id`` with its policies, or None: from the cache when it is
        younger than `CACHE_SECONDS`."""
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        found = self._load(key_id)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_id] = (now, found)
        return found

    def is_cached(self, key_id: str) -> bool:
        cached = self._cache.get(key_id)
        return cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def _load(self, key_id: str) -> Principal | None:
        with self.store.read() as tx:
            owner = tx.identities.key_owner(key_id)
            if owner is None:
                return None
            (user,) = tx.identities.principals(USER, owner.user)
            groups = [g for name in user.members for g in tx.identities.principals(GROUP, name)]
        policies = [_policy(name, text) for name, text in user.policies]
        for group in groups:
            policies.extend(_policy(name, text) for name, text in group.policies)
        return Principal(
            user=owner.user,
            user_id=owner.user_id,
            arn=self.user_arn(owner.user),
            access_key=key_id,
            secret=self._cipher.open(owner.sealed_secret),
            policies=tuple(policies),
        )


def _checked(name: str, text: str) -> str:
    if not _POLICY_NAME.fullmatch(name):
        raise IdentityError(f"policy name {name!r} must be 1 to 128 of letters, digits, +=,.@_-")
    try:
        parse_policy(name, text)
    except PolicyError as exc:
        raise IdentityError(str(exc)) from None
    return text


def _policy(name: str, text: str | None) -> Policy:
    return MANAGED[name] if text is None else parse_policy(name, text)
