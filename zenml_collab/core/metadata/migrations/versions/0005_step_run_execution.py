"""Where an executed step ran, as data: ``step_runs.execution_json``.

A nullable TEXT column holding a small JSON object (``backend``, ``image`` digest, ``job``
name) written by the worker of a ``docker`` or ``vertex`` step; NULL for a step that ran in
the member's own process or was cached. TEXT and JSON built in Python (no JSON column type,
no ``CAST(... AS JSON)``) keep it portable to SQLite, MariaDB and MySQL 8 (DESIGN §4); it is
never queried by content, so it needs no index.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("step_runs") as batch:
        batch.add_column(sa.Column("execution_json", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("step_runs") as batch:
        batch.drop_column("execution_json")
