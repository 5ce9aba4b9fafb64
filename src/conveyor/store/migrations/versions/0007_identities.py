"""Identities (users, groups, policies, access keys) and the audit trail.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iam_users",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("created", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_iam_users"),
        sa.UniqueConstraint("user_id", name="uq_iam_users_user_id"),
    )
    op.create_table(
        "iam_groups",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("created", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_iam_groups"),
        sa.UniqueConstraint("group_id", name="uq_iam_groups_group_id"),
    )
    op.create_table(
        "iam_group_members",
        sa.Column("group_name", sa.String(128), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_name"],
            ["iam_groups.name"],
            name="fk_iam_group_members_group_name_iam_groups",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_name"],
            ["iam_users.name"],
            name="fk_iam_group_members_user_name_iam_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_name", "user_name", name="pk_iam_group_members"),
    )
    op.create_table(
        "iam_policies",
        sa.Column("principal_kind", sa.String(5), nullable=False),
        sa.Column("principal", sa.String(128), nullable=False),
        sa.Column("policy_name", sa.String(128), nullable=False),
        sa.Column("document", sa.Text),
        sa.PrimaryKeyConstraint(
            "principal_kind", "principal", "policy_name", name="pk_iam_policies"
        ),
    )
    op.create_table(
        "access_keys",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created", sa.Float(precision=53), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_name"],
            ["iam_users.name"],
            name="fk_access_keys_user_name_iam_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_access_keys"),
    )
    op.create_index("ix_access_keys_user_name", "access_keys", ["user_name"])
    op.create_table(
        "audit_events",
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_time", sa.Float(precision=53), nullable=False),
        sa.Column("event_name", sa.String(100), nullable=False),
        sa.Column("event_source", sa.String(64), nullable=False),
        sa.Column("username", sa.String(128)),
        sa.Column("access_key", sa.String(128)),
        sa.Column("read_only", sa.Boolean, nullable=False),
        sa.Column("resource_type", sa.String(64)),
        sa.Column("resource_name", sa.String(1024)),
        sa.Column("record", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_event_time", "audit_events", ["event_time"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("access_keys")
    op.drop_table("iam_policies")
    op.drop_table("iam_group_members")
    op.drop_table("iam_groups")
    op.drop_table("iam_users")
