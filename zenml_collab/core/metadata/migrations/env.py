"""Alembic environment: migrations run on the connection handed over by MetadataStore."""

from __future__ import annotations

from alembic import context

from zenml_collab.core.metadata.models import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
