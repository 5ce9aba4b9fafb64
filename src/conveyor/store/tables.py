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


# One pipeline execution. ``stage_index``/``waiting`` say where it is: inside that stage, or
# waiting in front of it. ``variables``, ``outputs`` (namespace → output variables) and
# ``artifacts`` (artifact name → location and revision) are JSON.
executions = sa.Table(
    "executions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "pipeline_id",
        sa.Integer,
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("summary", sa.Text),
    sa.Column("stage_index", sa.Integer, nullable=False),
    sa.Column("waiting", sa.Boolean, nullable=False),
    sa.Column("arrived", sa.Float(precision=53), nullable=False),
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
    sa.Column("started", sa.Float(precision=53), nullable=False),
    sa.Column("updated", sa.Float(precision=53), nullable=False),
    sa.Index("ix_executions_pipeline_id_status", "pipeline_id", "status"),
    sa.Index("ix_executions_pipeline_id_seq", "pipeline_id", "seq"),
    sa.UniqueConstraint("pipeline_id", "client_token", name="uq_executions_pipeline_id_token"),
)

stage_executions = sa.Table(
    "stage_executions",
    metadata,
    sa.Column(
        "execution_id",
        sa.String(36),
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("stage", sa.String(100), primary_key=True),
    sa.Column("pipeline_id", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("base_attempt", sa.Integer, nullable=False),
    sa.Column("manual_retries", sa.Integer, nullable=False),
    sa.Column("entered", sa.Float(precision=53), nullable=False),
    sa.Column("updated", sa.Float(precision=53), nullable=False),
    sa.Index("ix_stage_executions_pipeline_id_stage_entered", "pipeline_id", "stage", "entered"),
)

# One attempt of one action. ``input``, ``output_artifacts``, ``output_variables`` and
# ``revision`` are JSON in the wire shapes they are read back in.
action_executions = sa.Table(
    "action_executions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "execution_id",
        sa.String(36),
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("pipeline_id", sa.Integer, nullable=False),
    sa.Column("pipeline_version", sa.Integer, nullable=False),
    sa.Column("stage", sa.String(100), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started", sa.Float(precision=53), nullable=False),
    sa.Column("updated", sa.Float(precision=53), nullable=False),
    sa.Column("deadline", sa.Float(precision=53)),
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
    sa.Index("ix_action_executions_execution_id", "execution_id"),
    sa.Index("ix_action_executions_pipeline_id_started", "pipeline_id", "started"),
    sa.Index("ix_action_executions_status_deadline", "status", "deadline"),
    sa.Index(
        "ix_action_executions_pipeline_id_stage_action_started",
        "pipeline_id",
        "stage",
        "action",
        "started",
    ),
)

# The latest attempt of each action of a pipeline (the one started last), and the execution
# that entered each stage last: written as attempts start and executions enter stages, so
# that GetPipelineState reads a whole pipeline's in one statement.
latest_actions = sa.Table(
    "latest_actions",
    metadata,
    sa.Column(
        "pipeline_id",
        sa.Integer,
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("stage", sa.String(100), primary_key=True),
    sa.Column("action", sa.String(100), primary_key=True),
    sa.Column("action_execution_id", sa.String(36), nullable=False),
)

latest_stages = sa.Table(
    "latest_stages",
    metadata,
    sa.Column(
        "pipeline_id",
        sa.Integer,
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("stage", sa.String(100), primary_key=True),
    sa.Column("execution_id", sa.String(36), nullable=False),
)

# Work for a job worker: one per attempt of an action that does work (and one more per
# continuation). ``data`` is the wire ``JobData``; ``owner`` is the worker holding the lease.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    # The action execution the job runs, or the rule execution (rule_executions) of a
    # stage condition's rule.
    sa.Column("action_execution_id", sa.String(36), nullable=False),
    sa.Column("pipeline_id", sa.Integer, nullable=False),
    sa.Column("type_category", sa.String(20), nullable=False),
    sa.Column("type_owner", sa.String(20), nullable=False),
    sa.Column("type_provider", sa.String(35), nullable=False),
    sa.Column("type_version", sa.String(9), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("nonce", sa.String(50), nullable=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("lease_until", sa.Float(precision=53)),
    sa.Column("query_value", sa.String(50)),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
    sa.Column("updated", sa.Float(precision=53), nullable=False),
    # When a worker claimed it (the end of its time in the queue).
    sa.Column("claimed", sa.Float(precision=53)),
    # The worker labels its action requires, sorted and comma-joined (`conveyor.domain.labels`);
    # NULL: any worker may take it.
    sa.Column("labels", sa.String(300)),
    sa.Index("ix_jobs_status_type", "status", "type_provider", "type_category", "created"),
    sa.Index("ix_jobs_status_lease_until", "status", "lease_until"),
    sa.Index("ix_jobs_action_execution_id", "action_execution_id"),
)

transitions = sa.Table(
    "transitions",
    metadata,
    sa.Column(
        "pipeline_id",
        sa.Integer,
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("stage", sa.String(100), primary_key=True),
    sa.Column("direction", sa.String(10), primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("changed_by", sa.Text),
    sa.Column("changed_at", sa.Float(precision=53), nullable=False),
)

# Every state change as an EventBridge event, written in the transaction that made it.
events = sa.Table(
    "events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline_name", sa.String(100), nullable=False),
    sa.Column("time", sa.Float(precision=53), nullable=False),
    sa.Column("detail_type", sa.String(100), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("ix_events_pipeline_name_seq", "pipeline_name", "seq"),
    sqlite_autoincrement=True,
)

# V1 webhooks, by name. ``definition`` is the wire ``WebhookDefinition`` as accepted (secret
# token included); ``token`` is the unguessable last part of the webhook's URL, new each time
# a webhook of that name is created.
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
    sa.Column("updated", sa.Float(precision=53), nullable=False),
    sa.Column("last_triggered", sa.Float(precision=53)),
    sa.Column("error_code", sa.String(50)),
    sa.Column("error_message", sa.Text),
)

# Revisions handed to source actions with PutActionRevision, and the execution each started;
# ``revision_hash`` is the SHA-256 of the revision id, which may be longer than an index allows.
action_revisions = sa.Table(
    "action_revisions",
    metadata,
    sa.Column(
        "pipeline_id",
        sa.Integer,
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("stage", sa.String(100), primary_key=True),
    sa.Column("action", sa.String(100), primary_key=True),
    sa.Column("revision_hash", sa.String(64), primary_key=True),
    sa.Column("execution_id", sa.String(36), nullable=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
)

# What change detection last saw of each ref a source action follows (a branch, a tag, a pull
# request, an S3 object), so that a restart neither misses a change nor starts one twice.
source_heads = sa.Table(
    "source_heads",
    metadata,
    sa.Column(
        "pipeline_id",
        sa.Integer,
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("action", sa.String(100), primary_key=True),
    sa.Column("ref", sa.String(400), primary_key=True),
    sa.Column("revision", sa.String(1500), nullable=False),
    sa.Column("seen", sa.Float(precision=53), nullable=False),
)

# Why change detection cannot follow a source action right now (its repository is gone, its
# branch deleted, its remote unreachable); the row goes when detection works again.
source_problems = sa.Table(
    "source_problems",
    metadata,
    sa.Column(
        "pipeline_id",
        sa.Integer,
        sa.ForeignKey("pipelines.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("action", sa.String(100), primary_key=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("since", sa.Float(precision=53), nullable=False),
)

# Identities: IAM-style users and groups, the policies attached to them, and access keys.
# A policy row is inline (its document kept as given) or managed (document NULL: the policy is
# named by its AWS name and its document ships with Conveyor). An access key's secret is kept
# encrypted with the installation's key, never as plain text.
iam_users = sa.Table(
    "iam_users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(32), nullable=False, unique=True),
    sa.Column("created", sa.Float(precision=53), nullable=False),
)

iam_groups = sa.Table(
    "iam_groups",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("group_id", sa.String(32), nullable=False, unique=True),
    sa.Column("created", sa.Float(precision=53), nullable=False),
)

iam_group_members = sa.Table(
    "iam_group_members",
    metadata,
    sa.Column(
        "group_name",
        sa.String(128),
        sa.ForeignKey("iam_groups.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "user_name",
        sa.String(64),
        sa.ForeignKey("iam_users.name", ondelete="CASCADE"),
        primary_key=True,
    ),
)

iam_policies = sa.Table(
    "iam_policies",
    metadata,
    sa.Column("principal_kind", sa.String(5), primary_key=True),
    sa.Column("principal", sa.String(128), primary_key=True),
    sa.Column("policy_name", sa.String(128), primary_key=True),
    sa.Column("document", sa.Text),
)

access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column(
        "user_name",
        sa.String(64),
        sa.ForeignKey("iam_users.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
    sa.Index("ix_access_keys_user_name", "user_name"),
)

# The audit trail: one CloudTrail record per API call, with the columns LookupEvents filters on.
# ``record`` is what the call's record has of its own; ``context`` names the `audit_contexts`
# row with what it shares with other calls (NULL: ``record`` is the whole record's text).
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("event_time", sa.Float(precision=53), nullable=False),
    sa.Column("event_name", sa.String(100), nullable=False),
    sa.Column("event_source", sa.String(64), nullable=False),
    sa.Column("username", sa.String(128)),
    sa.Column("access_key", sa.String(128)),
    sa.Column("read_only", sa.Boolean, nullable=False),
    sa.Column("resource_type", sa.String(64)),
    sa.Column("resource_name", sa.String(1024)),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("context", sa.Integer),
    sa.Index("ix_audit_events_event_time", "event_time"),
)

# CodeBuild projects, by name. ``definition`` is the wire ``Project`` as accepted, less the
# name, ARN and times, with CodeBuild's defaults filled in.
projects = sa.Table(
    "projects",
    metadata,
    sa.Column("name", sa.String(150), primary_key=True),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
    sa.Column("updated", sa.Float(precision=53), nullable=False),
    sa.Index("ix_projects_created", "created"),
    sa.Index("ix_projects_updated", "updated"),
)

# ---- builds: CodeBuild builds, report groups, reports and their test cases (migration 0013) ----

# One row per build, started by StartBuild or by a pipeline's CodeBuild action. ``data`` holds
# the rest of the wire ``Build`` (source, environment, artifacts, logs, exported variables),
# the phase timeline, and the StartBuild request RetryBuild repeats.
builds = sa.Table(
    "builds",
    metadata,
    sa.Column("id", sa.String(300), primary_key=True),
    sa.Column("project", sa.String(150), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("started", sa.Float(precision=53), nullable=False),
    sa.Column("ended", sa.Float(precision=53)),
    sa.Column("data", sa.Text, nullable=False),
    sa.Index("ix_builds_started", "started", "id"),
    sa.Index("ix_builds_project_started", "project", "started", "id"),
)

# Report groups, by ARN; ``data`` is the wire ``ReportGroup`` less ARN, name and times.
report_groups = sa.Table(
    "report_groups",
    metadata,
    sa.Column("arn", sa.String(600), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
    sa.Column("updated", sa.Float(precision=53), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Index("ix_report_groups_name", "name"),
    sa.Index("ix_report_groups_created", "created"),
    sa.Index("ix_report_groups_updated", "updated"),
)

# One report per report group and build; ``data`` is the wire ``Report``'s other members.
reports = sa.Table(
    "reports",
    metadata,
    sa.Column("arn", sa.String(700), primary_key=True),
    sa.Column("group_arn", sa.String(600), nullable=False),
    sa.Column("build_id", sa.String(300), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Index("ix_reports_created", "created", "arn"),
    sa.Index("ix_reports_group_created", "group_arn", "created", "arn"),
    sa.Index("ix_reports_build", "build_id"),
)

# A report's test cases in the order its files gave them.
test_cases = sa.Table(
    "test_cases",
    metadata,
    sa.Column("report_arn", sa.String(700), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("prefix", sa.Text, nullable=False),
    sa.Column("suite", sa.Text, nullable=False),
    sa.Column("duration_ns", sa.BigInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("file", sa.Text, nullable=False),
)

# --- storage ---------------------------------------------------------------------------------

# What many audit records share, kept once: the caller, its address and client, the Region and
# account, the constant fields, and the order of the record's fields. ``digest`` is the SHA-256
# of ``body`` (JSON), so the same context is found again rather than stored twice.
audit_contexts = sa.Table(
    "audit_contexts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("body", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)

# -- engine: automatic stage retries and rollbacks -------------------------------------------

# A stage execution's automatic retries (onFailure RETRY): how many, which attempt the last
# one started (a failure of that attempt is not retried again), and which kind of retry came
# last. A stage never retried automatically has no row.
stage_retries = sa.Table(
    "stage_retries",
    metadata,
    sa.Column(
        "execution_id",
        sa.String(36),
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("stage", sa.String(100), primary_key=True),
    sa.Column("auto_retries", sa.Integer, nullable=False),
    sa.Column("auto_attempt", sa.Integer, nullable=False),
    sa.Column("latest_trigger", sa.String(40), nullable=False),
)

# Rollback executions (executionType ROLLBACK): the stage each rolls back and the execution
# whose revisions, variables and artifacts it runs it with.
rollbacks = sa.Table(
    "rollbacks",
    metadata,
    sa.Column(
        "execution_id",
        sa.String(36),
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("pipeline_id", sa.Integer, nullable=False),
    sa.Column("stage", sa.String(100), nullable=False),
    sa.Column("target_id", sa.String(36), nullable=False),
)

# --- notifications -------------------------------------------------------------------------
# Notification rules (the CodeStar Notifications API). ``definition`` holds the rule as
# accepted: its event type ids, detail type, status, tags and creator.
notification_rules = sa.Table(
    "notification_rules",
    metadata,
    sa.Column("arn", sa.String(256), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("resource", sa.String(1024), nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
    sa.Column("updated", sa.Float(precision=53), nullable=False),
    sa.Index("ix_notification_rules_resource", "resource"),
)

# Where notifications go. ``address`` is the key AWS names targets by; ``secret`` is the
# target's signing secret, sealed with the installation's key when there is one.
notification_targets = sa.Table(
    "notification_targets",
    metadata,
    sa.Column("address", sa.String(320), primary_key=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("secret", sa.Text),
    sa.Column("created", sa.Float(precision=53), nullable=False),
)

# Which rules send to which targets, in the order the rule lists them.
notification_rule_targets = sa.Table(
    "notification_rule_targets",
    metadata,
    sa.Column(
        "rule_arn",
        sa.String(256),
        sa.ForeignKey("notification_rules.arn", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "address",
        sa.String(320),
        sa.ForeignKey("notification_targets.address", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Index("ix_notification_rule_targets_address", "address"),
)

# The outbox: one row per notification to send (an event, a rule, one of its targets), made
# from the events table in the same transaction that moves the cursor past the event.
notification_deliveries = sa.Table(
    "notification_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_seq", sa.Integer, nullable=False),
    sa.Column("pipeline_name", sa.String(100), nullable=False),
    sa.Column("rule_arn", sa.String(256), nullable=False),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    # PENDING until sent (then the row goes); FAILED once retried for as long as allowed.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created", sa.Float(precision=53), nullable=False),
    sa.Column("next_attempt", sa.Float(precision=53), nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Index("ix_notification_deliveries_status", "status", "next_attempt"),
    # A sender's read of its queue (one pipeline's pending notifications to one target, in
    # order): without it, every read went through all the pending ones.
    sa.Index("ix_notification_deliveries_queue", "pipeline_name", "address", "status", "id"),
)

# How far into the events table the outbox has read.
notification_cursor = sa.Table(
    "notification_cursor",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
)

# -- conditions: stage conditions' evaluations and the rule executions they run ------------------

# One evaluation of condition ``condition_index`` of a stage's ``kind`` conditions
# (BEFORE_ENTRY, ON_SUCCESS, ON_FAILURE), in stage attempt ``attempt``.
condition_executions = sa.Table(
    "condition_executions",
    metadata,
    sa.Column(
        "execution_id",
        sa.String(36),
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("stage", sa.String(100), primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("condition_index", sa.Integer, primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("summary", sa.Text),
    sa.Column("started", sa.Float(precision=53), nullable=False),
    sa.Column("updated", sa.Float(precision=53), nullable=False),
)

# One run of one rule of a condition evaluation; its job's action_execution_id is its id.
rule_executions = sa.Table(
    "rule_executions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "execution_id",
        sa.String(36),
        sa.ForeignKey("executions.id", ondelete="CASCADE"),
        nullable=False,
    ),
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
    sa.Index("ix_rule_executions_execution_id", "execution_id"),
    sa.Index("ix_rule_executions_pipeline_id_started", "pipeline_id", "started"),
)
