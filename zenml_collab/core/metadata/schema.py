"""The metadata store's schema: its revision, the check every command makes, migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from zenml_collab.core.metadata.connection import StoreConnection
from zenml_collab.errors import MetadataStoreError, SchemaOutOfDateError

HEAD_REVISION = "0003"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SchemaStore(StoreConnection):
    """Schema inspection and migration on top of the connection handling."""

    # -- schema -----------------------------------------------------------------------------
    def revision(self) -> str | None:
        """The schema revision, or ``None`` for an empty database."""
        with self._connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                if sa.inspect(conn).get_table_names():
                    raise MetadataStoreError(
                        f"{self.description} holds tables that are not a zenml-collab store",
                        "point the metadata store at an empty database of its own",
                    )
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def check_schema(self, *, create_if_empty: bool = True) -> None:
        """Fail clearly on a schema this version cannot use; initialise an empty database.

        An existing schema is never migrated here: that is `collab db upgrade`'s job.
        """
        current = self.revision()
        if current is None and create_if_empty:
            self.upgrade()
            return
        if current != HEAD_REVISION:
            raise SchemaOutOfDateError(
                f"the metadata store {self.description} is at schema revision {current}, "
                f"this zenml-collab needs {HEAD_REVISION}",
                "run `collab db upgrade` (back up a shared store first)"
                if current is None or current < HEAD_REVISION
                else "upgrade zenml-collab: a teammate's newer version migrated the store",
            )

    def upgrade(self, revision: str = "head") -> tuple[str | None, str]:
        """Migrate to ``revision`` (default: head); returns (before, after)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self._migration_lock():
            # Read under the lock: a teammate may have just migrated (MySQL DDL is not
            # transactional, so two members creating the same tables would collide).
            before = self.revision()
            if before is not None and before > HEAD_REVISION:
                raise SchemaOutOfDateError(
                    f"the metadata store {self.description} is at schema revision {before}, "
                    f"newer than this zenml-collab knows ({HEAD_REVISION})",
                    "upgrade zenml-collab: a teammate's newer version migrated the store")
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        return before, HEAD_REVISION if revision == "head" else revision

    @contextmanager
    def _migration_lock(self, timeout_s: int = 120) -> Iterator[None]:
        """On MySQL, a server-wide named lock so only one member migrates at a time."""
        if self.engine.dialect.name not in ("mysql", "mariadb"):
            yield
            return
        name = f"zenml_collab_migrate:{self.engine.url.database}"[:64]
        with self._connect() as conn:
            got = conn.execute(sa.text("SELECT GET_LOCK(:n, :t)"),
                               {"n": name, "t": timeout_s}).scalar()
            if got != 1:
                raise MetadataStoreError(
                    f"another member is migrating {self.description} (waited {timeout_s} s)",
                    "wait for it to finish, then run the command again")
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": name})
