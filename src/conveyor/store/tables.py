"""The schema as SQLAlchemy Core tables; the migrations build exactly this (a test checks it).

Timestamps are epoch seconds as double precision: the wire speaks them, the clock gives them.
Declarations are JSON text, kept exactly as accepted, so any version reads back unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Small facts about this installation, shared by every server on the database.
meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("pipeline_type", sa.String(10), nullable=False),
    sa.Column("execution_mode", sa.String(20), nullable=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
    sa.Column("updated", sa.Float(precision=53), nullable=False),
    # Ids are never reused, so (id, version) names one declaration forever; caches rely on it.
    sqlite_autoincrement=True,
)

pipeline_versions = sa.Table(
    "pipeline_versions",
    metadata,
    sa.Column(
        "pipeline_id",
        sa.Integer,
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("declaration", sa.Text, nullable=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
)

tags = sa.Table(
    "tags",
    metadata,
    sa.Column("resource_arn", sa.String(1024), primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

# Custom and third-party action types; built-in types are data in the domain.
action_types = sa.Table(
    "action_types",
    metadata,
    sa.Column("owner", sa.String(20), primary_key=True),
    sa.Column("category", sa.String(20), primary_key=True),
    sa.Column("provider", sa.String(35), primary_key=True),
    sa.Column("version", sa.String(9), primary_key=True),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
    sa.Column("updated", sa.Float(precision=53), nullable=False),
)
