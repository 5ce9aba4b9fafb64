"""Executions, stage and action executions, jobs, transitions, events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

F = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text),
        sa.Column("stage_index", sa.Integer, nullable=False),
        sa.Column("waiting", sa.Boolean, nullable=False),
        sa.Column("arrived", F, nullable=False),
        sa.Column("stop_abandon", sa.Boolean),
        sa.Column("stop_reason", sa.Text),
        sa.Column("trigger_type", sa.String(40), nullable=False),
        sa.Column("trigger_detail", sa.Text),
        sa.Column("execution_mode", sa.String(20), nullable=False),
        sa.Column("execution_type", sa.String(20), nullable=False),
        sa.Column("client_token", sa.String(128)),
        sa.Column("variables", sa.Text, nullable=False),
        sa.Column("source_revisions", sa.Text, nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("artifacts", sa.Text, nullable=False),
        sa.Column("started", F, nullable=False),
        sa.Column("updated", F, nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name="fk_executions_pipeline_id_pipelines",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_executions"),
        sa.UniqueConstraint("pipeline_id", "client_token", name="uq_executions_pipeline_id_token"),
    )
    op.create_index("ix_executions_pipeline_id_status", "executions", ["pipeline_id", "status"])
    op.create_index("ix_executions_pipeline_id_seq", "executions", ["pipeline_id", "seq"])
    op.create_table(
        "stage_executions",
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("base_attempt", sa.Integer, nullable=False),
        sa.Column("manual_retries", sa.Integer, nullable=False),
        sa.Column("entered", F, nullable=False),
        sa.Column("updated", F, nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name="fk_stage_executions_execution_id_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", "stage", name="pk_stage_executions"),
    )
    op.create_index(
        "ix_stage_executions_pipeline_id_stage", "stage_executions", ["pipeline_id", "stage"]
    )
    op.create_table(
        "action_executions",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("execution_id", sa.String(36), nullable=False),
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("pipeline_version", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started", F, nullable=False),
        sa.Column("updated", F, nullable=False),
        sa.Column("deadline", F),
        sa.Column("summary", sa.Text),
        sa.Column("external_id", sa.Text),
        sa.Column("external_url", sa.Text),
        sa.Column("error_code", sa.String(50)),
        sa.Column("error_message", sa.Text),
        sa.Column("percent_complete", sa.Integer),
        sa.Column("token", sa.String(36)),
        sa.Column("updated_by", sa.Text),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("output_artifacts", sa.Text, nullable=False),
        sa.Column("output_variables", sa.Text),
        sa.Column("revision", sa.Text),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name="fk_action_executions_execution_id_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_action_executions"),
    )
    op.create_index("ix_action_executions_execution_id", "action_executions", ["execution_id"])
    op.create_index(
        "ix_action_executions_pipeline_id_started", "action_executions", ["pipeline_id", "started"]
    )
    op.create_index(
        "ix_action_executions_status_deadline", "action_executions", ["status", "deadline"]
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("action_execution_id", sa.String(36), nullable=False),
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("type_category", sa.String(20), nullable=False),
        sa.Column("type_owner", sa.String(20), nullable=False),
        sa.Column("type_provider", sa.String(35), nullable=False),
        sa.Column("type_version", sa.String(9), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("nonce", sa.String(50), nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("lease_until", F),
        sa.Column("query_value", sa.String(50)),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created", F, nullable=False),
        sa.Column("updated", F, nullable=False),
        sa.ForeignKeyConstraint(
            ["action_execution_id"],
            ["action_executions.id"],
            name="fk_jobs_action_execution_id_action_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index(
        "ix_jobs_status_type", "jobs", ["status", "type_provider", "type_category", "created"]
    )
    op.create_index("ix_jobs_status_lease_until", "jobs", ["status", "lease_until"])
    op.create_index("ix_jobs_action_execution_id", "jobs", ["action_execution_id"])
    op.create_table(
        "transitions",
        sa.Column("pipeline_id", sa.Integer, nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("changed_by", sa.Text),
        sa.Column("changed_at", F, nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name="fk_transitions_pipeline_id_pipelines",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pipeline_id", "stage", "direction", name="pk_transitions"),
    )
    op.create_table(
        "events",
        sa.Column("seq", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("pipeline_name", sa.String(100), nullable=False),
        sa.Column("time", F, nullable=False),
        sa.Column("detail_type", sa.String(100), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_pipeline_name_seq", "events", ["pipeline_name", "seq"])


def downgrade() -> None:
    for table in (
        "events",
        "transitions",
        "jobs",
        "action_executions",
        "stage_executions",
        "executions",
    ):
        op.drop_table(table)
