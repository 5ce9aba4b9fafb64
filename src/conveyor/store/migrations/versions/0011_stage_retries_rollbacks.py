"""Automatic stage retries and rollback executions.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stage_retries",
        sa.Column(
            "execution_id",
            sa.String(36),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("stage", sa.String(100), primary_key=True),
        sa.Column("auto_retries", sa.Integer, nullable=False),
        sa.Column("auto_attempt", sa.Integer, nullable=False),
        sa.Column("latest_trigger", sa.String(40), nullable=False),
    )
    op.create_table(
        "rollbacks",
        sa.Column(
            "execution_id",
            sa.String(36),
            sa.ForeignKey("executions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("target_id", sa.String(36), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rollbacks")
    op.drop_table("stage_retries")
