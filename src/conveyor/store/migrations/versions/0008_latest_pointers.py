"""Pointers to the latest attempt of each action and the latest entry into each stage.

GetPipelineState shows, for every action of a pipeline, its most recently started attempt
and, for every stage, the execution that entered it last. Looking each up on its index took
one statement per action; these tables, written as attempts start and executions enter
stages, answer for a whole pipeline in one statement each. Existing history is pointed at
as the lookups would have found it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "latest_actions",
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("action_execution_id", sa.String(36), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name="fk_latest_actions_pipeline_id_pipelines",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pipeline_id", "stage", "action", name="pk_latest_actions"),
    )
    op.create_table(
        "latest_stages",
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name="fk_latest_stages_pipeline_id_pipelines",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pipeline_id", "stage", name="pk_latest_stages"),
    )
    op.execute(
        "INSERT INTO latest_actions (pipeline_id, stage, action, action_execution_id) "
        "SELECT a.pipeline_id, a.stage, a.action, a.id FROM action_executions a "
        "WHERE a.id = (SELECT b.id FROM action_executions b WHERE b.pipeline_id = a.pipeline_id "
        "AND b.stage = a.stage AND b.action = a.action "
        "ORDER BY b.started DESC, b.attempt DESC LIMIT 1)"
    )
    op.execute(
        "INSERT INTO latest_stages (pipeline_id, stage, execution_id) "
        "SELECT s.pipeline_id, s.stage, s.execution_id FROM stage_executions s "
        "WHERE s.execution_id = (SELECT t.execution_id FROM stage_executions t "
        "WHERE t.pipeline_id = s.pipeline_id AND t.stage = s.stage "
        "ORDER BY t.entered DESC LIMIT 1)"
    )


def downgrade() -> None:
    op.drop_table("latest_stages")
    op.drop_table("latest_actions")
