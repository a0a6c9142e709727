"""One step-run row per (run, position): a retried insert cannot record a step twice.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows a retry may already have duplicated: keep the first of each (run, position).
    op.execute(
        "DELETE FROM step_runs WHERE id NOT IN (SELECT keep FROM (SELECT MIN(id) AS keep "
        "FROM step_runs GROUP BY run_id, position) AS firsts)")
    with op.batch_alter_table("step_runs") as batch:
        # New index first: MySQL keeps an index on run_id for its foreign key at all times.
        batch.create_index("ux_step_runs_run_position", ["run_id", "position"], unique=True)
        batch.drop_index("ix_step_runs_run")


def downgrade() -> None:
    with op.batch_alter_table("step_runs") as batch:
        batch.create_index("ix_step_runs_run", ["run_id", "position"])
        batch.drop_index("ux_step_runs_run_position")
