"""CodeBuild projects, served by the CodeBuild API on the same endpoint.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("name", sa.String(150), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("created", sa.Float(precision=53), nullable=False),
        sa.Column("updated", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_projects"),
    )
    op.create_index("ix_projects_created", "projects", ["created"])
    op.create_index("ix_projects_updated", "projects", ["updated"])


def downgrade() -> None:
    op.drop_index("ix_projects_updated", table_name="projects")
    op.drop_index("ix_projects_created", table_name="projects")
    op.drop_table("projects")
