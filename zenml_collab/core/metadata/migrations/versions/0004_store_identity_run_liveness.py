"""Store identity and run liveness.

* ``store_identity``: one row, the store's UUID (CHAR(32)), created here, so a store that
  existed before gets its id on `collab db upgrade` and a new store at its first initialisation.
  ``collab.yaml`` records it (``metadata.store_id``) and every command checks it.
* ``runs.pid`` and ``runs.heartbeat_at``: which process runs it, and when it last said so; a
  ``running`` run whose process is gone is shown as ``abandoned``.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    identity = op.create_table(
        "store_identity",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("store_id", sa.String(32), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.bulk_insert(identity, [{"id": 1, "store_id": uuid.uuid4().hex,
                               "created_at": datetime.now(UTC).replace(tzinfo=None)}])
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("pid", sa.Integer))
        batch.add_column(sa.Column("heartbeat_at", Timestamp))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("pid")
    op.drop_table("store_identity")
