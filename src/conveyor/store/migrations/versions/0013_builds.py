"""CodeBuild builds, report groups, reports and their test cases.

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "builds",
        sa.Column("id", sa.String(300), nullable=False),
        sa.Column("project", sa.String(150), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started", sa.Float(precision=53), nullable=False),
        sa.Column("ended", sa.Float(precision=53)),
        sa.Column("data", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_builds"),
    )
    op.create_index("ix_builds_started", "builds", ["started", "id"])
    op.create_index("ix_builds_project_started", "builds", ["project", "started", "id"])
    op.create_table(
        "report_groups",
        sa.Column("arn", sa.String(600), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created", sa.Float(precision=53), nullable=False),
        sa.Column("updated", sa.Float(precision=53), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("arn", name="pk_report_groups"),
    )
    op.create_index("ix_report_groups_name", "report_groups", ["name"])
    op.create_index("ix_report_groups_created", "report_groups", ["created"])
    op.create_index("ix_report_groups_updated", "report_groups", ["updated"])
    op.create_table(
        "reports",
        sa.Column("arn", sa.String(700), nullable=False),
        sa.Column("group_arn", sa.String(600), nullable=False),
        sa.Column("build_id", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created", sa.Float(precision=53), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("arn", name="pk_reports"),
    )
    op.create_index("ix_reports_created", "reports", ["created", "arn"])
    op.create_index("ix_reports_group_created", "reports", ["group_arn", "created", "arn"])
    op.create_index("ix_reports_build", "reports", ["build_id"])
    op.create_table(
        "test_cases",
        sa.Column("report_arn", sa.String(700), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("suite", sa.Text, nullable=False),
        sa.Column("duration_ns", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("report_arn", "seq", name="pk_test_cases"),
    )


def downgrade() -> None:
    op.drop_table("test_cases")
    op.drop_index("ix_reports_build", table_name="reports")
    op.drop_index("ix_reports_group_created", table_name="reports")
    op.drop_index("ix_reports_created", table_name="reports")
    op.drop_table("reports")
    op.drop_index("ix_report_groups_updated", table_name="report_groups")
    op.drop_index("ix_report_groups_created", table_name="report_groups")
    op.drop_index("ix_report_groups_name", table_name="report_groups")
    op.drop_table("report_groups")
    op.drop_index("ix_builds_project_started", table_name="builds")
    op.drop_index("ix_builds_started", table_name="builds")
    op.drop_table("builds")
