"""Notifications are read by queue (pipeline and target) through an index of their own.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_notification_deliveries_queue",
        "notification_deliveries",
        ["pipeline_name", "address", "status", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_notification_deliveries_queue", "notification_deliveries")
