"""`collab bootstrap --compute vertex`: what running steps on Vertex AI needs, idempotently.

Planned with everything else (the dry run lists it) and applied by the same two phases:

* the Vertex AI and Artifact Registry APIs;
* a Docker repository in the region (``collab``) for the step images;
* a runner service account (``collab-runner``) that jobs run as, with least privilege: it is
  given exactly what a member gets for the stores (project ``roles/cloudsql.client`` and
  ``roles/cloudsql.instanceUser``, the bucket's object roles, its IAM database user granted the
  team database; see :func:`with_runner`) and no project-wide storage role;
* members: ``roles/aiplatform.user`` on the project, ``roles/artifactregistry.writer`` on that
  repository only, ``roles/iam.serviceAccountUser`` on the runner account only.

A re-run reads (GET, getIamPolicy) and changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

from zenml_collab.actions.bootstrap.model import (
    Action,
    BindingChange,
    BootstrapRequest,
    Plan,
    Progress,
    ProgressCallback,
    ResourceChange,
    ServiceState,
)
from zenml_collab.errors import PermissionDeniedError
from zenml_collab.google.propagation import WAITING, Propagation, seconds
from zenml_collab.infra.gcp import compute, projects, services
from zenml_collab.infra.gcp.clients import GcpClients
from zenml_collab.infra.gcp.permissions import grant_command, normalise_member

SERVICES = ("aiplatform.googleapis.com", "artifactregistry.googleapis.com")
MEMBER_PROJECT_ROLE = "roles/aiplatform.user"
REPOSITORY_ROLE = "roles/artifactregistry.writer"
ACT_AS_ROLE = "roles/iam.serviceAccountUser"
# What bootstrap needs on the project for the compute part, and the role granting each.
ADMIN_PERMISSIONS = {
    "iam.serviceAccounts.get": "roles/iam.serviceAccountAdmin",
    "iam.serviceAccounts.create": "roles/iam.serviceAccountAdmin",
    "iam.serviceAccounts.setIamPolicy": "roles/iam.serviceAccountAdmin",
    "artifactregistry.repositories.get": "roles/artifactregistry.admin",
    "artifactregistry.repositories.create": "roles/artifactregistry.admin",
    "artifactregistry.repositories.setIamPolicy": "roles/artifactregistry.admin",
}


def runner_email(req: BootstrapRequest) -> str:
    return compute.service_account_email(req.project, req.runner_account)


def runner_member(req: BootstrapRequest) -> str:
    return f"serviceAccount:{runner_email(req)}"


def repository_name(req: BootstrapRequest) -> str:
    return compute.repository_name(req.project, req.region, req.repository)


def registry_path(req: BootstrapRequest) -> str:
    """Where step images go: ``REGION-docker.pkg.dev/PROJECT/REPOSITORY``."""
    return f"{req.region}-docker.pkg.dev/{req.project}/{req.repository}"


def propagation(req: BootstrapRequest, report: ProgressCallback) -> Propagation | None:
    """The runner account as a new service account IAM may not know yet (``--compute vertex``):
    every binding that names it waits until IAM does, telling the admin once why."""
    if req.compute != "vertex":
        return None

    def waiting(email: str, window: float) -> None:
        report(Progress(f"service account {email}", f"{WAITING}; up to {seconds(window)} s"))

    return Propagation([runner_email(req)], on_wait=waiting)


def with_runner(req: BootstrapRequest) -> BootstrapRequest:
    """``req`` with the runner account among the members, for what it needs exactly like a
    member (Cloud SQL roles, its IAM database user and grant, the bucket's roles); the
    compute-only roles are planned for the real members alone (:func:`plan_compute`)."""
    if req.compute != "vertex":
        return req
    return dataclasses.replace(req, members=(*req.members, runner_member(req)))


@contextlib.contextmanager
def _clients(clients: GcpClients) -> Iterator[tuple[Any, Any]]:
    """Artifact Registry and IAM clients for one phase (closed after it)."""
    registry = compute.artifactregistry_client(clients.credentials)
    iam = compute.iam_client(clients.credentials)
    try:
        yield registry, iam
    finally:
        registry.close()
        iam.close()


def _check_admin(clients: GcpClients, req: BootstrapRequest) -> None:
    held = projects.test_permissions(clients.projects, req.project, ADMIN_PERMISSIONS,
                                     retry=clients.retry)
    missing = [p for p in ADMIN_PERMISSIONS if p not in held]
    if not missing:
        return
    roles = sorted({ADMIN_PERMISSIONS[p] for p in missing})
    who = normalise_member(clients.account) if clients.account else "YOUR-ACCOUNT"
    raise PermissionDeniedError(
        f"--compute vertex needs {', '.join(missing)} on project {req.project} (granted by "
        f"{' and '.join(roles)})",
        "ask a project owner to run:\n  " + "\n  ".join(
            grant_command(who, role, project=req.project) for role in roles))


def plan_services(clients: GcpClients, req: BootstrapRequest) -> tuple[ServiceState, ...]:
    if req.compute != "vertex":
        return ()
    return tuple(ServiceState(name, enabled, "none" if enabled else "enable")
                 for name in SERVICES
                 for enabled in [services.is_enabled(clients.serviceusage, req.project, name,
                                                      retry=clients.retry)])


def plan_compute(clients: GcpClients, req: BootstrapRequest, registry_enabled: bool
                 ) -> tuple[list[ResourceChange], list[BindingChange]]:
    """The repository, the runner account and the members' compute bindings (read only)."""
    if req.compute != "vertex":
        return [], []
    _check_admin(clients, req)
    policy = projects.get_iam_policy(clients.projects, req.project, retry=clients.retry)
    policy_missing = projects.missing_bindings(policy, {MEMBER_PROJECT_ROLE: req.members})
    repo_name, email = repository_name(req), runner_email(req)
    with _clients(clients) as (registry, iam):
        repo = (compute.get_repository(registry, repo_name, retry=clients.retry)
                if registry_enabled else None)
        account = compute.get_service_account(iam, email, retry=clients.retry)
        on_repo = (compute.repository_bindings(registry, repo_name, retry=clients.retry)
                   if repo else {})
        on_account = (compute.service_account_bindings(iam, email, retry=clients.retry)
                      if account else {})
    resources = [
        ResourceChange("artifact_repository", repo_name, "none" if repo else "create",
                       {"format": "DOCKER", "location": req.region,
                        "repository_id": req.repository}),
        ResourceChange("service_account", email, "none" if account else "create",
                       {"account_id": req.runner_account,
                        "display_name": "zenml-collab step runner (Vertex AI jobs)"}),
    ]

    def action(held: bool) -> Action:
        return "none" if held else "add"

    bindings = []
    for member in req.members:
        bindings += [
            BindingChange("project", f"projects/{req.project}", MEMBER_PROJECT_ROLE, member,
                          action(member not in policy_missing.get(MEMBER_PROJECT_ROLE, ()))),
            BindingChange("repository", repo_name, REPOSITORY_ROLE, member,
                          action(member in on_repo.get(REPOSITORY_ROLE, ()))),
            BindingChange("service_account", email, ACT_AS_ROLE, member,
                          action(member in on_account.get(ACT_AS_ROLE, ()))),
        ]
    return resources, bindings


def _wanted(plan_: Plan, scope: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for b in plan_.bindings:
        if b.scope == scope and b.action == "add":
            out.setdefault(b.role, []).append(b.member)
    return out


def apply_resources(clients: GcpClients, plan_: Plan, report: ProgressCallback) -> None:
    """Create the repository and the runner account (before any binding names them)."""
    req = plan_.request
    todo = [c for c in plan_.resources if c.action == "create"
            and c.type in ("artifact_repository", "service_account")]
    if not todo:
        return
    with _clients(clients) as (registry, iam):
        for change in todo:
            # A resumed run (Ctrl-C after a create) finds it: read before creating.
            if change.type == "artifact_repository":
                report(Progress(f"repository {req.repository}",
                                f"creating (Docker, {req.region})"))
                if compute.get_repository(registry, change.name, retry=clients.retry) is None:
                    compute.create_repository(registry, req.project, req.region,
                                              req.repository, retry=clients.retry,
                                              poll=clients.poll_interval)
            else:
                report(Progress(f"service account {change.name}", "creating"))
                if compute.get_service_account(iam, change.name, retry=clients.retry) is None:
                    compute.create_service_account(iam, req.project, req.runner_account,
                                                   change.settings["display_name"],
                                                   retry=clients.retry)


def apply_bindings(clients: GcpClients, plan_: Plan, report: ProgressCallback,
                   new_accounts: Propagation | None = None) -> None:
    """The repository's and the runner account's own IAM bindings (only there)."""
    req = plan_.request
    on_repo, on_account = _wanted(plan_, "repository"), _wanted(plan_, "service_account")
    if not on_repo and not on_account:
        return
    with _clients(clients) as (registry, iam):
        if on_repo:
            report(Progress(f"repository {req.repository}",
                            "granting " + ", ".join(sorted(on_repo))))
            compute.add_repository_bindings(registry, repository_name(req), on_repo,
                                            retry=clients.retry, propagation=new_accounts)
        if on_account:
            report(Progress(f"service account {runner_email(req)}",
                            "granting " + ", ".join(sorted(on_account))))
            compute.add_service_account_bindings(iam, runner_email(req), on_account,
                                                 retry=clients.retry, propagation=new_accounts)
