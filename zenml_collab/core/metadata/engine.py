"""Create SQLAlchemy engines for each kind of metadata store, with the settings each needs."""

from __future__ import annotations

import logging
import os
import weakref
from pathlib import Path
from typing import Any

from zenml_collab.config import MetadataConfig
from zenml_collab.errors import ConfigError

log = logging.getLogger("zenml_collab.metadata")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def mysql_url(cfg: MetadataConfig) -> Any:
    import sqlalchemy as sa

    missing = [k for k in ("host", "username", "database") if not getattr(cfg, k)]
    if missing:
        raise ConfigError(
            f"the mysql metadata store needs {', '.join(missing)}",
            "set it with `collab config metadata set mysql --host H --port P --username U --database D`",
        )
    return sa.URL.create(
        "mysql+pymysql",
        username=cfg.username,
        password=cfg.password.get_secret_value() if cfg.password else None,
        host=cfg.host,
        port=cfg.port or 3306,
        database=cfg.database,
        query={"charset": "utf8mb4"},
    )


def create_engine_for(cfg: MetadataConfig, root: Path, *,
                      credentials_file: str | None = None) -> Any:
    """An engine for ``cfg``; relative SQLite paths are relative to the repo ``root``.

    ``credentials_file`` is for the in-process connector, used when the environment names no
    GOOGLE_APPLICATION_CREDENTIALS (Application Default Credentials otherwise).
    """
    import sqlalchemy as sa

    if cfg.kind == "sqlite":
        path = Path(cfg.path or ".collab/metadata.db")
        path = path if path.is_absolute() else root / path
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(sqlite_url(path), connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if cfg.kind == "mysql":
        return sa.create_engine(
            mysql_url(cfg),
            pool_pre_ping=True,  # a proxy restart or an idle timeout must not fail a step
            pool_recycle=1800,
            isolation_level="READ COMMITTED",  # fewer gap locks between concurrent members
            connect_args={"connect_timeout": 10},
        )
    if cfg.kind == "cloudsql":
        return _cloudsql_engine(cfg, credentials_file)
    raise ConfigError(f"unknown metadata store kind {cfg.kind!r}", "use sqlite, mysql or cloudsql")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers and one writer work at once (two members on one machine / share);
    # synchronous=NORMAL is durable across application crashes, which is what we need.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _cloudsql_engine(cfg: MetadataConfig, credentials_file: str | None = None) -> Any:
    """The in-process Cloud SQL Python Connector (no proxy, no docker)."""

    import sqlalchemy as sa

    instance = cfg.instance
    if not instance or not cfg.database or not cfg.username:
        raise ConfigError(
            "the cloudsql metadata store needs instance, database and username",
            "run `collab join --connector python`, or `collab config metadata set cloudsql "
            "--instance project:region:instance --database D --iam-user`",
        )
    credentials = None
    if credentials_file and not os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        import google.auth

        credentials, _ = google.auth.load_credentials_from_file(
            credentials_file, scopes=["https://www.googleapis.com/auth/sqlservice.admin"])
    connector = OwnedConnector(os.environ.get("COLLAB_SQLADMIN_ENDPOINT"), credentials=credentials)
    iam = cfg.auth == "iam"
    password = cfg.password.get_secret_value() if cfg.password else None

    def creator() -> Any:
        return connector.connect(
            instance, "pymysql", user=cfg.username, db=cfg.database,
            enable_iam_auth=iam, **({} if iam else {"password": password}),
        )

    engine = sa.create_engine("mysql+pymysql://", creator=creator, pool_pre_ping=True,
                              pool_recycle=1800, isolation_level="READ COMMITTED")
    # Close the connector (and its event loop) when the engine goes, or at exit.
    weakref.finalize(engine, connector.close)
    return engine


class OwnedConnector:
    """A Cloud SQL Connector on an event loop we own.

    The connector stops a loop it made itself but never closes it, which leaks the loop's
    self-pipe; owning the loop lets :meth:`close` release everything.
    """

    def __init__(self, endpoint: str | None, credentials: Any = None) -> None:
        import asyncio
        import threading

        from google.cloud.sql.connector import Connector

        self._loop = asyncio.new_event_loop()
        # The connector refreshes certificates in background tasks and logs their failures
        # with full tracebacks; the failure that matters reaches the caller as an exception
        # with our message. Keep the rest for COLLAB_DEBUG.
        if not os.environ.get("COLLAB_DEBUG"):
            logging.getLogger("google.cloud.sql.connector").setLevel(logging.CRITICAL)
            self._loop.set_exception_handler(
                lambda _loop, context: log.debug("connector background task: %s",
                                                 context.get("message")))
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="cloudsql-connector")
        self._thread.start()
        kwargs: dict[str, Any] = {"loop": self._loop}
        if endpoint:
            kwargs["sqladmin_api_endpoint"] = endpoint
        if credentials is not None:
            kwargs["credentials"] = credentials
        self._connector = Connector(**kwargs)
        self._closed = False

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        return self._connector.connect(*args, **kwargs)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        import asyncio
        import contextlib

        self._connector.close()
        # A refresh still in flight (e.g. after a refused login) would otherwise die with
        # "Task exception was never retrieved" on the member's terminal. Best effort.
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_pending(), self._loop).result(timeout=3)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()


async def _cancel_pending() -> None:
    import asyncio

    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)  # retrieves their exceptions
