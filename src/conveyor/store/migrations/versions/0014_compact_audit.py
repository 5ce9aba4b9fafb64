"""The audit trail keeps what its calls share once: a record names its context (the caller,
its address and client, the Region and account, the fixed fields) instead of repeating it.
Records written before keep their whole text and read back as they were.

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_contexts",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_contexts"),
        sa.UniqueConstraint("digest", name="uq_audit_contexts_digest"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("context", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("context")
    op.drop_table("audit_contexts")
