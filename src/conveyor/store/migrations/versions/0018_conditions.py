"""Stage conditions: their evaluations and rule executions; a job runs an action or a rule.

Revision ID: 0018
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "condition_executions",
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("condition_index", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("started", sa.Float(precision=53), nullable=False),
        sa.Column("updated", sa.Float(precision=53), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name="fk_condition_executions_execution_id_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "execution_id",
            "stage",
            "kind",
            "condition_index",
            "attempt",
            name="pk_condition_executions",
        ),
    )
    op.create_table(
        "rule_executions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("pipeline_version", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("condition_index", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started", sa.Float(precision=53), nullable=False),
        sa.Column("updated", sa.Float(precision=53), nullable=False),
        sa.Column("deadline", sa.Float(precision=53)),
        sa.Column("summary", sa.Text),
        sa.Column("external_id", sa.Text),
        sa.Column("external_url", sa.Text),
        sa.Column("error_code", sa.String(50)),
        sa.Column("error_message", sa.Text),
        sa.Column("input", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name="fk_rule_executions_execution_id_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_rule_executions"),
    )
    op.create_index("ix_rule_executions_execution_id", "rule_executions", ["execution_id"])
    op.create_index(
        "ix_rule_executions_pipeline_id_started", "rule_executions", ["pipeline_id", "started"]
    )
    # A job runs an action execution or a rule execution: its id is no longer always an
    # action execution's.
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("fk_jobs_action_execution_id_action_executions", type_="foreignkey")


def downgrade() -> None:
    op.execute(
        "DELETE FROM jobs WHERE action_execution_id NOT IN (SELECT id FROM action_executions)"
    )
    with op.batch_alter_table("jobs") as batch:
        batch.create_foreign_key(
            "fk_jobs_action_execution_id_action_executions",
            "action_executions",
            ["action_execution_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.drop_table("rule_executions")
    op.drop_table("condition_executions")
