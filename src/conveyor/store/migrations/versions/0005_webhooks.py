"""Webhooks, and the revisions given to source actions with PutActionRevision.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("created", sa.Float(precision=53), nullable=False),
        sa.Column("updated", sa.Float(precision=53), nullable=False),
        sa.Column("last_triggered", sa.Float(precision=53)),
        sa.Column("error_code", sa.String(50)),
        sa.Column("error_message", sa.Text),
        sa.PrimaryKeyConstraint("name", name="pk_webhooks"),
        sa.UniqueConstraint("token", name="uq_webhooks_token"),
    )
    op.create_table(
        "action_revisions",
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("revision_hash", sa.String(64), nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.Column("created", sa.Float(precision=53), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name="fk_action_revisions_pipeline_id_pipelines",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "pipeline_id", "stage", "action", "revision_hash", name="pk_action_revisions"
        ),
    )


def downgrade() -> None:
    op.drop_table("action_revisions")
    op.drop_table("webhooks")
