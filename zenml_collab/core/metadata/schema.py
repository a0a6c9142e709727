"""The metadata store's schema: its state, its identity, the check every command makes, migrations.

One place decides what a database is to us (:meth:`SchemaStore.schema_state`): every command,
`collab db status`, doctor, join and `config metadata set` ask it instead of comparing
revisions themselves. Initialising an empty database and migrating happen under one lock per
store (MySQL: a named server lock; SQLite: a lock file beside the database), so members starting
at once on a fresh store neither collide nor see a half-created schema.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from zenml_collab.core.metadata.connection import StoreConnection
from zenml_collab.errors import MetadataStoreError, SchemaOutOfDateError, StoreIdentityError

HEAD_REVISION = "0005"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
IDENTITY_TABLE = "store_identity"


class SchemaState(enum.StrEnum):
    """What a database is to this version of zenml-collab."""

    CURRENT = "current"
    BEHIND = "behind"  # an older schema: `collab db upgrade`
    AHEAD = "ahead"  # a teammate's newer zenml-collab migrated it
    EMPTY = "empty"  # no tables at all
    FOREIGN = "foreign"  # tables, but not a zenml-collab store


def state_of(revision: str | None, has_tables: bool) -> SchemaState:
    if revision is None:
        return SchemaState.FOREIGN if has_tables else SchemaState.EMPTY
    if revision == HEAD_REVISION:
        return SchemaState.CURRENT
    return SchemaState.BEHIND if revision < HEAD_REVISION else SchemaState.AHEAD


class SchemaStore(StoreConnection):
    """Schema inspection, identity and migration on top of the connection handling."""

    # -- state ------------------------------------------------------------------------------
    def _inspect(self) -> tuple[str | None, bool, str | None]:
        """(revision, has any table, store id) in one connection."""

        def work(conn: sa.Connection) -> tuple[str | None, bool, str | None]:
            inspector = sa.inspect(conn)
            tables = set(inspector.get_table_names())
            if "alembic_version" not in tables:
                return None, bool(tables), None
            revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            store_id = None
            if IDENTITY_TABLE in tables:
                store_id = conn.execute(sa.text(
                    f"SELECT store_id FROM {IDENTITY_TABLE} WHERE id = 1")).scalar()
            return revision, True, store_id

        return self._read(work)

    def schema_state(self) -> SchemaState:
        """current / behind / ahead / empty / foreign: the one answer every caller uses."""
        revision, has_tables, _ = self._inspect()
        return state_of(revision, has_tables)

    def revision(self) -> str | None:
        """The schema revision, or ``None`` for an empty database (a foreign one raises)."""
        revision, has_tables, _ = self._inspect()
        if state_of(revision, has_tables) is SchemaState.FOREIGN:
            raise self._foreign_error()
        return revision

    def store_id(self) -> str | None:
        """The store's identity (``None`` before schema 0004 or in an empty database)."""
        return self._inspect()[2]

    def _foreign_error(self) -> MetadataStoreError:
        return MetadataStoreError(
            f"{self.description} holds tables that are not a zenml-collab store",
            "point the metadata store at an empty database of its own")

    # -- the check every command makes ------------------------------------------------------
    def check_schema(self, *, create_if_empty: bool = True,
                     expected_store_id: str | None = None) -> None:
        """Fail clearly on a database this version cannot use; initialise an empty one.

        With ``expected_store_id`` (``metadata.store_id`` in ``collab.yaml``) the database must
        be that store: an empty or foreign database, or another store, is refused and never
        initialised (the wrong database, or another MySQL answering on the proxy's port).
        An existing schema is never migrated here: that is `collab db upgrade`'s job.
        """
        revision, has_tables, store_id = self._inspect()
        state = state_of(revision, has_tables)
        if state is not SchemaState.CURRENT:
            # Decide under the lock: a teammate may be creating or migrating the schema right
            # now (SQLite and MySQL commit each DDL statement: a half-built schema is visible).
            with self._migration_lock():
                revision, has_tables, store_id = self._inspect()
                state = state_of(revision, has_tables)
                if (state is SchemaState.EMPTY and create_if_empty
                        and expected_store_id is None):
                    self._upgrade_locked("head", revision)
                    return
        if expected_store_id is not None:
            self.check_identity(expected_store_id, state, store_id)
        if state is SchemaState.FOREIGN:
            raise self._foreign_error()
        if state is not SchemaState.CURRENT:
            raise SchemaOutOfDateError(
                f"the metadata store {self.description} is at schema revision {revision}, "
                f"this zenml-collab needs {HEAD_REVISION}",
                "upgrade zenml-collab: a teammate's newer version migrated the store"
                if state is SchemaState.AHEAD
                else "run `collab db upgrade` (back up a shared store first)")

    def check_identity(self, expected: str, state: SchemaState | None = None,
                       actual: str | None = None) -> None:
        """Raise :class:`StoreIdentityError` unless this database is the store ``expected``."""
        if state is None:
            revision, has_tables, actual = self._inspect()
            state = state_of(revision, has_tables)
        if state is SchemaState.BEHIND and actual is None:
            return  # an older store has no id yet: `collab db upgrade` gives it one
        if actual == expected:
            return
        if state in (SchemaState.EMPTY, SchemaState.FOREIGN):
            found = ("an empty database" if state is SchemaState.EMPTY
                     else "a database that is not a zenml-collab store")
        else:
            found = f"another zenml-collab store ({actual})"
        raise StoreIdentityError(
            f"{self.description} is {found}, not the team's store {expected} (collab.yaml "
            "metadata.store_id); nothing was written to it",
            "another MySQL server is probably answering on the metadata port (a local MySQL on "
            "3306, the cloud-sql-proxy port trap) or metadata.database names the wrong "
            "database: stop the other server or change metadata.port (`collab doctor` checks "
            "the proxy), or fix metadata.database")

    # -- migrations -------------------------------------------------------------------------
    def upgrade(self, revision: str = "head") -> tuple[str | None, str]:
        """Migrate to ``revision`` (default: head); returns (before, after)."""
        with self._migration_lock():
            # Read under the lock: a teammate may have just migrated (MySQL DDL is not
            # transactional, so two members creating the same tables would collide).
            before, has_tables, _ = self._inspect()
            if state_of(before, has_tables) is SchemaState.FOREIGN:
                raise self._foreign_error()
            return self._upgrade_locked(revision, before)

    def _upgrade_locked(self, revision: str, before: str | None) -> tuple[str | None, str]:
        from alembic import command
        from alembic.config import Config

        if before is not None and before > HEAD_REVISION:
            raise SchemaOutOfDateError(
                f"the metadata store {self.description} is at schema revision {before}, "
                f"newer than this zenml-collab knows ({HEAD_REVISION})",
                "upgrade zenml-collab: a teammate's newer version migrated the store")
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        except sa.exc.DBAPIError as exc:
            raise self._db_error(exc) from None
        return before, HEAD_REVISION if revision == "head" else revision

    @contextmanager
    def _migration_lock(self, timeout_s: int = 120) -> Iterator[None]:
        """One member at a time initialises or migrates this store."""
        if self.engine.dialect.name == "sqlite":
            with _sqlite_file_lock(self.engine.url.database, timeout_s):
                yield
            return
        if self.engine.dialect.name not in ("mysql", "mariadb"):
            yield
            return
        # A server-wide named lock, held by this connection until released.
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


@contextmanager
def _sqlite_file_lock(database: str | None, timeout_s: int) -> Iterator[None]:
    """An exclusive lock on ``<database>.migrate.lock``: SQLite DDL is not serialised for us
    (the driver commits each CREATE TABLE on its own), so two first runs would collide."""
    if not database or database == ":memory:":
        yield
        return
    import time

    path = Path(database).with_name(Path(database).name + ".migrate.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        while not _try_lock(fd):
            if time.monotonic() > deadline:
                raise MetadataStoreError(
                    f"another process is initialising the metadata store {database} "
                    f"(waited {timeout_s} s)",
                    f"wait for it to finish; if none is running, delete {path}")
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
