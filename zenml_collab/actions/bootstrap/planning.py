"""The read-only phase of bootstrap: :func:`plan` checks permissions and APIs, reads what
exists and returns a frozen :class:`~.model.Plan`; it makes no change."""

from __future__ import annotations

import re
from typing import Any

from zenml_collab.actions.bootstrap import compute
from zenml_collab.actions.bootstrap.model import (
    GRANT_ADMIN_USER,
    IAM_FLAG,
    SSL_MODE,
    Action,
    BindingChange,
    BootstrapRequest,
    GrantChange,
    Plan,
    ResourceChange,
    ServiceState,
    StoreChange,
)
from zenml_collab.config import TeamConfig
from zenml_collab.errors import CollabError, PermissionDeniedError
from zenml_collab.infra.gcp import buckets, projects, services, sqladmin
from zenml_collab.infra.gcp.clients import GcpClients
from zenml_collab.infra.gcp.permissions import (
    ADMIN_PROJECT_PERMISSIONS,
    BUCKET_MEMBER_ROLES,
    ENABLE_SERVICE_PERMISSION,
    REQUIRED_SERVICES,
    DbAuth,
    admin_role,
    enable_command,
    grant_command,
    member_roles,
    normalise_member,
)

# What setting GRANT_ADMIN_USER's password takes, by how (it exists, or is created).
GRANT_PERMISSIONS = {"update": "cloudsql.users.update", "create": "cloudsql.users.create"}
PROJECT_STORAGE_ROLES = frozenset({"roles/storage.admin", "roles/storage.objectAdmin",
                                   "roles/storage.objectViewer", "roles/storage.objectCreator"})


def password_username(member: str) -> str:
    """The built-in MySQL user name of ``member`` with password auth (<= 32 characters).

    >>> password_username("user:Alice.Smith@x.com")
    'alice_smith'
    """
    local = member.partition(":")[2].split("@")[0].lower()
    return re.sub(r"[^a-z0-9_]", "_", local)[:32]


def db_user(member: str, db_auth: DbAuth) -> tuple[str, str]:
    """(Admin API user name, user type) of ``member``'s database user."""
    if db_auth == "iam":
        return sqladmin.iam_user_name(member), sqladmin.iam_user_type(member)
    return password_username(member), "BUILT_IN"


def instance_body(req: BootstrapRequest) -> dict[str, Any]:
    """The Cloud SQL instance we create: MySQL 8.0, backups, no public authorized networks."""
    flags = [{"name": IAM_FLAG, "value": "on"}] if req.db_auth == "iam" else []
    return {
        "name": req.instance, "region": req.region, "databaseVersion": "MYSQL_8_0",
        "settings": {
            "tier": req.tier,
            "backupConfiguration": {"enabled": True, "binaryLogEnabled": True},
            # A public IP, but no authorized networks: only the Auth Proxy/connector (IAM +
            # TLS with a client certificate Cloud SQL issued) can reach it.
            "ipConfiguration": {"ipv4Enabled": True, "authorizedNetworks": [],
                                "sslMode": SSL_MODE},
            "databaseFlags": flags,
        },
    }


def _settings_patch(req: BootstrapRequest, settings: dict[str, Any]) -> dict[str, Any]:
    """What an existing instance lacks (the IAM flag, client certificates required), as the
    body of ``instances.patch``; ``{}`` when nothing. Lists and nested objects are sent whole,
    the values they already hold kept."""
    wanted: dict[str, Any] = {}
    flags = list(settings.get("databaseFlags", []))
    if req.db_auth == "iam" and {"name": IAM_FLAG, "value": "on"} not in flags:
        wanted["databaseFlags"] = [f for f in flags if f.get("name") != IAM_FLAG] + [
            {"name": IAM_FLAG, "value": "on"}]
    ip = dict(settings.get("ipConfiguration", {}))
    if ip.get("sslMode") != SSL_MODE:
        ip["sslMode"] = SSL_MODE
        if "requireSsl" in ip:  # the legacy flag must agree with sslMode, or Google refuses
            ip["requireSsl"] = True
        wanted["ipConfiguration"] = ip
    return {"settings": wanted} if wanted else {}


def _check_admin(clients: GcpClients, req: BootstrapRequest) -> None:
    held = projects.test_permissions(clients.projects, req.project, ADMIN_PROJECT_PERMISSIONS,
                                     retry=clients.retry)
    missing = [p for p in ADMIN_PROJECT_PERMISSIONS if p not in held]
    if not missing:
        return
    by_role: dict[str, list[str]] = {}
    for permission in missing:
        by_role.setdefault(admin_role(permission), []).append(permission)
    who = normalise_member(clients.account) if clients.account else "YOUR-ACCOUNT"
    raise PermissionDeniedError(
        f"you lack permissions bootstrap needs on project {req.project}: "
        + "; ".join(f"{', '.join(perms)} (granted by {role})" for role, perms in by_role.items()),
        "ask a project owner to run:\n  " + "\n  ".join(
            grant_command(who, role, project=req.project) for role in by_role)
        + "\n(or to run `collab bootstrap` themselves)")


def _plan_services(clients: GcpClients, req: BootstrapRequest) -> tuple[ServiceState, ...]:
    states = tuple(
        ServiceState(name, enabled, "none" if enabled else "enable")
        for name in (*REQUIRED_SERVICES, *(compute.SERVICES if req.compute == "vertex" else ()))
        for enabled in [services.is_enabled(clients.serviceusage, req.project, name,
                                            retry=clients.retry)])
    if any(not s.enabled for s in states):
        held = projects.test_permissions(clients.projects, req.project,
                                         [ENABLE_SERVICE_PERMISSION], retry=clients.retry)
        if not held:
            disabled = [s.name for s in states if not s.enabled]
            raise PermissionDeniedError(
                f"{', '.join(disabled)} disabled in {req.project}, and you lack "
                f"{ENABLE_SERVICE_PERMISSION} (granted by roles/serviceusage.serviceUsageAdmin)",
                "ask a project owner to run: " + "; ".join(
                    enable_command(s, req.project) for s in disabled))
    return states


def _plan_sql(clients: GcpClients, req: BootstrapRequest, sql_enabled: bool,
              warnings: list[str]) -> tuple[list[ResourceChange], str, bool]:
    """The instance, database and member users; the connection name; and whether
    :data:`GRANT_ADMIN_USER` exists (host ``%``)."""
    body = instance_body(req)
    default_name = f"{req.project}:{req.region}:{req.instance}"
    inst = (sqladmin.get_instance(clients.sqladmin, req.project, req.instance,
                                  retry=clients.retry) if sql_enabled else None)
    users = [(m, *db_user(m, req.db_auth)) for m in req.members]
    if inst is None:
        out = [ResourceChange("sql_instance", req.instance, "create", body),
               ResourceChange("sql_database", req.database, "create",
                              {"charset": "utf8mb4", "collation": "utf8mb4_general_ci"})]
        out += [ResourceChange("sql_user", name, "create", {"type": kind, "member": m})
                for m, name, kind in users]
        return out, default_name, False
    if inst.get("region") != req.region:
        raise CollabError(f"instance {req.instance} exists in region {inst.get('region')}, "
                          f"not {req.region}", f"pass --region {inst.get('region')} to use it, "
                                               "or --instance NAME for a new one")
    if not str(inst.get("databaseVersion", "")).startswith("MYSQL_8"):
        raise CollabError(f"instance {req.instance} runs {inst.get('databaseVersion')}, "
                          "not MySQL 8", "pass --instance NAME to create a new one")
    settings = inst.get("settings", {})
    pending = inst.get("state") == "PENDING_CREATE"
    action: Action = "wait" if pending else "none"
    patch = _settings_patch(req, settings)
    if patch:
        action = "update" if not pending else "wait"
    if not settings.get("backupConfiguration", {}).get("enabled"):
        warnings.append(f"backups are off on {req.instance}: "
                        f"`gcloud sql instances patch {req.instance} --backup-start-time=03:00`")
    if settings.get("ipConfiguration", {}).get("authorizedNetworks"):
        warnings.append(f"{req.instance} has public authorized networks; members connect "
                        "through the Auth Proxy and do not need them")
    out = [ResourceChange("sql_instance", req.instance, action, patch)]
    if pending:
        db_exists, found = False, []
    else:
        db_exists = sqladmin.get_database(clients.sqladmin, req.project, req.instance,
                                          req.database, retry=clients.retry) is not None
        found = sqladmin.list_users(clients.sqladmin, req.project, req.instance,
                                    retry=clients.retry)
    existing = {u["name"] for u in found}
    grant_admin = any(u["name"] == GRANT_ADMIN_USER and u.get("type", "BUILT_IN") == "BUILT_IN"
                      and u.get("host", "%") == "%" for u in found)
    out.append(ResourceChange("sql_database", req.database, "none" if db_exists else "create",
                              {"charset": "utf8mb4", "collation": "utf8mb4_general_ci"}))
    out += [ResourceChange("sql_user", name, "none" if name in existing else "create",
                           {"type": kind, "member": m}) for m, name, kind in users]
    return out, sqladmin.connection_name(inst), grant_admin


def _plan_grants(clients: GcpClients, req: BootstrapRequest, users: list[ResourceChange],
                 grant_admin_exists: bool, warnings: list[str]
                 ) -> tuple[tuple[GrantChange, ...], Action]:
    """The database grants apply runs as :data:`GRANT_ADMIN_USER`, and how that user gets its
    password ("create" or "update"). Raises :class:`PermissionDeniedError` before any change
    when the caller could not carry them out."""
    if req.db_auth != "iam":
        if req.regrant:
            warnings.append("--regrant has no effect with --db-auth password: built-in users "
                            "need no grants")
        return (), "none"
    grants = tuple(
        GrantChange(u.settings["member"], sqladmin.iam_db_username(u.settings["member"]),
                    req.database, "new user" if u.action == "create" else "regrant")
        for u in users if u.action == "create" or req.regrant)
    return grants, _plan_admin_login(clients, req, bool(grants), grant_admin_exists)


def _plan_admin_login(clients: GcpClients, req: BootstrapRequest, needed_: bool,
                      grant_admin_exists: bool) -> Action:
    """How apply gets a password onto :data:`GRANT_ADMIN_USER` to log in ("create" or
    "update"; "none" without a login). Raises :class:`PermissionDeniedError` before any change
    when the caller could not log in."""
    if not needed_:
        return "none"
    grant_user: Action = "update" if grant_admin_exists else "create"
    needed = (GRANT_PERMISSIONS[grant_user], "cloudsql.instances.connect")
    held = projects.test_permissions(clients.projects, req.project, list(needed),
                                     retry=clients.retry)
    missing = [p for p in needed if p not in held]
    if missing:
        who = normalise_member(clients.account) if clients.account else "YOUR-ACCOUNT"
        role = admin_role(missing[0])
        raise PermissionDeniedError(
            f"logging in to the database as {GRANT_ADMIN_USER} (to grant members their "
            f"database and set up the metadata store) needs {', '.join(missing)} (granted by "
            f"{role}), "
            f"which you lack on project {req.project}",
            f"ask a project owner to run:\n  {grant_command(who, role, project=req.project)}")
    return grant_user


def _plan_store(req: BootstrapRequest, connection: str, database: ResourceChange,
                existing: TeamConfig | None) -> StoreChange:
    """The metadata store: initialised with the database, or its id read once and recorded;
    nothing when ``collab.yaml`` already names the store of this instance and database."""
    if database.action == "create":
        return StoreChange(req.database, "create")
    meta = existing.metadata if existing is not None else None
    if (meta is not None and meta.store_id and meta.instance == connection
            and meta.database == req.database):
        return StoreChange(req.database, "none", meta.store_id)
    return StoreChange(req.database, "record")


def _plan_project_bindings(clients: GcpClients, req: BootstrapRequest,
                           warnings: list[str]) -> list[BindingChange]:
    policy = projects.get_iam_policy(clients.projects, req.project, retry=clients.retry)
    missing = projects.missing_bindings(policy, {r: req.members
                                                 for r in member_roles(req.db_auth)})
    out = []
    for member in req.members:
        for role in member_roles(req.db_auth):
            action: Action = "add" if member in missing.get(role, ()) else "none"
            out.append(BindingChange("project", f"projects/{req.project}", role, member, action))
        broad = sorted(projects.members_with(policy, member) & PROJECT_STORAGE_ROLES)
        for role in broad:
            warnings.append(f"{member} holds {role} on the whole project; the bucket-level roles "
                            "are enough: `gcloud projects remove-iam-policy-binding "
                            f"{req.project} --member={member} --role={role}`")
    return out


def _plan_bucket(clients: GcpClients, req: BootstrapRequest, storage_enabled: bool,
                 warnings: list[str]) -> tuple[ResourceChange, list[BindingChange]]:
    name = req.bucket_name
    settings = {"location": req.region.upper(), "uniform_bucket_level_access": True,
                "public_access_prevention": "enforced"}
    info = (buckets.get_bucket_info(clients.storage, name, retry=clients.retry)
            if storage_enabled else None)
    wanted = {role: req.members for role in BUCKET_MEMBER_ROLES}
    if info is None:
        change = ResourceChange("bucket", name, "create", settings)
        missing: dict[str, list[str]] = {k: list(v) for k, v in wanted.items()}
    else:
        secure = info.ubla and info.public_access_prevention == "enforced"
        change = ResourceChange("bucket", name, "none" if secure else "update", settings)
        if info.location != req.region.upper():
            warnings.append(f"gs://{name} is in {info.location}, not {req.region}: artifact "
                            "traffic crosses regions")
        missing = buckets.missing_bucket_bindings(clients.storage, name, wanted,
                                                  retry=clients.retry)
    bindings = [BindingChange("bucket", f"gs://{name}", role, m,
                              "add" if m in missing.get(role, ()) else "none")
                for m in req.members for role in BUCKET_MEMBER_ROLES]
    return change, bindings


def plan(clients: GcpClients, request: BootstrapRequest,
         existing: TeamConfig | None = None) -> Plan:
    """Read the project and return what :func:`apply` would do; makes no change.

    ``existing`` is the repository's ``collab.yaml``: when it already names the store of this
    instance and database (``metadata.store_id``), the store needs no login.

    Raises :class:`PermissionDeniedError` (naming each missing permission and its role) when
    the caller cannot carry the plan out.
    """
    req = request.validated()
    _check_admin(clients, req)
    states = _plan_services(clients, req)
    enabled = {s.name for s in states if s.enabled}
    warnings: list[str] = []
    # With --compute vertex the runner account gets a member's store access (its database
    # user and grant, Cloud SQL and bucket roles); its own resources are planned below.
    stores = compute.with_runner(req)
    compute_resources, compute_bindings = compute.plan_compute(
        clients, req, "artifactregistry.googleapis.com" in enabled)
    sql_changes, connection, grant_admin = _plan_sql(
        clients, stores, "sqladmin.googleapis.com" in enabled, warnings)
    grants, grant_user = _plan_grants(
        clients, stores, [c for c in sql_changes if c.type == "sql_user"], grant_admin, warnings)
    (database,) = (c for c in sql_changes if c.type == "sql_database")
    store = _plan_store(req, connection, database, existing)
    if store.action != "none" and grant_user == "none":
        grant_user = _plan_admin_login(clients, req, True, grant_admin)
    project_bindings = _plan_project_bindings(clients, stores, warnings)
    bucket, bucket_bindings = _plan_bucket(clients, stores, "storage.googleapis.com" in enabled,
                                           warnings)
    return Plan(req, clients.account, connection, states,
                (*sql_changes, bucket, *compute_resources),
                (*project_bindings, *bucket_bindings, *compute_bindings), tuple(warnings),
                grants, grant_user, store)
