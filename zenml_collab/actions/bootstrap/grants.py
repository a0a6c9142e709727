"""Granting members their database, the step the Admin API cannot do.

Cloud SQL for MySQL creates an IAM database user with no privileges on any database; someone
holding privileges has to run ``GRANT ALL PRIVILEGES ON `db`.* TO 'login'@'%'``. Built-in users
created through the Admin API get the ``cloudsqlsuperuser`` role, which may grant. So bootstrap
keeps one built-in user, :data:`~.model.GRANT_ADMIN_USER`, whose password nobody knows: when
there is something to grant it sets a fresh random one through the Admin API, logs in with it
through the Cloud SQL Python Connector, runs the GRANTs and forgets it. The password lives only
in this process's memory; it is never written, printed or logged.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from zenml_collab.actions.bootstrap.model import (
    GRANT_ADMIN_USER,
    GrantChange,
    Plan,
    Progress,
    ProgressCallback,
)
from zenml_collab.errors import CollabError
from zenml_collab.infra.gcp import sqladmin
from zenml_collab.infra.gcp.clients import GcpClients
from zenml_collab.infra.gcp.retry import status_of

if TYPE_CHECKING:
    from zenml_collab.google.access import OwnedConnector

STEP = "database grants"


def grant_statement(grant: GrantChange) -> str:
    """The SQL of ``grant``, as shown to the admin (and as run, with the login bound).

    >>> grant_statement(GrantChange("user:a@x.com", "a", "zenml", "new user"))
    "GRANT ALL PRIVILEGES ON `zenml`.* TO 'a'@'%'"
    """
    return f"GRANT ALL PRIVILEGES ON {_quote_db(grant.database)}.* TO '{grant.login}'@'%'"


def _quote_db(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def regrant_hint(plan_: Plan) -> str:
    req = plan_.request
    return (f"re-run `collab bootstrap --project {req.project} --region {req.region} "
            "... --regrant` (same flags) to grant every member again")


def apply_grants(clients: GcpClients, plan_: Plan, on_progress: ProgressCallback
                 ) -> tuple[str | None, bool]:
    """Run ``plan_.grants`` and set up the metadata store (:mod:`.store`) in one login as
    :data:`GRANT_ADMIN_USER`; nothing to do: no call at all.

    Returns (the store's id, whether this run initialised the store); with nothing to do, the
    id ``collab.yaml`` already records.
    """
    store = plan_.store
    needs_store = store is not None and store.action != "none"
    if not plan_.grants and not needs_store:
        return (store.store_id if store else None), False
    password = secrets.token_urlsafe(32)
    granted = False
    try:
        _set_password(clients, plan_, password, on_progress)
        on_progress(Progress(STEP, f"connecting as {GRANT_ADMIN_USER} through the Cloud SQL "
                                   "connector"))
        from zenml_collab.actions.bootstrap.store import ensure_store
        from zenml_collab.google.access import OwnedConnector
        from zenml_collab.infra.gcp.endpoints import sqladmin_endpoint

        # The admin's own credentials, the ones every other bootstrap call used.
        connector = OwnedConnector(sqladmin_endpoint(), credentials=clients.credentials)
        try:
            _run(connector, plan_, password, on_progress)
            granted = True
            return (ensure_store(connector, plan_, password, on_progress) if needs_store
                    else (None, False))
        finally:
            connector.close()
    except CollabError as exc:
        if plan_.grants and not granted:
            # Users created earlier in this run exist now: a plain re-run would not grant them.
            exc.hint = (f"{exc.hint}; then " if exc.hint else "") + regrant_hint(plan_)
        raise


def _set_password(clients: GcpClients, plan_: Plan, password: str,
                  on_progress: ProgressCallback) -> None:
    """A fresh password on GRANT_ADMIN_USER: update it, or create it if absent. Each falls back
    to the other when someone created or deleted the user since the plan was read."""
    req = plan_.request
    how = plan_.grant_user
    on_progress(Progress(STEP, f"{'creating' if how == 'create' else 'setting a fresh password on'}"
                               f" built-in user {GRANT_ADMIN_USER}"))
    if how == "create":
        try:
            op = sqladmin.insert_user(clients.sqladmin, req.project, req.instance,
                                      GRANT_ADMIN_USER, "BUILT_IN", password=password,
                                      retry=clients.retry)
        except CollabError as exc:
            if _status(exc) != 409:
                raise
            op = sqladmin.update_user_password(clients.sqladmin, req.project, req.instance,
                                               GRANT_ADMIN_USER, password, retry=clients.retry)
    else:
        try:
            op = sqladmin.update_user_password(clients.sqladmin, req.project, req.instance,
                                               GRANT_ADMIN_USER, password, retry=clients.retry)
        except CollabError as exc:
            if _status(exc) != 404:
                raise
            op = sqladmin.insert_user(clients.sqladmin, req.project, req.instance,
                                      GRANT_ADMIN_USER, "BUILT_IN", password=password,
                                      retry=clients.retry)

    def report(p: sqladmin.OperationProgress) -> None:
        on_progress(Progress(STEP, f"{p.operation_type.lower()} {p.status.lower()}", p))

    sqladmin.wait_operation(clients.sqladmin, req.project, op, on_progress=report,
                            poll=clients.poll_interval, retry=clients.retry)


def _status(exc: CollabError) -> int | None:
    """The HTTP status of the Google error a translated error came from."""
    return status_of(exc.__cause__) if exc.__cause__ is not None else None


def _run(connector: OwnedConnector, plan_: Plan, password: str,
         on_progress: ProgressCallback) -> None:
    if not plan_.grants:
        return
    import pymysql

    conn = login(connector, plan_.connection_name, password)
    try:
        with conn.cursor() as cur:
            for grant in plan_.grants:
                on_progress(Progress(f"grant {grant.login}",
                                     f"ALL PRIVILEGES on {_quote_db(grant.database)}.* "
                                     f"({grant.reason}: {grant.member})"))
                try:
                    cur.execute(f"GRANT ALL PRIVILEGES ON {_quote_db(grant.database)}.* "
                                "TO %s@'%%'", (grant.login,))
                except pymysql.err.MySQLError as exc:
                    raise _sql_error(exc, f"cannot grant {grant.login} the database "
                                          f"{grant.database}") from None
    finally:
        conn.close()


def login(connector: OwnedConnector, connection_name: str, password: str, *,
          database: str | None = None) -> Any:
    """A pymysql connection as :data:`GRANT_ADMIN_USER` (to ``database`` if given); the
    connector's and MySQL's refusals come back as :class:`CollabError` with the fix."""
    import pymysql

    from zenml_collab.google.errors import classify, is_google_error

    what = f"cannot log in to {connection_name} as {GRANT_ADMIN_USER}"
    try:
        return connector.connect(connection_name, "pymysql", user=GRANT_ADMIN_USER,
                                 password=password, autocommit=True,
                                 **({"db": database} if database else {}))
    except pymysql.err.MySQLError as exc:
        raise _sql_error(exc, what) from None
    except Exception as exc:
        # The connector's own calls to the Admin API (connectSettings, ephemeral certificate)
        # and its transport: the one Google classifier names the role or the fix.
        if not is_google_error(exc) and not isinstance(exc, OSError | TimeoutError):
            raise
        raise classify(exc, action=f"log in to the instance as {GRANT_ADMIN_USER}",
                       resource=connection_name, project=connection_name.split(":")[0],
                       permission="cloudsql.instances.connect") from None


def _sql_error(exc: Exception, what: str) -> CollabError:
    from zenml_collab.dberrors import DbFault, db_error

    admin = (f"{GRANT_ADMIN_USER} needs the cloudsqlsuperuser role (every built-in user the "
             "Admin API creates has it)")
    return db_error(exc, what, hints={
        DbFault.LOGIN_REFUSED: admin, DbFault.DATABASE_REFUSED: admin, DbFault.PRIVILEGE: admin,
        DbFault.UNREACHABLE: "check the instance is running",
        DbFault.DISCONNECTED: "check the instance is running",
        DbFault.OTHER: "check the instance is running"})
