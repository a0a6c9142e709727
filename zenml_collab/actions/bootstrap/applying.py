"""The mutating phase of bootstrap: :func:`apply` carries out a :class:`~.model.Plan`,
reporting :class:`~.model.Progress`; every step tolerates "already exists" so a re-run resumes."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable

from zenml_collab.actions.bootstrap import compute
from zenml_collab.actions.bootstrap.grants import apply_grants
from zenml_collab.actions.bootstrap.model import (
    IAM_FLAG,
    SSL_MODE,
    ApplyResult,
    BindingChange,
    BootstrapRequest,
    MemberPassword,
    Plan,
    Progress,
    ProgressCallback,
    ResourceChange,
)
from zenml_collab.errors import CollabError
from zenml_collab.infra.gcp import buckets, projects, services, sqladmin
from zenml_collab.infra.gcp.clients import GcpClients
from zenml_collab.infra.gcp.permissions import enable_command
from zenml_collab.infra.gcp.retry import status_of


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
        patched = change.settings.get("settings", {})
        what = [f"turning on {IAM_FLAG}" if "databaseFlags" in patched else "",
                "requiring client certificates (sslMode "
                f"{SSL_MODE})" if "ipConfiguration" in patched else ""]
        on_progress(Progress(step, "; ".join(w for w in what if w)))
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
    if req.compute == "vertex":  # the runner account exists before any binding names it
        compute.apply_resources(clients, plan_, report)
    # IAM may take a minute or two to accept the runner account as a member: each policy that
    # names it waits (once announced), and a re-run resumes if even that was not enough.
    new_accounts = compute.propagation(req, report)
    _apply_instance(clients, plan_, report)
    passwords = _apply_sql_contents(clients, plan_, report)
    project_wanted = _wanted(plan_.bindings, "project")
    if project_wanted:
        report(Progress("project IAM", "granting " + ", ".join(sorted(project_wanted))))
        projects.add_bindings(clients.projects, req.project, project_wanted, retry=clients.retry,
                              propagation=new_accounts)
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
                                    retry=clients.retry, propagation=new_accounts)
    if req.compute == "vertex":
        compute.apply_bindings(clients, plan_, report, new_accounts)
    # Last: the one step that talks to MySQL itself (port 3307 may be blocked where the admin
    # sits), so when it fails everything else is in place and `--regrant` is all that is left.
    # In the same login: the metadata store's schema and identity (for collab.yaml).
    store_id, created = apply_grants(clients, plan_, report)
    return ApplyResult(plan_.changes, tuple(passwords), tuple(g.login for g in plan_.grants),
                       store_id, created)
