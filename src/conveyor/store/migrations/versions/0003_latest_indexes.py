"""Indexes that find the latest attempt of an action and the latest entry into a stage.

GetPipelineState asks, for every action, for its most recently started attempt and, for every
stage, for the execution that entered it last; without these it read every row of the
pipeline's history for that stage.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_stage_executions_pipeline_id_stage", "stage_executions")
    op.create_index(
        "ix_stage_executions_pipeline_id_stage_entered",
        "stage_executions",
        ["pipeline_id", "stage", "entered"],
    )
    op.create_index(
        "ix_action_executions_pipeline_id_stage_action_started",
        "action_executions",
        ["pipeline_id", "stage", "action", "started"],
    )


def downgrade() -> None:
    op.drop_index("ix_action_executions_pipeline_id_stage_action_started", "action_executions")
    op.drop_index("ix_stage_executions_pipeline_id_stage_entered", "stage_executions")
    op.create_index(
        "ix_stage_executions_pipeline_id_stage", "stage_executions", ["pipeline_id", "stage"]
    )
