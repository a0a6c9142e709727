"""The values bootstrap passes around: the request, the plan (and its JSON shape), progress
events and the result of :func:`~zenml_collab.actions.bootstrap.apply`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from zenml_collab import names
from zenml_collab.errors import CollabError
from zenml_collab.infra.gcp import sqladmin
from zenml_collab.infra.gcp.permissions import DbAuth, normalise_member

Action = Literal["create", "update", "wait", "enable", "add", "grant", "record", "none"]
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
    compute: Literal["none", "vertex"] = "none"  # --compute vertex: steps on Vertex AI
    runner_account: str = "collab-runner"  # the service account Vertex AI jobs run as
    repository: str = "collab"  # Artifact Registry Docker repository for step images

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
        if self.compute == "vertex":
            _check_compute_names(self.runner_account, self.repository)
            if self.db_auth != "iam":
                raise CollabError("--compute vertex needs --db-auth iam",
                                  "Vertex AI jobs log in to the database as the runner "
                                  "account, with IAM database authentication")
        return BootstrapRequest(self.project, self.region, members, self.instance,
                                self.bucket_name, self.tier, self.database, self.db_auth,
                                self.regrant, self.compute, self.runner_account,
                                self.repository)


def _check_compute_names(runner_account: str, repository: str) -> None:
    import re

    if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", runner_account):
        raise CollabError(f"invalid runner account id {runner_account!r}",
                          "6-30 characters: lowercase letters, digits and hyphens, starting "
                          "with a letter (e.g. collab-runner)")
    if not re.fullmatch(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", repository):
        raise CollabError(f"invalid repository name {repository!r}",
                          "lowercase letters, digits and hyphens, starting with a letter "
                          "(e.g. collab)")


@dataclass(frozen=True)
class ServiceState:
    name: str
    enabled: bool
    action: Action


@dataclass(frozen=True)
class ResourceChange:
    """A resource and what apply does to it; ``settings`` is what it is created/patched with."""

    type: Literal["sql_instance", "sql_database", "sql_user", "bucket", "artifact_repository",
                  "service_account"]
    name: str
    action: Action
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BindingChange:
    scope: Literal["project", "bucket", "repository", "service_account"]
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
class StoreChange:
    """The team's metadata store inside ``database``: its schema and its identity.

    ``create``: the database is new in this run, bootstrap initialises the schema (migrations
    to head) and the store's id; ``record``: the database exists and ``collab.yaml`` does not
    name its store yet, so bootstrap logs in, initialises it if empty, and records the id an
    existing store already has; ``none``: ``collab.yaml`` already names the store
    (``store_id``), nothing to do and no login.
    """

    database: str
    action: Action
    store_id: str | None = None


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
    store: StoreChange | None = None

    @property
    def changes(self) -> int:
        items: tuple[ServiceState | ResourceChange | BindingChange | GrantChange | StoreChange,
                     ...] = (*self.services, *self.resources, *self.bindings, *self.grants,
                             *((self.store,) if self.store else ()))
        return sum(1 for item in items if item.action != "none")

    @property
    def disabled_services(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services if not s.enabled)

    def resource(self, type_: str) -> tuple[ResourceChange, ...]:
        return tuple(r for r in self.resources if r.type == type_)

    def rows(self) -> list[tuple[str, str, Action]]:
        """(type, name, action) of every service, resource and the store: the plan's table."""
        rows: list[tuple[str, str, Action]] = [("service", s.name, s.action)
                                               for s in self.services]
        rows += [(r.type, r.name, r.action) for r in self.resources]
        if self.store is not None:
            rows.append(("metadata store", self.store.database + (
                f" ({self.store.store_id[:8]})" if self.store.store_id else ""),
                self.store.action))
        return rows

    def binding_lines(self) -> list[tuple[Action, str]]:
        """(action, text) of each IAM binding; whole lines, never cut (roles are long)."""
        return [(b.action, f"{b.role}  {b.member}  on {b.resource}") for b in self.bindings]

    def grant_lines(self) -> list[tuple[Action, str]]:
        """(action, text) of each database grant."""
        return [(g.action, f"ALL PRIVILEGES on `{g.database}`.* to '{g.login}'@'%'  "
                           f"({g.reason}: {g.member})") for g in self.grants]

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
            "store": asdict(self.store) if self.store else None,
            "compute": self._compute_json(),
            "warnings": list(self.warnings),
            "changes": self.changes,
        }


    def _compute_json(self) -> dict[str, Any] | None:
        req = self.request
        if req.compute != "vertex":
            return None
        return {"backend": "vertex",
                "runner": f"{req.runner_account}@{req.project}.iam.gserviceaccount.com",
                "registry": f"{req.region}-docker.pkg.dev/{req.project}/{req.repository}"}


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
    store_id: str | None = None  # the team's store id (for collab.yaml), when known
    store_created: bool = False  # this run initialised the schema and the store's identity


@dataclass(frozen=True)
class BootstrapOutcome:
    """What :func:`~zenml_collab.actions.bootstrap.bootstrap` planned and did.

    ``passwords`` are those to hand to members (the admin's own went to their
    ``.collab/local.yaml``: ``own``). ``to_json`` is the documented ``--json`` shape;
    ``summary`` the lines a person reads after the plan.
    """

    plan: Plan
    applied: bool
    path: Path | None = None
    passwords: tuple[MemberPassword, ...] = ()
    own: MemberPassword | None = None
    config_changed: bool = True
    store_id: str | None = None
    store_created: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1, "dry_run": not self.applied, "plan": self.plan.to_json(),
            "applied": self.applied,
            "collab_yaml": str(self.path) if self.path else None,
            "store_id": self.store_id,
            "passwords": [{"member": p.member, "username": p.username, "password": p.password}
                          for p in self.passwords],
        }

    @property
    def headline(self) -> tuple[Literal["ok", "done", "dry"], str]:
        """(tone, text) of the first line after the plan."""
        plan_, path = self.plan, self.path
        if not self.applied:
            return "dry", f"dry run: {plan_.changes} change(s) planned, none made"
        if plan_.changes == 0 and not self.config_changed:
            return "ok", f"everything is in place: no change made; {path} is up to date"
        if plan_.changes == 0:
            return "ok", f"everything is in place in Google Cloud: no change made there; " \
                         f"wrote {path}"
        return "done", f"done: {plan_.changes} change(s); wrote {path}"

    def summary(self) -> list[str]:
        """The lines after the headline: grants, the store, passwords, next steps."""
        plan_ = self.plan
        if not self.applied or (plan_.changes == 0 and not self.config_changed):
            # A re-run on a complete setup: one coherent line, no "next" steps to repeat.
            return []
        lines = []
        if plan_.grants:
            lines.append(f"granted {len(plan_.grants)} member(s) the database "
                         f"{plan_.request.database}")
        if self.store_id:
            how = "created" if self.store_created else "found"
            lines.append(f"{how} the metadata store {self.store_id[:8]} in "
                         f"{plan_.request.database}; its id is in collab.yaml")
        if self.own is not None:
            lines.append(f"your database password is in .collab/local.yaml (user "
                         f"{self.own.username})")
        # Shown once: the admin hands it over privately; it is stored nowhere else.
        lines += [f"password for {p.member} (database user {p.username}): {p.password}"
                  for p in self.passwords]
        if self.passwords:
            lines.append("hand each password to its member privately; it is not stored "
                         "anywhere and will not be shown again")
        compute = plan_._compute_json()
        if compute is not None:
            lines.append(f"Vertex AI jobs run as {compute['runner']}; push the step image: "
                         f"`collab image build --push --tag {compute['registry']}/steps:v1`, "
                         "then put the digest it prints in collab.yaml (compute.image)")
        lines.append("next:\n"
                     f"  1. commit it: git add {self.path.name if self.path else 'collab.yaml'} "
                     ".gitignore && git commit -m 'zenml-collab team config' && git push\n"
                     "  2. each teammate pulls, runs `gcloud auth application-default login`, "
                     "then `collab join`")
        return lines


ProgressCallback = Callable[[Progress], None]
