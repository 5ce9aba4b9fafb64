"""Notification rules, their targets, which rule sends to which target, and the outbox of
notifications to send with its cursor into the events table.

Revision ID: 0017
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_rules",
        sa.Column("arn", sa.String(256), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("resource", sa.String(1024), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("created", sa.Float(precision=53), nullable=False),
        sa.Column("updated", sa.Float(precision=53), nullable=False),
    )
    op.create_index("ix_notification_rules_resource", "notification_rules", ["resource"])
    op.create_table(
        "notification_targets",
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("secret", sa.Text),
        sa.Column("created", sa.Float(precision=53), nullable=False),
    )
    op.create_table(
        "notification_rule_targets",
        sa.Column(
            "rule_arn",
            sa.String(256),
            sa.ForeignKey("notification_rules.arn", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "address",
            sa.String(320),
            sa.ForeignKey("notification_targets.address", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_notification_rule_targets_address", "notification_rule_targets", ["address"]
    )

    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_seq", sa.Integer, nullable=False),
        sa.Column("pipeline_name", sa.String(100), nullable=False),
        sa.Column("rule_arn", sa.String(256), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created", sa.Float(precision=53), nullable=False),
        sa.Column("next_attempt", sa.Float(precision=53), nullable=False),
        sa.Column("last_error", sa.Text),
    )
    op.create_index(
        "ix_notification_deliveries_status",
        "notification_deliveries",
        ["status", "next_attempt"],
    )
    op.create_table(
        "notification_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_cursor")
    op.drop_table("notification_deliveries")
    op.drop_table("notification_rule_targets")
    op.drop_table("notification_targets")
    op.drop_table("notification_rules")
