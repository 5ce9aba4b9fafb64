"""Users, groups, policies and access keys in the store, and the audit trail's queries, on
SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from conveyor.auth.cipher import Cipher, CipherError
from conveyor.auth.identities import IdentityError, IdentityService
from conveyor.domain.arn import Scope
from conveyor.store import AuditRecord, Store

READ = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "codepipeline:Get*", "Resource": "*"},
    }
)


@pytest.fixture
def identities(store: Store) -> IdentityService:
    return IdentityService(store, Cipher(Fernet.generate_key()), Scope("us-east-1", "000000000000"))


def test_a_key_finds_its_user_with_the_users_and_groups_policies(
    identities: IdentityService,
) -> None:
    identities.create("user", "alice", [("read", READ)])
    identities.create(
        "group", "approvers", managed=["AWSCodePipelineApproverAccess"], members=["alice"]
    )
    key = identities.create_key("alice")
    principal = identities.principal(key.access_key_id)
    assert principal is not None
    assert principal.user == "alice"
    assert principal.arn == "arn:aws:iam::000000000000:user/alice"
    assert principal.secret == key.secret_access_key
    assert [p.name for p in principal.policies] == ["read", "AWSCodePipelineApproverAccess"]
    assert identities.principal("AKIANOTAKEY000000000") is None


def test_deleting_a_user_takes_its_keys_policies_and_memberships(
    identities: IdentityService, store: Store
) -> None:
    identities.create("user", "alice", [("read", READ)])
    identities.create("group", "ops", members=["alice"])
    key = identities.create_key("alice")
    identities.delete("user", "alice")
    assert identities.principal(key.access_key_id) is None
    assert identities.keys() == []
    assert identities.get("group", "ops").members == ()
    identities.create("user", "alice")
    assert identities.get("user", "alice").policies == ()
    with pytest.raises(IdentityError, match="user bob does not exist"):
        identities.delete("user", "bob")


def test_secrets_are_sealed_with_the_installations_key(
    identities: IdentityService, store: Store
) -> None:
    identities.create("user", "alice")
    key = identities.create_key("alice")
    other = IdentityService(store, Cipher(Fernet.generate_key()), Scope("us-east-1", "0" * 12))
    with pytest.raises(CipherError, match="sealed with another key"):
        other.principal(key.access_key_id)


def _record(
    event_id: str, when: float, name: str, user: str | None, pipeline: str | None
) -> AuditRecord:
    return AuditRecord(
        event_id=event_id,
        event_time=when,
        event_name=name,
        event_source="codepipeline.amazonaws.com",
        username=user,
        access_key="AKIA",
        read_only=name.startswith("Get"),
        resource_type="AWS::CodePipeline::Pipeline" if pipeline else None,
        resource_name=pipeline,
        record="{}",
    )


def test_audit_lookup_filters_orders_and_pages(store: Store) -> None:
    with store.write() as tx:
        tx.audit.append(
            [
                _record("a", 1.0, "GetPipeline", "alice", "app"),
                _record("b", 2.0, "StartPipelineExecution", "bob", "app"),
                _record("c", 2.0, "GetPipeline", "alice", "web"),
                _record("d", 3.0, "ListPipelines", "alice", None),
            ]
        )
    with store.read() as tx:
        assert [r.event_id for r in tx.audit.lookup({}, None, None, 10)] == ["d", "c", "b", "a"]
        assert [r.event_id for r in tx.audit.lookup({"Username": "alice"}, None, None, 10)] == [
            "d",
            "c",
            "a",
        ]
        assert [r.event_id for r in tx.audit.lookup({"ResourceName": "app"}, None, None, 10)] == [
            "b",
            "a",
        ]
        assert [r.event_id for r in tx.audit.lookup({"ReadOnly": True}, None, None, 10)] == [
            "c",
            "a",
        ]
        assert [r.event_id for r in tx.audit.lookup({}, 2.0, 2.0, 10)] == ["c", "b"]
        assert [r.event_id for r in tx.audit.lookup({}, None, None, 2, (2.0, "c"))] == ["b", "a"]
    with store.write() as tx:
        assert tx.audit.prune(2.0) == 1
