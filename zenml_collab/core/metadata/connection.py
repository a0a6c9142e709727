"""The metadata store's connection handling: one held connection per run, retried transactions.

Every write is one short transaction through :meth:`StoreConnection._tx`, which commits or rolls
back in one place and retries a transaction that lost its connection (a proxy or server
restart) or lost a lock conflict.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa

from zenml_collab.dberrors import DbFault, classify, db_error
from zenml_collab.errors import CollabError

log = logging.getLogger("zenml_collab.metadata")

T = TypeVar("T")


class StoreConnection:
    """One SQLAlchemy engine, with the store's connection and retry policy."""

    #: How long a restarting server is waited for (about a Cloud SQL maintenance failover's
    #: reconnect); then the command fails with a connectivity error.
    retry_window_s: float = 12.0
    #: Lock conflicts are retried this many times (SQLite already waited for its lock).
    max_conflicts: int = 5

    def __init__(self, engine: sa.Engine, *, description: str = "") -> None:
        self.engine = engine
        self.description = description or engine.url.render_as_string(hide_password=True)
        self._local = threading.local()
        # Per thread, the autocommit connection of the last run, kept for the next one.
        self._warm: dict[int, tuple[sa.Connection, float]] = {}
        weakref.finalize(self, _drop_warm, self._warm)
        window = os.environ.get("COLLAB_DB_RETRY_SECONDS", "")
        with contextlib.suppress(ValueError):  # operators (and fault tests) may tune the wait
            if window.strip() and 0 <= float(window) <= 3600:
                self.retry_window_s = float(window)
        if engine.dialect.name in ("mysql", "mariadb") and not sa.event.contains(
                engine, "connect", _strict_session):
            sa.event.listen(engine, "connect", _strict_session)

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def run_session(self) -> Iterator[None]:
        """Hold one autocommit connection for the duration of a run (this thread only).

        Per step, this saves the pool's checkout ping, the rollback on return and the COMMIT
        round trip: on Cloud SQL, a cached step is two round trips (lookup, insert).
        Every statement of the hot path stands on its own (INSERT IGNORE, content-addressed
        rows), so none needs a multi-statement transaction.

        The connection stays warm for the thread's next run (DESIGN §12): reusing it costs no
        round trip (no pool ping, no autocommit switch, no reset on return); one idle longer
        than :attr:`warm_idle_s` is pinged first. It is dropped (no round trip) when the store
        goes or the process exits.
        """
        if getattr(self._local, "held", None) is not None:
            yield
            return
        self._local.held = self._take_warm() or self._open_held()
        self._local.reopen = False
        try:
            yield
        finally:
            held, self._local.held = self._local.held, None
            self._local.reopen = False
            if held.invalidated or held.closed:
                held.close()
            else:
                self._warm[threading.get_ident()] = (held, time.monotonic())

    #: A warm connection idle longer than this is pinged before reuse (a proxy or the server
    #: may have dropped it; a dropped one is replaced without waiting for the retry delay).
    warm_idle_s: float = 60.0

    def close(self) -> None:
        """Close the warm run connection and the engine's pool now, not at garbage collection
        (a long-lived process, or a test that must not leak sockets into the next one)."""
        _drop_warm(self._warm)
        self.engine.dispose()

    def _take_warm(self) -> sa.Connection | None:
        warm = self._warm.pop(threading.get_ident(), None)
        if warm is None:
            return None
        conn, since = warm
        if time.monotonic() - since <= self.warm_idle_s:
            return conn
        try:
            conn.exec_driver_sql("SELECT 1")
            return conn
        except sa.exc.DBAPIError:
            conn.invalidate()
            conn.close()
            return None

    def _open_held(self) -> sa.Connection:
        # The first connection of a command gets the same patience as the hot path: a
        # database restart of a few seconds must be invisible.
        return self._retry(lambda: self.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"), what="connect")

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        """One connection (the run's held one in a run session), opened with retries."""
        held = getattr(self._local, "held", None)
        if held is not None:
            yield held
            return
        conn = self._retry(self.engine.connect, what="connect")
        try:
            with conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            raise self._db_error(exc) from None

    def _db_error(self, exc: BaseException) -> CollabError:
        return db_error(exc, f"the metadata store {self.description}")

    def _read(self, work: Callable[[sa.Connection], T]) -> T:
        """Run a read-only ``work``; retried like a transaction (reads are idempotent)."""
        return self._tx(work)

    def _tx(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work`` in one transaction; retry it if the connection dropped.

        A deadlock or lock-wait timeout between members writing at once is retried too: the
        server rolled the transaction back, so running it again is safe. In a run session
        (autocommit) each hot-path statement is idempotent or the last one, so re-running the
        work after a lost connection is safe as well. A server that is restarting (a proxy or
        Cloud SQL maintenance) gets :attr:`retry_window_s` before we give up with a
        connectivity error (exit 4). Every driver error leaves as a classified
        :class:`~zenml_collab.dberrors.DbError`.
        """

        def attempt() -> T:
            if getattr(self._local, "reopen", False):
                self._local.held = self.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT")
                self._local.reopen = False
            held = getattr(self._local, "held", None)
            if held is not None:
                return work(held)
            with self.engine.begin() as conn:
                return work(conn)

        return self._retry(attempt, what="transaction")

    def _retry(self, attempt: Callable[[], T], *, what: str) -> T:
        delay = 0.2
        deadline = time.monotonic() + self.retry_window_s
        conflicts = 0
        while True:
            try:
                return attempt()
            except sa.exc.DBAPIError as exc:
                fault = classify(exc)
                if not fault.transient:
                    raise self._db_error(exc) from None
                if fault is DbFault.LOCK_CONFLICT:
                    conflicts += 1
                else:
                    held = getattr(self._local, "held", None)
                    if held is not None:
                        # Drop the dead connection; the next attempt opens a fresh one.
                        held.invalidate()
                        self._local.reopen = True
                out_of_time = time.monotonic() + delay > deadline
                if conflicts >= self.max_conflicts or out_of_time:
                    log.debug("metadata %s gave up after %s", what, fault.value)
                    raise self._db_error(exc) from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)


# No silent truncation or coercion on any server default (Cloud SQL's MySQL 8 is strict,
# a self-hosted MariaDB may not be): a value too long is an error, never a cut row.
SQL_MODE = ("STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
            "NO_ENGINE_SUBSTITUTION")


def _drop_warm(warm: dict[int, tuple[sa.Connection, float]]) -> None:
    # Invalidate, not close: closing would return each connection to the pool with a
    # rollback and an isolation reset (round trips) just before the process ends.
    for conn, _ in list(warm.values()):
        with contextlib.suppress(Exception):
            conn.invalidate()
    warm.clear()


def _strict_session(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"SET SESSION sql_mode = '{SQL_MODE}'")
    finally:
        cursor.close()
