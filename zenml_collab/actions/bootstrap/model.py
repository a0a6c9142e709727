"""The values bootstrap passes around: the request, the plan (and its JSON shape), progress
events and the result of :func:`~zenml_collab.actions.bootstrap.apply`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from zenml_collab import names
from zenml_collab.errors import CollabError
from zenml_collab.infra.gcp import sqladmin
from zenml_collab.infra.gcp.permissions import DbAuth, normalise_member

Action = Literal["create", "update", "wait", "enable", "add", "grant", "none"]
IAM_FLAG = "cloudsql_iam_authentication"
# Cloud SQL accepts only connections with a client certificate it issued: what the Auth Proxy
# and the Python connector present (an ephemeral certificate per member). No password-only or
# unencrypted path to the database exists.
SSL_MODE = "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"
# The built-in user bootstrap logs in as to GRANT members their database: Cloud SQL gives a new
# IAM database user no privileges, and only a built-in user (role cloudsqlsuperuser) can grant.
GRANT_ADMIN_USER = "collab-admin"
# Each member gets their own database user: a group has none, so bootstrap takes people and
# service accounts.
MEMBER_KINDS = ("user", "serviceAccount")


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
    regrant: bool = False

    @property
    def bucket_name(self) -> str:
        return self.bucket or f"{self.project}-zenml-artifacts"

    def validated(self) -> BootstrapRequest:
        """The request with members normalised and every name checked against Google's
        format (:mod:`zenml_collab.names`); a malformed one is a user error, raised before any
        request is made."""
        names.check_project(self.project)
        names.check_region(self.region)
        names.check_instance(self.instance, project=self.project)
        names.check_database(self.database)
        names.check_tier(self.tier)
        names.check_bucket(self.bucket_name)
        members = tuple(dict.fromkeys(normalise_member(m) for m in self.members))
        for member in members:
            names.check_member(member, kinds=MEMBER_KINDS)
        if not members:
            raise CollabError("no members given", "pass --member user:you@example.com for each "
                                                  "teammate (you too)")
        return BootstrapRequest(self.project, self.region, members, self.instance,
                                self.bucket_name, self.tier, self.database, self.db_auth,
                                self.regrant)


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
class GrantChange:
    """``GRANT ALL PRIVILEGES ON `database`.* TO 'login'@'%'`` for a member's IAM user.

    ``reason`` is ``"new user"`` (created in this run) or ``"regrant"`` (``--regrant``).
    """

    member: str
    login: str
    database: str
    reason: Literal["new user", "regrant"]
    action: Action = "grant"


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
    grants: tuple[GrantChange, ...] = ()
    # How apply gets a password onto GRANT_ADMIN_USER when there are grants: "create" (absent)
    # or "update" (exists: set a fresh one); "none" when there is nothing to grant.
    grant_user: Action = "none"

    @property
    def changes(self) -> int:
        items: tuple[ServiceState | ResourceChange | BindingChange | GrantChange, ...] = (
            *self.services, *self.resources, *self.bindings, *self.grants)
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
            "grants": [asdict(g) for g in self.grants],
            "grant_user": {"name": GRANT_ADMIN_USER, "action": self.grant_user},
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
    granted: tuple[str, ...] = ()  # MySQL logins granted the database in this run


ProgressCallback = Callable[[Progress], None]
