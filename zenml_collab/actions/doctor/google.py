"""Checks of the Google side: credentials, token, clock, project, APIs, IAM permissions."""

from __future__ import annotations

import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from zenml_collab.actions.doctor.context import DoctorContext, TokenCheck
from zenml_collab.actions.doctor.model import (
    Check,
    CheckResult,
    NotApplicable,
    failed,
    passed,
    warned,
)
from zenml_collab.errors import CollabError, ConnectivityError

if TYPE_CHECKING:
    from zenml_collab.infra.gcp.credentials import FoundCredentials

SKEW_WARN_SECONDS = 60.0  # Google refuses signed JWTs whose clock is minutes off
EXPIRY_WARN_SECONDS = 300.0


def refresh_with_date(found: FoundCredentials) -> TokenCheck:
    """Refresh ``found`` like :func:`~zenml_collab.infra.gcp.credentials.refresh`, and keep the
    token server's ``Date`` header to measure our clock's skew against it."""
    import requests
    from google.auth.transport.requests import Request

    from zenml_collab.infra.gcp.credentials import refresh

    seen: dict[str, Any] = {}

    def remember(response: Any, *args: Any, **kwargs: Any) -> None:
        seen["date"] = response.headers.get("Date")
        seen["local"] = datetime.now(UTC)

    session = requests.Session()
    session.hooks["response"].append(remember)
    try:
        expiry = refresh(found, Request(session)).expiry
    finally:
        session.close()
    server = None
    if seen.get("date"):
        try:
            server = parsedate_to_datetime(seen["date"])
        except (TypeError, ValueError):
            server = None
    return TokenCheck(found.account, expiry, server, seen.get("local") or datetime.now(UTC))


# -- credentials ----------------------------------------------------------------------------
def _local_only(ctx: DoctorContext) -> None:
    """Skip credential checks in a setup without Google Cloud (run them if unsure)."""
    try:
        gcp = ctx.gcp()
    except CollabError:
        return
    if gcp is None and not ctx.member_override:
        raise NotApplicable("collab.yaml has no gcp section: no Google credentials needed")


def check_found(ctx: DoctorContext) -> CheckResult:
    _local_only(ctx)
    found = ctx.credentials()
    who = found.account or "an account Google will name on first use"
    if found.file is not None and found.file.exists():
        mode = stat.S_IMODE(found.file.stat().st_mode)
        if mode & 0o077:
            return warned(f"{who} from {found.source}, but the file is readable by others "
                          f"(mode {mode:04o})", f"`chmod 600 {found.file}`")
    return passed(f"{who} from {found.source}")


def check_token(ctx: DoctorContext) -> CheckResult:
    _local_only(ctx)
    token = ctx.token()
    account = token.account or "(account not named by the credentials)"
    if token.expiry is None:
        return passed(f"token refreshed for {account}")
    left = (token.expiry - datetime.now(UTC)).total_seconds()
    if left < EXPIRY_WARN_SECONDS:
        return warned(f"token for {account} expires in {max(left, 0):.0f} s right after a "
                      "refresh", "check your system clock, then "
                      "`gcloud auth application-default login`")
    return passed(f"token refreshed for {account}, expires in {left / 60:.0f} min")


def check_clock(ctx: DoctorContext) -> CheckResult:
    _local_only(ctx)
    token = ctx.token()
    if token.server_date is None:
        return CheckResult("", "skip", "the token server sent no Date header to compare with")
    skew = (token.local_date - token.server_date).total_seconds()
    if abs(skew) > SKEW_WARN_SECONDS:
        side = "ahead of" if skew > 0 else "behind"
        return warned(f"your clock is {abs(skew):.0f} s {side} Google's token server",
                      "turn on time synchronisation (`sudo timedatectl set-ntp true` on "
                      "Linux, 'Set time automatically' on macOS/Windows)")
    return passed(f"clock within {abs(skew):.0f} s of the token server (Date has 1 s steps)")


# -- project and APIs -----------------------------------------------------------------------
def project_permissions(ctx: DoctorContext) -> set[str]:
    """The member permissions the caller holds on the project (testIamPermissions, shared)."""
    from zenml_collab.infra.gcp import projects
    from zenml_collab.infra.gcp.permissions import MEMBER_PROJECT_PERMISSIONS

    def build() -> set[str]:
        gcp = ctx.require_gcp()
        clients = ctx.clients()
        return projects.test_permissions(clients.projects, gcp.project,
                                         MEMBER_PROJECT_PERMISSIONS[gcp.db_auth],
                                         retry=clients.retry)

    return ctx.memo("project_permissions", build)


def check_project(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.infra.gcp.permissions import grant_command, normalise_member

    gcp = ctx.require_gcp()
    try:
        held = project_permissions(ctx)
    except CollabError as exc:
        if exc.exit_code != 3:
            raise
        member = normalise_member(ctx.token().account or "user:YOU@example.com")
        return failed(f"project {gcp.project} does not exist or you cannot see it: "
                      f"{exc.message}",
                      f"check gcp.project in collab.yaml; if it is right, ask an admin: "
                      f"`{grant_command(member, 'roles/cloudsql.client', project=gcp.project)}`",
                      "permission")
    return passed(f"project {gcp.project} answers (you hold {len(held)} of the member "
                  "permissions there; see iam.project)")


def _service_check(service: str, probe_key: str) -> Any:
    def check(ctx: DoctorContext) -> CheckResult:
        from zenml_collab.infra.gcp import services
        from zenml_collab.infra.gcp.errors import ServiceDisabledError
        from zenml_collab.infra.gcp.permissions import enable_command

        gcp = ctx.require_gcp()
        fix = (f"an admin (or anyone with roles/serviceusage.serviceUsageAdmin) runs "
               f"`{enable_command(service, gcp.project)}`")
        clients = ctx.clients()
        try:
            with ctx.serial("serviceusage"):
                enabled = services.is_enabled(clients.serviceusage, gcp.project, service,
                                              retry=clients.retry)
            how = "Service Usage"
        except ConnectivityError:
            raise
        except CollabError:
            # Members usually may not read Service Usage: ask the API itself instead; a
            # disabled API answers every call with SERVICE_DISABLED.
            try:
                probe(ctx, probe_key)
                enabled, how = True, "it answered a request"
            except ServiceDisabledError:
                enabled, how = False, "it answered SERVICE_DISABLED"
            except CollabError as exc:
                if exc.exit_code == 4:
                    raise
                enabled, how = True, "it answered a request"
        if not enabled:
            return failed(f"{service} is disabled in project {gcp.project} ({how})", fix)
        return passed(f"{service} is enabled in project {gcp.project} ({how})")

    return check


def probe(ctx: DoctorContext, key: str) -> None:
    """One cheap call of the API behind ``key`` (its answer is shared with later checks)."""
    if key == "sqladmin":
        ctx.instance()
    else:
        from zenml_collab.actions.doctor.bucket import bucket_info

        bucket_info(ctx)


# -- IAM ------------------------------------------------------------------------------------
def missing_fix(member: str, missing: Iterable[str], **where: str) -> str:
    """The least role for each missing permission and the admin command granting it."""
    from zenml_collab.infra.gcp.permissions import grant_command, least_role, member_bucket_role

    # On a bucket, the member roles bootstrap grants: one role per capability (objectAdmin
    # covers reading too, so never objectViewer as well).
    role_of = member_bucket_role if "bucket" in where else least_role
    by_role: dict[str, list[str]] = {}
    for permission in sorted(missing):
        by_role.setdefault(role_of(permission), []).append(permission)
    parts = [f"ask an admin for {role} (grants {', '.join(perms)}): "
             f"`{grant_command(member, role, **where)}`" for role, perms in by_role.items()]
    return "; ".join(parts)


def _held_by_roles(roles: Iterable[str], needed: Iterable[str]) -> set[str]:
    from zenml_collab.infra.gcp.permissions import role_grants

    roles = list(roles)
    return {p for p in needed if any(role_grants(r, p) for r in roles)}


def check_project_iam(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.infra.gcp import projects
    from zenml_collab.infra.gcp.permissions import MEMBER_PROJECT_PERMISSIONS

    gcp = ctx.require_gcp()
    needed = set(MEMBER_PROJECT_PERMISSIONS[gcp.db_auth])
    member = ctx.member()
    if ctx.member_override:
        clients = ctx.clients()
        policy = projects.get_iam_policy(clients.projects, gcp.project, retry=clients.retry)
        held = _held_by_roles(projects.members_with(policy, member), needed)
        source = f"{member}'s bindings in the project policy"
    else:
        held = project_permissions(ctx) & needed
        source = "testIamPermissions"
    missing = needed - held
    if missing:
        return failed(f"{member} lacks {', '.join(sorted(missing))} on project {gcp.project} "
                      f"({source})", missing_fix(member, missing, project=gcp.project),
                      "permission")
    return passed(f"{member} holds all {len(needed)} project permissions ({source})")


def check_bucket_iam(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.actions.doctor.bucket import bucket_info, bucket_location
    from zenml_collab.infra.gcp import buckets, projects
    from zenml_collab.infra.gcp.permissions import MEMBER_BUCKET_PERMISSIONS

    bucket, _ = bucket_location(ctx)
    try:
        exists = bucket_info(ctx) is not None
    except CollabError as exc:
        # Unreadable metadata (no storage.buckets.get) still lets us ask the bucket which
        # permissions we hold: testIamPermissions needs none. Name every missing role now.
        if exc.exit_code != 3:
            raise NotApplicable(f"gs://{bucket} could not be read (see bucket.exists)") from None
        exists = True
    if not exists:
        raise NotApplicable(f"gs://{bucket} does not exist (see bucket.exists)")
    needed = set(MEMBER_BUCKET_PERMISSIONS)
    member = ctx.member()
    clients = ctx.clients()
    if ctx.member_override:
        gcp = ctx.require_gcp()
        policy = buckets.get_bucket_policy(clients.storage, bucket, retry=clients.retry)
        roles = {b["role"] for b in policy.bindings if member in b.get("members", ())}
        project_policy = projects.get_iam_policy(clients.projects, gcp.project,
                                                 retry=clients.retry)
        roles |= projects.members_with(project_policy, member)
        held = _held_by_roles(roles, needed)
        source = f"{member}'s bindings on the bucket and project"
    else:
        held = buckets.test_bucket_permissions(clients.storage, bucket, needed,
                                               retry=clients.retry) & needed
        source = "testIamPermissions"
    missing = needed - held
    if missing:
        return failed(f"{member} lacks {', '.join(sorted(missing))} on gs://{bucket} "
                      f"({source})", missing_fix(member, missing, bucket=bucket), "permission")
    return passed(f"{member} holds all {len(needed)} bucket permissions ({source})")


def _not_google(ctx: DoctorContext) -> None:
    if ctx.gcp() is None:
        raise NotApplicable("collab.yaml has no gcp section (a setup without Google Cloud)")


def _needs_gcp(fn: Any) -> Any:
    def run(ctx: DoctorContext) -> CheckResult:
        _not_google(ctx)
        result: CheckResult = fn(ctx)
        return result

    return run


CHECKS = (
    Check("credentials.found", "Google credentials found", check_found, timeout=5,
          category="permission"),
    Check("credentials.token", "token refresh", check_token, ("credentials.found",),
          timeout=8, category="permission"),
    Check("credentials.clock", "clock skew against the token server", check_clock,
          ("credentials.token",), timeout=2),
    Check("gcp.project", "project exists and is accessible", _needs_gcp(check_project),
          ("repo.config", "credentials.token"), timeout=8, category="permission"),
    Check("gcp.api.sqladmin", "Cloud SQL Admin API enabled",
          _needs_gcp(_service_check("sqladmin.googleapis.com", "sqladmin")), ("gcp.project",),
          timeout=8),
    Check("gcp.api.storage", "Cloud Storage API enabled",
          _needs_gcp(_service_check("storage.googleapis.com", "storage")), ("gcp.project",),
          timeout=8),
    Check("iam.project", "IAM permissions on the project", _needs_gcp(check_project_iam),
          ("gcp.project",), timeout=8, category="permission"),
    Check("iam.bucket", "IAM permissions on the bucket", _needs_gcp(check_bucket_iam),
          ("gcp.api.storage",), timeout=8, category="permission"),
)
