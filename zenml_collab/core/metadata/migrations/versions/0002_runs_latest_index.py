"""Index runs by pipeline name and status: `latest successful run of X` becomes a seek.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_name_status_started", "runs",
                    ["pipeline_name", "status", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_name_status_started", table_name="runs")
