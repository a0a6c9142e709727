"""`collab bootstrap`: create the team's Cloud SQL instance, database, users, bucket and IAM
bindings, idempotently.

Two phases: :func:`plan` only reads (permissions, APIs, what exists) and returns a frozen,
JSON-able :class:`Plan`; :func:`apply` carries it out and reports progress. ``--dry-run`` is
``plan`` alone. Every step of ``apply`` tolerates "already exists", so an interrupted run (Ctrl-C
while the instance is being created) is finished by running the command again, and a run on a
complete setup plans nothing and makes no mutating call.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

from zenml_collab.config import (
    ArtifactsConfig,
    GcpConfig,
    LocalConfig,
    MetadataConfig,
    TeamConfig,
    load_local_config,
    load_team_config,
    write_local_config,
    write_team_config,
)
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
from zenml_collab.infra.gcp.retry import status_of

Action = Literal["create", "update", "wait", "enable", "add", "none"]
IAM_FLAG = "cloudsql_iam_authentication"
PROJECT_STORAGE_ROLES = frozenset({"roles/storage.admin", "roles/storage.objectAdmin",
                                   "roles/storage.objectViewer", "roles/storage.objectCreator"})
_MEMBER = re.compile(r"^(user|serviceAccount):[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class BootstrapRequest:
    """What the admin asked for (CLI flags after defaults were resolved)."""

    project: str
    region: str
    members: tuple[str, ...]
    instance: str = "zenml-metadata"
    bucket: str | None = None
    tier: str = "db-custom-1-3840"
    database: str = "zenml"
    db_auth: DbAuth = "iam"

    @property
    def bucket_name(self) -> str:
        return self.bucket or f"{self.project}-zenml-artifacts"

    def validated(self) -> BootstrapRequest:
        """The request with members normalised; a malformed member is a user error."""
        members = tuple(dict.fromkeys(normalise_member(m) for m in self.members))
        bad = [m for m in members if not _MEMBER.match(m)]
        if bad:
            raise CollabError(f"invalid member(s): {', '.join(bad)}",
                              "use user:alice@example.com or serviceAccount:sa@p.iam."
                              "gserviceaccount.com")
        if not members:
            raise CollabError("no members given", "pass --member user:you@example.com for each "
                                                  "teammate (you too)")
        return BootstrapRequest(self.project, self.region, members, self.instance,
                                self.bucket_name, self.tier, self.database, self.db_auth)


@dataclass(frozen=True)
class ServiceState:
    name: str
    enabled: bool
    action: Action


@dataclass(frozen=True)
class ResourceChange:
    """A resource and what apply does to it; ``settings`` is what it is created/patched with."""

    type: Literal["sql_instance", "sql_database", "sql_user", "bucket"]
    name: str
    action: Action
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BindingChange:
    scope: Literal["project", "bucket"]
    resource: str
    role: str
    member: str
    action: Action


@dataclass(frozen=True)
class Plan:
    """Everything bootstrap found and would change. ``to_json`` is the documented shape."""

    request: BootstrapRequest
    admin: str | None
    connection_name: str
    services: tuple[ServiceState, ...]
    resources: tuple[ResourceChange, ...]
    bindings: tuple[BindingChange, ...]
    warnings: tuple[str, ...] = ()

    @property
    def changes(self) -> int:
        items: tuple[ServiceState | ResourceChange | BindingChange, ...] = (
            *self.services, *self.resources, *self.bindings)
        return sum(1 for item in items if item.action != "none")

    @property
    def disabled_services(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services if not s.enabled)

    def resource(self, type_: str) -> tuple[ResourceChange, ...]:
        return tuple(r for r in self.resources if r.type == type_)

    def to_json(self) -> dict[str, Any]:
        req = self.request
        return {
            "project": req.project, "region": req.region, "instance": req.instance,
            "connection_name": self.connection_name, "database": req.database,
            "bucket": req.bucket_name, "tier": req.tier, "db_auth": req.db_auth,
            "members": list(req.members), "admin": self.admin,
            "services": [asdict(s) for s in self.services],
            "resources": [asdict(r) for r in self.resources],
            "bindings": [asdict(b) for b in self.bindings],
            "warnings": list(self.warnings),
            "changes": self.changes,
        }


@dataclass(frozen=True)
class Progress:
    """One progress event of :func:`apply` (``operation`` set while polling Google)."""

    step: str
    message: str
    operation: sqladmin.OperationProgress | None = None


@dataclass(frozen=True)
class MemberPassword:
    """A generated database password; shown once, never written to collab.yaml."""

    member: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ApplyResult:
    changes: int
    passwords: tuple[MemberPassword, ...] = ()


ProgressCallback = Callable[[Progress], None]


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
            # TLS) can reach it.
            "ipConfiguration": {"ipv4Enabled": True, "authorizedNetworks": []},
            "databaseFlags": flags,
        },
    }


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
        for name in REQUIRED_SERVICES
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
              warnings: list[str]) -> tuple[list[ResourceChange], str]:
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
        return out, default_name
    if inst.get("region") != req.region:
        raise CollabError(f"instance {req.instance} exists in region {inst.get('region')}, "
                          f"not {req.region}", f"pass --region {inst.get('region')} to use it, "
                                               "or --instance NAME for a new one")
    if not str(inst.get("databaseVersion", "")).startswith("MYSQL_8"):
        raise CollabError(f"instance {req.instance} runs {inst.get('databaseVersion')}, "
                          "not MySQL 8", "pass --instance NAME to create a new one")
    settings = inst.get("settings", {})
    flags = list(settings.get("databaseFlags", []))
    pending = inst.get("state") == "PENDING_CREATE"
    action: Action = "wait" if pending else "none"
    patch: dict[str, Any] = {}
    if req.db_auth == "iam" and {"name": IAM_FLAG, "value": "on"} not in flags:
        # databaseFlags is replaced whole on patch: keep the others.
        flags = [f for f in flags if f.get("name") != IAM_FLAG] + [{"name": IAM_FLAG,
                                                                    "value": "on"}]
        patch = {"settings": {"databaseFlags": flags}}
        action = "update" if not pending else "wait"
    if not settings.get("backupConfiguration", {}).get("enabled"):
        warnings.append(f"backups are off on {req.instance}: "
                        f"`gcloud sql instances patch {req.instance} --backup-start-time=03:00`")
    if settings.get("ipConfiguration", {}).get("authorizedNetworks"):
        warnings.append(f"{req.instance} has public authorized networks; members connect "
                        "through the Auth Proxy and do not need them")
    out = [ResourceChange("sql_instance", req.instance, action, patch)]
    if pending:
        db_exists, existing = False, set()
    else:
        db_exists = sqladmin.get_database(clients.sqladmin, req.project, req.instance,
                                          req.database, retry=clients.retry) is not None
        existing = {u["name"] for u in sqladmin.list_users(clients.sqladmin, req.project,
                                                           req.instance, retry=clients.retry)}
    out.append(ResourceChange("sql_database", req.database, "none" if db_exists else "create",
                              {"charset": "utf8mb4", "collation": "utf8mb4_general_ci"}))
    out += [ResourceChange("sql_user", name, "none" if name in existing else "create",
                           {"type": kind, "member": m}) for m, name, kind in users]
    return out, sqladmin.connection_name(inst)


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


def plan(clients: GcpClients, request: BootstrapRequest) -> Plan:
    """Read the project and return what :func:`apply` would do; makes no change.

    Raises :class:`PermissionDeniedError` (naming each missing permission and its role) when
    the caller cannot carry the plan out.
    """
    req = request.validated()
    _check_admin(clients, req)
    states = _plan_services(clients, req)
    enabled = {s.name for s in states if s.enabled}
    warnings: list[str] = []
    sql_changes, connection = _plan_sql(clients, req, "sqladmin.googleapis.com" in enabled,
                                        warnings)
    project_bindings = _plan_project_bindings(clients, req, warnings)
    bucket, bucket_bindings = _plan_bucket(clients, req, "storage.googleapis.com" in enabled,
                                           warnings)
    return Plan(req, clients.account, connection, states, (*sql_changes, bucket),
                (*project_bindings, *bucket_bindings), tuple(warnings))


# apply ---------------------------------------------------------------------------------------

def _wait(clients: GcpClients, op: str, step: str, on_progress: ProgressCallback) -> None:
    def report(p: sqladmin.OperationProgress) -> None:
        on_progress(Progress(step, f"{p.operation_type.lower()} {p.status.lower()} "
                                   f"({p.elapsed:.0f}s)", p))

    sqladmin.wait_operation(clients.sqladmin, clients.project, op, on_progress=report,
                            poll=clients.poll_interval, retry=clients.retry)


def _already_exists(exc: CollabError) -> bool:
    cause = exc.__cause__
    return cause is not None and status_of(cause) == 409 and "already" in str(exc).lower()


def _apply_instance(clients: GcpClients, plan_: Plan, on_progress: ProgressCallback) -> None:
    req = plan_.request
    (change,) = plan_.resource("sql_instance")
    step = f"instance {req.instance}"
    if change.action == "create":
        on_progress(Progress(step, "creating (this takes several minutes; Ctrl-C is safe, "
                                   "re-run to resume)"))
        try:
            op = sqladmin.insert_instance(clients.sqladmin, req.project, change.settings,
                                          retry=clients.retry)
            _wait(clients, op, step, on_progress)
        except CollabError as exc:
            if not _already_exists(exc):
                raise
            change = ResourceChange("sql_instance", req.instance, "wait")
    if change.action == "update":
        on_progress(Progress(step, f"turning on {IAM_FLAG}"))
        op = sqladmin.patch_instance(clients.sqladmin, req.project, req.instance,
                                     change.settings, retry=clients.retry)
        _wait(clients, op, step, on_progress)
    if change.action in ("wait", "create", "update"):
        for op_ in sqladmin.pending_operations(clients.sqladmin, req.project, req.instance,
                                               retry=clients.retry):
            on_progress(Progress(step, f"waiting for {op_.get('operationType', '').lower()} "
                                       "started earlier"))
            _wait(clients, str(op_["name"]), step, on_progress)


def _apply_sql_contents(clients: GcpClients, plan_: Plan,
                        on_progress: ProgressCallback) -> list[MemberPassword]:
    req = plan_.request
    for db in plan_.resource("sql_database"):
        if db.action == "create":
            on_progress(Progress(f"database {db.name}", "creating (utf8mb4)"))
            _tolerate_exists(functools.partial(_create_database, clients, req, db.name,
                                               on_progress))
    passwords: list[MemberPassword] = []
    for user in plan_.resource("sql_user"):
        if user.action != "create":
            continue
        kind, member = user.settings["type"], user.settings["member"]
        password = secrets.token_urlsafe(24) if kind == "BUILT_IN" else None
        on_progress(Progress(f"database user {user.name}", f"creating ({kind})"))
        created = _tolerate_exists(functools.partial(
            _create_user, clients, req, user.name, kind, password, on_progress))
        if created and password is not None:
            passwords.append(MemberPassword(member, user.name, password))
    return passwords


def _create_database(clients: GcpClients, req: BootstrapRequest, name: str,
                     on_progress: ProgressCallback) -> None:
    op = sqladmin.insert_database(clients.sqladmin, req.project, req.instance, name,
                                  retry=clients.retry)
    _wait(clients, op, f"database {name}", on_progress)


def _create_user(clients: GcpClients, req: BootstrapRequest, name: str, kind: str,
                 password: str | None, on_progress: ProgressCallback) -> None:
    op = sqladmin.insert_user(clients.sqladmin, req.project, req.instance, name, kind,
                              password=password, retry=clients.retry)
    _wait(clients, op, f"database user {name}", on_progress)


def _tolerate_exists(fn: Callable[[], None]) -> bool:
    """Run a create step; an "already exists" (a resumed run) counts as done. True if created."""
    try:
        fn()
    except CollabError as exc:
        if _already_exists(exc):
            return False
        raise
    return True


def _wanted(bindings: tuple[BindingChange, ...], scope: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for b in bindings:
        if b.scope == scope and b.action == "add":
            out.setdefault(b.role, []).append(b.member)
    return out


def apply(clients: GcpClients, plan_: Plan, on_progress: ProgressCallback | None = None, *,
          enable_services: bool = False) -> ApplyResult:
    """Carry out ``plan_``. Services are enabled only with ``enable_services``; otherwise a
    disabled API stops the run before any change, with the command that enables it."""
    report = on_progress or (lambda _: None)
    req = plan_.request
    disabled = plan_.disabled_services
    if disabled and not enable_services:
        raise CollabError(
            f"{', '.join(disabled)} {'is' if len(disabled) == 1 else 'are'} disabled in "
            f"project {req.project}",
            "enable with: " + " && ".join(enable_command(s, req.project) for s in disabled)
            + "   (or re-run with --yes to let bootstrap enable it)")
    for service in disabled:
        report(Progress(f"service {service}", "enabling"))
        services.enable(clients.serviceusage, req.project, service, retry=clients.retry,
                        poll=clients.poll_interval)
    _apply_instance(clients, plan_, report)
    passwords = _apply_sql_contents(clients, plan_, report)
    project_wanted = _wanted(plan_.bindings, "project")
    if project_wanted:
        report(Progress("project IAM", "granting " + ", ".join(sorted(project_wanted))))
        projects.add_bindings(clients.projects, req.project, project_wanted, retry=clients.retry)
    (bucket,) = plan_.resource("bucket")
    if bucket.action == "create":
        report(Progress(f"bucket gs://{bucket.name}", f"creating in {req.region}"))
        buckets.create_bucket(clients.storage, bucket.name, location=req.region,
                              project=req.project, retry=clients.retry)
    elif bucket.action == "update":
        report(Progress(f"bucket gs://{bucket.name}",
                        "enforcing uniform access and public access prevention"))
        buckets.secure_bucket(clients.storage, bucket.name, retry=clients.retry)
    bucket_wanted = _wanted(plan_.bindings, "bucket")
    if bucket_wanted:
        report(Progress(f"bucket gs://{bucket.name}", "granting " + ", ".join(
            sorted(bucket_wanted))))
        buckets.add_bucket_bindings(clients.storage, bucket.name, bucket_wanted,
                                    retry=clients.retry)
    return ApplyResult(plan_.changes, tuple(passwords))


# files ---------------------------------------------------------------------------------------

def team_config(plan_: Plan, existing: TeamConfig | None = None) -> TeamConfig:
    """``collab.yaml`` for ``plan_``, keeping unrelated settings (e.g. proxy) of ``existing``."""
    req = plan_.request
    gcp = GcpConfig(project=req.project, region=req.region, instance=plan_.connection_name,
                    database=req.database, db_auth=req.db_auth, bucket=req.bucket_name,
                    members=req.members)
    metadata = MetadataConfig(kind="cloudsql", instance=plan_.connection_name,
                              database=req.database, auth=req.db_auth)
    artifacts = ArtifactsConfig(uri=f"gs://{req.bucket_name}/artifacts")
    base = existing or TeamConfig()
    return base.model_copy(update={"gcp": gcp, "metadata": metadata, "artifacts": artifacts})


def write_config(root: Path, plan_: Plan, passwords: tuple[MemberPassword, ...] = ()
                 ) -> tuple[Path, MemberPassword | None]:
    """Write ``collab.yaml``; the admin's own generated password (if any) goes to their
    ``.collab/local.yaml`` (0600). Returns the team file and the password kept locally."""
    path = write_team_config(root, team_config(plan_, load_team_config(root)))
    admin = normalise_member(plan_.admin) if plan_.admin else None
    own = next((p for p in passwords if p.member == admin), None)
    if own is not None:
        local = load_local_config(root)
        metadata = MetadataConfig(kind="cloudsql", instance=plan_.connection_name,
                                  database=plan_.request.database, auth="password",
                                  username=own.username,
                                  password=SecretStr(own.password))
        write_local_config(root, LocalConfig.model_validate(
            {**local.model_dump(exclude_unset=True), "metadata": metadata}))
    return path, own


def config_root(directory: Path) -> Path:
    """Where collab.yaml goes: the git root above ``directory``, else ``directory`` itself."""
    from zenml_collab.core.git import find_git_root

    path = directory.resolve()
    return find_git_root(path) or path
