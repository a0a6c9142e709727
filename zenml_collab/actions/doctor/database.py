"""Checks of the path to the metadata database: the proxy, its port, a query, the schema."""

from __future__ import annotations

import socket
from typing import Literal

from zenml_collab.actions.doctor.context import DbLogin, DoctorContext
from zenml_collab.actions.doctor.model import Check, CheckResult, NotApplicable, failed, passed
from zenml_collab.config import Settings

Mode = Literal["proxy", "connector", "mysql", "sqlite"]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
GREETING_TIMEOUT = 2.0


def connection_mode(settings: Settings) -> Mode:
    """How this member reaches the metadata store."""
    metadata = settings.metadata
    if metadata.kind == "sqlite":
        return "sqlite"
    if metadata.kind == "cloudsql":
        return "proxy" if metadata.connector == "proxy" else "connector"
    connector = metadata.connector or settings.local.connector
    if connector == "proxy" or (connector is None and settings.team.gcp is not None
                                and metadata.host in LOOPBACK):
        return "proxy"
    return "mysql"


def configured_port(settings: Settings) -> int:
    return settings.metadata.port or settings.local.proxy_port or 3306


def _proxy_mode(ctx: DoctorContext) -> Settings:
    settings = ctx.settings()
    mode = connection_mode(settings)
    if mode == "connector":
        raise NotApplicable("connector mode: the in-process Cloud SQL Python Connector needs "
                            "no proxy")
    if mode == "sqlite":
        raise NotApplicable("the metadata store is a local SQLite file: no proxy")
    if mode == "mysql":
        raise NotApplicable(f"the metadata store is the MySQL server at "
                            f"{settings.metadata.host}:{configured_port(settings)}, not "
                            "reached through the Cloud SQL proxy")
    return settings


def mysql_greeting(port: int, host: str = "127.0.0.1") -> str | None:
    """The server version a MySQL server announces on ``port``, or None if it is not MySQL.

    A MySQL/MariaDB server speaks first: a packet with protocol version 10 and a
    NUL-terminated version string. We read only that and close.
    """
    try:
        with socket.create_connection((host, port), timeout=GREETING_TIMEOUT) as conn:
            conn.settimeout(GREETING_TIMEOUT)
            data = b""
            while len(data) < 64:
                chunk = conn.recv(256)
                if not chunk:
                    break
                data += chunk
                if len(data) > 5 and b"\0" in data[5:]:
                    break
    except OSError:
        return None
    if len(data) < 6 or data[4] != 10:
        return None
    return data[5:].split(b"\0", 1)[0].decode(errors="replace") or None


def check_proxy(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.infra.proxy import port_in_use, proxy_status

    settings = _proxy_mode(ctx)
    port = configured_port(settings)
    status = proxy_status(ctx.docker(), repo_root=ctx.root())
    if not status.running:
        what = ("no proxy container runs for this repository" if status.state == "absent"
                else f"the proxy container {status.name} is {status.state}")
        if port_in_use(port):
            version = mysql_greeting(port)
            other = f"a MySQL server ({version})" if version else "another program"
            return failed(f"{what}, and port {port} is taken by {other}",
                          f"stop what listens on {port}, or give the proxy a free port in "
                          ".collab/local.yaml (proxy_port and metadata.port), then "
                          "`collab proxy start`", "connectivity")
        return failed(what, "start it: `collab proxy start` (`collab doctor --fix` does it)",
                      "connectivity", auto_fix="proxy")
    if not status.ready:
        return failed(f"the proxy container {status.name} runs but /readiness does not answer "
                      "200", "read `collab proxy logs`; restart it with `collab proxy start`",
                      "connectivity")
    return passed(f"{status.name} is ready, publishing 127.0.0.1:{status.port} for "
                  f"{status.connection_name}")


def check_port(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.infra.proxy import port_in_use, proxy_status

    settings = _proxy_mode(ctx)
    port = configured_port(settings)
    status = proxy_status(ctx.docker(), repo_root=ctx.root())
    if status.port == port:
        return passed(f"port {port} belongs to this repository's proxy ({status.name})")
    fix = (f"point the metadata store at the proxy's port {status.port} (metadata.port and "
           "proxy_port in .collab/local.yaml), or restart the proxy on a free port with "
           "`collab proxy start`")
    if not port_in_use(port):
        return failed(f"nothing listens on the configured port {port}; the proxy publishes "
                      f"{status.port}", fix, "connectivity")
    version = mysql_greeting(port)
    if version:
        return failed(f"port {port} is served by another MySQL server ({version}), not by "
                      f"this repository's proxy (on {status.port}): you would silently read "
                      "and write the wrong database", fix, "connectivity")
    return failed(f"port {port} is taken by another program, not this repository's proxy "
                  f"(on {status.port})", fix, "connectivity")


def login(ctx: DoctorContext) -> DbLogin:
    """Log in to the metadata database once and ask for its version."""
    import sqlalchemy as sa

    store = ctx.metadata_store()
    engine = store.engine
    query = ("SELECT sqlite_version(), 'local'" if engine.dialect.name == "sqlite"
             else "SELECT @@version, CURRENT_USER()")
    try:
        with engine.connect() as conn:
            version, user = conn.execute(sa.text(query)).one()
    except sa.exc.DBAPIError as exc:
        from zenml_collab.dberrors import DbFault, classify, db_error

        what = {DbFault.DATABASE_REFUSED: f"{store.description} refused the database",
                DbFault.LOGIN_REFUSED: f"{store.description} refused the login",
                DbFault.PRIVILEGE: f"{store.description} refused the database",
                }.get(classify(exc), f"cannot reach {store.description}")
        raise db_error(exc, what, hints={
            # Logged in, but no privileges on the database (Cloud SQL gives a new IAM user none).
            DbFault.DATABASE_REFUSED: "your database user has not been granted the database "
            "(Cloud SQL gives a new IAM user no privileges): ask an admin to run `collab "
            "bootstrap --regrant` with the team's usual bootstrap flags",
            DbFault.LOGIN_REFUSED: "check metadata.username; for IAM logins an admin creates "
            "your database user and grants it the database (`collab doctor --member ...` shows "
            "which)",
            DbFault.UNREACHABLE: "check the proxy (`collab proxy status`) or the connector "
            "settings, then re-run",
        }) from None
    return DbLogin(str(version), str(user), store.description)


def check_query(ctx: DoctorContext) -> CheckResult:
    result = ctx.db_login()
    return passed(f"{result.url}: version {result.version}, logged in as {result.user}")


def check_schema(ctx: DoctorContext) -> CheckResult:
    """The store's identity (the same check every command makes), then its schema state."""
    from zenml_collab.core.metadata.schema import HEAD_REVISION, SchemaState
    from zenml_collab.errors import StoreIdentityError

    store = ctx.metadata_store()
    expected = ctx.settings().metadata.store_id
    if expected is not None:
        try:
            store.check_identity(expected)
        except StoreIdentityError as exc:
            return failed(exc.message, exc.hint or "", "connectivity")
    state = store.schema_state()
    current = store.revision() if state is not SchemaState.FOREIGN else None
    if state is SchemaState.CURRENT:
        return passed(f"schema {current} is current")
    if state is SchemaState.FOREIGN:
        return failed(f"{store.description} holds tables that are not a zenml-collab store",
                      "point the metadata store at an empty database of its own")
    if state in (SchemaState.EMPTY, SchemaState.BEHIND):
        return failed(f"{store.description} is at schema {current or '(empty)'}, this "
                      f"zenml-collab needs {HEAD_REVISION}",
                      "run `collab db upgrade` (back up a shared store first; "
                      "`collab doctor --fix` runs it)", auto_fix="schema")
    return failed(f"{store.description} is at schema {current}, newer than this zenml-collab "
                  f"({HEAD_REVISION}): a teammate upgraded",
                  "upgrade zenml-collab to the team's version (`pip install -U zenml-collab`)")


CHECKS = (
    Check("db.proxy", "Cloud SQL proxy running and ready", check_proxy, ("repo.config",),
          timeout=8, category="connectivity"),
    Check("db.port", "configured port is this repository's proxy", check_port, ("db.proxy",),
          timeout=6, category="connectivity"),
    Check("db.query", "database answers SELECT @@version", check_query,
          ("repo.config", "db.port"), timeout=15, category="connectivity"),
    Check("db.schema", "metadata schema is current", check_schema, ("db.query",), timeout=10),
)
