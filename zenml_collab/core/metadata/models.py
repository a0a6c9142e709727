"""The metadata schema (SQLAlchemy Core), portable across SQLite, MariaDB and MySQL 8.

Portability rules (DESIGN §4): UUIDs as CHAR(32), explicit VARCHAR lengths on indexed columns,
JSON stored as TEXT, no server-side RETURNING, no hard-coded collations.
The Alembic migrations in ``migrations/versions`` must produce exactly this; a test compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

metadata = sa.MetaData()

# Microsecond timestamps on MySQL too (its DATETIME defaults to whole seconds).
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
LongText = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

pipelines = sa.Table(
    "pipelines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("identity", sa.String(64), nullable=False),
    sa.Column("config_json", LongText, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(200)),
    sa.Column("git_sha", sa.String(40)),
)

environments = sa.Table(
    "environments",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("python", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(200), nullable=False),
    sa.Column("packages_json", LongText, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("pipeline_id", sa.Integer, sa.ForeignKey("pipelines.id"), nullable=False),
    sa.Column("pipeline_name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
    sa.Column("git_sha", sa.String(40)),
    sa.Column("git_dirty", sa.Boolean),
    sa.Column("user", sa.String(200)),
    sa.Column("hostname", sa.String(200)),
    sa.Column("environment_hash", sa.String(64), sa.ForeignKey("environments.hash")),
    sa.Column("error", sa.Text),
    sa.Column("pid", sa.Integer),
    sa.Column("heartbeat_at", Timestamp),
    sa.Index("ix_runs_pipeline_started", "pipeline_id", "started_at"),
    sa.Index("ix_runs_name_status_started", "pipeline_name", "status", "started_at"),
)

step_runs = sa.Table(
    "step_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("pipeline_name", sa.String(200), nullable=False),
    sa.Column("step_name", sa.String(200), nullable=False),
    sa.Column("step_path", sa.String(500), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("cache_key", sa.String(64), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("params_json", sa.Text, nullable=False),
    sa.Column("inputs_json", sa.Text, nullable=False),
    sa.Column("outputs_json", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("execution_json", sa.Text),  # where it ran: backend, image, job (0005)
    sa.Index("ux_step_runs_run_position", "run_id", "position", unique=True),
    sa.Index("ix_step_runs_pipeline_step", "pipeline_name", "step_name", "id"),
    sa.Index("ix_step_runs_path", "step_path", "id"),
)

# One row per cache key: the outputs a successful execution produced. The primary key makes
# concurrent writers of the same key harmless (INSERT IGNORE / OR IGNORE) and the lookup a seek.
cache_entries = sa.Table(
    "cache_entries",
    metadata,
    sa.Column("cache_key", sa.String(64), primary_key=True),
    sa.Column("step_path", sa.String(500), nullable=False),
    sa.Column("outputs_json", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("materializer", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("files_json", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

# One row (id 1): the store's identity, recorded in collab.yaml as metadata.store_id.
store_identity = sa.Table(
    "store_identity",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("store_id", sa.String(32), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)
