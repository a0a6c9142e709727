"""Create SQLAlchemy engines for each kind of metadata store, with the settings each needs."""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenml_collab.config import MetadataConfig
from zenml_collab.errors import ConfigError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from zenml_collab.google.access import GoogleAccess

__all__ = ["create_engine_for", "mysql_url", "sqlite_url"]

log = logging.getLogger("zenml_collab.metadata")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def mysql_url(cfg: MetadataConfig) -> sa.URL:
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
                      credentials_file: str | None = None,
                      access: GoogleAccess | None = None) -> sa.Engine:
    """An engine for ``cfg``; relative SQLite paths are relative to the repo ``root``.

    ``credentials_file`` is for the in-process connector, used when the environment names no
    GOOGLE_APPLICATION_CREDENTIALS (Application Default Credentials otherwise); ``access``
    (default: the process's :func:`~zenml_collab.google.access.google_access`) supplies
    credentials, endpoint and error mapping.
    """
    import sqlalchemy as sa

    if cfg.kind == "sqlite":
        path = cfg.sqlite_file(root)
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
        return _cloudsql_engine(cfg, credentials_file, access)
    raise ConfigError(f"unknown metadata store kind {cfg.kind!r}", "use sqlite, mysql or cloudsql")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers and one writer work at once (two members on one machine / share);
    # synchronous=NORMAL is durable across application crashes, which is what we need.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _cloudsql_engine(cfg: MetadataConfig, credentials_file: str | None = None,
                     access: GoogleAccess | None = None) -> sa.Engine:
    """The in-process Cloud SQL Python Connector (no proxy, no docker).

    The connector's own calls to the Admin API (``connectSettings``, ``generateEphemeralCert``)
    fail with its HTTP client's errors; the Google classifier turns them into errors with the
    exit code and the fix (a 403 there means the member lacks roles/cloudsql.client).
    """
    import sqlalchemy as sa

    from zenml_collab.google.access import google_access

    instance = cfg.instance
    if not instance or not cfg.database or not cfg.username:
        raise ConfigError(
            "the cloudsql metadata store needs instance, database and username",
            "run `collab join --connector python`, or `collab config metadata set cloudsql "
            "--instance project:region:instance --database D --iam-user`",
        )
    access = access or google_access(credentials_file)
    connector = access.connector()
    iam = cfg.auth == "iam"
    password = cfg.password.get_secret_value() if cfg.password else None
    project = instance.split(":", 1)[0]

    def creator() -> Any:
        from zenml_collab.google.errors import is_google_error

        try:
            return connector.connect(
                instance, "pymysql", user=cfg.username, db=cfg.database,
                enable_iam_auth=iam, **({} if iam else {"password": password}),
            )
        except Exception as exc:
            if not is_google_error(exc):
                raise  # the database's own errors: SQLAlchemy wraps them for the store
            raise access.classify(exc, action="connect to the Cloud SQL instance",
                                  resource=instance, project=project,
                                  permission="cloudsql.instances.connect") from None

    engine = sa.create_engine("mysql+pymysql://", creator=creator, pool_pre_ping=True,
                              pool_recycle=1800, isolation_level="READ COMMITTED")
    # Close the connector (and its event loop) when the engine goes, or at exit.
    weakref.finalize(engine, connector.close)
    return engine
