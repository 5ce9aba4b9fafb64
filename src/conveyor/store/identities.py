"""Queries on users, groups, their policies and access keys.

Rows only: which policy documents are valid, how secrets are sealed and who may do what are
decided above the store. ``principal_kind`` is ``user`` or ``group``; a policy row whose
document is NULL attaches the managed policy of that name.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from conveyor.store.tables import (
    access_keys,
    iam_group_members,
    iam_groups,
    iam_policies,
    iam_users,
)

USER = "user"
GROUP = "group"

_KEY = (
    sa.select(access_keys.c.user_name, access_keys.c.secret, iam_users.c.user_id)
    .join(iam_users, iam_users.c.name == access_keys.c.user_name)
    .where(access_keys.c.id == sa.bindparam("key_id"))
)


@dataclass(frozen=True, slots=True)
class PrincipalRecord:
    """A user or a group with its policies: (name, document or None for a managed one)."""

    kind: str
    name: str
    id: str
    created: float
    policies: tuple[tuple[str, str | None], ...]
    # A user's groups, or a group's users.
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    user: str
    created: float


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """What a request signed with a key needs: the user, its id and the sealed secret."""

    user: str
    user_id: str
    sealed_secret: str


class Identities:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def add_user(self, name: str, user_id: str, created: float) -> None:
        self._conn.execute(sa.insert(iam_users).values(name=name, user_id=user_id, created=created))

    def add_group(self, name: str, group_id: str, created: float) -> None:
        self._conn.execute(
            sa.insert(iam_groups).values(name=name, group_id=group_id, created=created)
        )

    def add_member(self, group: str, user: str) -> None:
        self._conn.execute(sa.insert(iam_group_members).values(group_name=group, user_name=user))

    def attach(self, kind: str, principal: str, policy: str, document: str | None) -> None:
        self._conn.execute(
            sa.insert(iam_policies).values(
                principal_kind=kind, principal=principal, policy_name=policy, document=document
            )
        )

    def delete(self, kind: str, name: str) -> bool:
        """Delete a user or group with its policies (and a user's keys and memberships)."""
        table = iam_users if kind == USER else iam_groups
        self._conn.execute(
            sa.delete(iam_policies).where(
                iam_policies.c.principal_kind == kind, iam_policies.c.principal == name
            )
        )
        if kind == USER:
            self._conn.execute(sa.delete(access_keys).where(access_keys.c.user_name == name))
            self._conn.execute(
                sa.delete(iam_group_members).where(iam_group_members.c.user_name == name)
            )
        else:
            self._conn.execute(
                sa.delete(iam_group_members).where(iam_group_members.c.group_name == name)
            )
        return self._conn.execute(sa.delete(table).where(table.c.name == name)).rowcount > 0

    def exists(self, kind: str, name: str) -> bool:
        table = iam_users if kind == USER else iam_groups
        return (
            self._conn.execute(sa.select(table.c.name).where(table.c.name == name)).first()
            is not None
        )

    def principals(self, kind: str, name: str | None = None) -> list[PrincipalRecord]:
        """Every user (or group), or the one named, with policies and memberships."""
        table = iam_users if kind == USER else iam_groups
        id_column = table.c.user_id if kind == USER else table.c.group_id
        query = sa.select(table.c.name, id_column.label("id"), table.c.created).order_by(
            table.c.name
        )
        if name is not None:
            query = query.where(table.c.name == name)
        rows = self._conn.execute(query).all()
        policies = self._policies(kind, [row.name for row in rows])
        members = self._members(kind, [row.name for row in rows])
        return [
            PrincipalRecord(
                kind,
                row.name,
                row.id,
                row.created,
                tuple(policies.get(row.name, ())),
                tuple(members.get(row.name, ())),
            )
            for row in rows
        ]

    def _policies(self, kind: str, names: list[str]) -> dict[str, list[tuple[str, str | None]]]:
        found: dict[str, list[tuple[str, str | None]]] = {}
        if not names:
            return found
        rows = self._conn.execute(
            sa.select(iam_policies)
            .where(iam_policies.c.principal_kind == kind, iam_policies.c.principal.in_(names))
            .order_by(iam_policies.c.policy_name)
        )
        for row in rows:
            found.setdefault(row.principal, []).append((row.policy_name, row.document))
        return found

    def _members(self, kind: str, names: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        if not names:
            return found
        mine, theirs = (
            (iam_group_members.c.user_name, iam_group_members.c.group_name)
            if kind == USER
            else (iam_group_members.c.group_name, iam_group_members.c.user_name)
        )
        rows = self._conn.execute(sa.select(mine, theirs).where(mine.in_(names)).order_by(theirs))
        for owner, other in rows:
            found.setdefault(owner, []).append(other)
        return found

    def add_key(self, key_id: str, user: str, sealed_secret: str, created: float) -> None:
        self._conn.execute(
            sa.insert(access_keys).values(
                id=key_id, user_name=user, secret=sealed_secret, created=created
            )
        )

    def delete_key(self, key_id: str) -> bool:
        return (
            self._conn.execute(sa.delete(access_keys).where(access_keys.c.id == key_id)).rowcount
            > 0
        )

    def keys(self, user: str | None = None) -> list[KeyRecord]:
        query = sa.select(access_keys.c.id, access_keys.c.user_name, access_keys.c.created)
        if user is not None:
            query = query.where(access_keys.c.user_name == user)
        rows = self._conn.execute(query.order_by(access_keys.c.user_name, access_keys.c.created))
        return [KeyRecord(row.id, row.user_name, row.created) for row in rows]

    def key_owner(self, key_id: str) -> KeyOwner | None:
        row = self._conn.execute(_KEY, {"key_id": key_id}).first()
        return None if row is None else KeyOwner(row.user_name, row.user_id, row.secret)
