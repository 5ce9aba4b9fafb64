"""What change detection has seen of each source, and why it cannot see some.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


F = sa.Float(precision=53)


def _keyed(table: str, *columns: sa.Column[object], key: list[str]) -> None:
    op.create_table(
        table,
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=f"fk_{table}_pipeline_id_pipelines",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(*key, name=f"pk_{table}"),
    )


def upgrade() -> None:
    _keyed(
        "source_heads",
        sa.Column("ref", sa.String(400), nullable=False),
        sa.Column("revision", sa.String(1500), nullable=False),
        sa.Column("seen", F, nullable=False),
        key=["pipeline_id", "action", "ref"],
    )
    _keyed(
        "source_problems",
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("since", F, nullable=False),
        key=["pipeline_id", "action"],
    )


def downgrade() -> None:
    op.drop_table("source_problems")
    op.drop_table("source_heads")
