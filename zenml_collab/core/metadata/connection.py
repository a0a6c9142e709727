"""The metadata store's connection handling: one held connection per run, retried transactions.

Every write is one short transaction through :meth:`StoreConnection._tx`, which commits or rolls
back in one place and retries a transaction that lost its connection (a proxy or server
restart) or lost a lock conflict.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa

from zenml_collab.errors import ConnectivityError, MetadataStoreError

T = TypeVar("T")


class StoreConnection:
    """One SQLAlchemy engine, with the store's connection and retry policy."""

    def __init__(self, engine: sa.Engine, *, description: str = "") -> None:
        self.engine = engine
        self.description = description or engine.url.render_as_string(hide_password=True)
        self._local = threading.local()

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def run_session(self) -> Iterator[None]:
        """Hold one autocommit connection for the duration of a run (this thread only).

        Per step, this saves the pool's checkout ping, the rollback on return and the COMMIT
        round trip: on Cloud SQL, a cached step is two round trips (lookup, insert).
        Every statement of the hot path stands on its own (INSERT IGNORE, content-addressed
        rows), so none needs a multi-statement transaction.
        """
        if getattr(self._local, "held", None) is not None:
            yield
            return
        self._local.held = self._open_held()
        self._local.reopen = False
        try:
            yield
        finally:
            held, self._local.held = self._local.held, None
            self._local.reopen = False
            held.close()

    def _open_held(self) -> sa.Connection:
        try:
            return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.OperationalError as exc:
            raise self._connectivity_error(exc) from None

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        held = getattr(self._local, "held", None)
        if held is not None:
            yield held
            return
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise self._connectivity_error(exc) from None

    def _connectivity_error(self, exc: sa.exc.DBAPIError) -> ConnectivityError:
        return ConnectivityError(
            f"cannot reach the metadata store {self.description}: {exc.orig}",
            "check that the database (or the Cloud SQL proxy: `collab proxy status`) is running; "
            "`collab doctor` diagnoses the rest",
        )

    def _tx(self, work: Callable[[sa.Connection], T], *, attempts: int = 5) -> T:
        """Run ``work`` in one transaction; retry it if the connection dropped.

        A deadlock or lock-wait timeout between members writing at once is retried too: the
        server rolled the transaction back, so running it again is safe. In a run session
        (autocommit) each hot-path statement is idempotent or the last one, so re-running the
        work after a lost connection is safe as well. A server that is restarting (a proxy or
        Cloud SQL maintenance) gets the whole backoff, about 10 s, before we give up.
        """
        delay = 0.2
        for attempt in range(1, attempts + 1):
            try:
                if getattr(self._local, "reopen", False):
                    self._local.held = self.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT")
                    self._local.reopen = False
                held = getattr(self._local, "held", None)
                if held is not None:
                    return work(held)
                with self.engine.begin() as conn:
                    return work(conn)
            except sa.exc.DBAPIError as exc:
                conflict = _is_lock_conflict(exc)
                transient = exc.connection_invalidated or _is_disconnect(exc) or conflict
                if not transient:
                    raise
                held = getattr(self._local, "held", None)
                if held is not None and not conflict:
                    # Drop the dead connection; the next attempt opens a fresh one.
                    held.invalidate()
                    self._local.reopen = True
                if attempt == attempts:
                    if conflict:
                        raise MetadataStoreError(
                            f"the metadata store {self.description} kept reporting lock "
                            f"conflicts: {exc.orig}", "run the pipeline again") from None
                    raise self._connectivity_error(exc) from None
                time.sleep(delay)
                delay = min(delay * 2, 3.0)
        raise AssertionError("unreachable")


def _error_code(exc: sa.exc.DBAPIError) -> Any:
    args = getattr(exc.orig, "args", None)
    return args[0] if args else None


def _is_disconnect(exc: sa.exc.DBAPIError) -> bool:
    # pymysql: 2003 can't connect, 2006 server gone away, 2013 lost connection during query;
    # server: 1053 shutdown in progress, 1927 connection killed (MariaDB), 4031 idle timeout.
    return isinstance(exc, sa.exc.OperationalError) and _error_code(exc) in (
        2003, 2006, 2013, 1053, 1927, 4031)


def _is_lock_conflict(exc: sa.exc.DBAPIError) -> bool:
    # MySQL 1213 deadlock, 1205 lock wait timeout (the transaction was rolled back).
    return _error_code(exc) in (1205, 1213)
