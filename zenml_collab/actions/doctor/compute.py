"""Compute checks, run when a step can go to Vertex AI (``compute:`` names ``vertex``).

* ``compute.api.aiplatform`` / ``compute.api.artifactregistry``: the APIs are enabled;
* ``compute.iam``: the member may create custom jobs (``roles/aiplatform.user``);
* ``compute.actas``: the member may run jobs as the runner account
  (``roles/iam.serviceAccountUser`` on that account only);
* ``compute.image``: the step image is in Artifact Registry (by digest, else by tag).

Every non-pass names the role and the admin's command, as the other IAM checks do.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from zenml_collab.actions.doctor.context import DoctorContext
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
    from zenml_collab.config import ComputeConfig

AIPLATFORM = "aiplatform.googleapis.com"
ARTIFACTREGISTRY = "artifactregistry.googleapis.com"
CREATE_JOBS = "aiplatform.customJobs.create"
JOBS_ROLE = "roles/aiplatform.user"
ACT_AS_ROLE = "roles/iam.serviceAccountUser"
WRITER_ROLE = "roles/artifactregistry.writer"


def compute(ctx: DoctorContext) -> ComputeConfig:
    from zenml_collab.config import merge_compute

    settings = ctx.settings()
    return merge_compute(settings.team.compute, settings.local.compute)


def uses_vertex(ctx: DoctorContext) -> bool:
    """Whether this setup may send a step to Vertex AI (then the compute checks run)."""
    try:
        settings = compute(ctx)
    except CollabError:
        return False
    return settings.backend == "vertex" or bool(settings.vertex.service_account)


def _vertex(ctx: DoctorContext) -> tuple[str, ComputeConfig]:
    if not uses_vertex(ctx):
        raise NotApplicable("no step runs on vertex (compute.backend / compute.vertex)")
    gcp = ctx.require_gcp()
    settings = compute(ctx)
    return settings.vertex.project or gcp.project, settings


def _clients(ctx: DoctorContext, api: str) -> Any:
    from zenml_collab.infra.gcp import compute as gcompute

    build = gcompute.artifactregistry_client if api == "artifactregistry" else \
        gcompute.iam_client

    def make() -> Any:
        client = build(ctx.credentials().credentials)
        ctx.on_close(client.close)
        return client

    return ctx.memo(f"compute.{api}", make)


def _service_check(service: str) -> Any:
    def check(ctx: DoctorContext) -> CheckResult:
        from zenml_collab.infra.gcp import services
        from zenml_collab.infra.gcp.errors import ServiceDisabledError
        from zenml_collab.infra.gcp.permissions import enable_command

        project, _ = _vertex(ctx)
        clients = ctx.clients()
        try:
            with ctx.serial("serviceusage"):
                enabled = services.is_enabled(clients.serviceusage, project, service,
                                              retry=clients.retry)
            how = "Service Usage"
        except ConnectivityError:
            raise
        except CollabError:
            # Members usually may not read Service Usage: ask the API itself; a disabled API
            # answers every call with SERVICE_DISABLED.
            try:
                _probe(ctx, service, project)
                enabled, how = True, "it answered a request"
            except ServiceDisabledError:
                enabled, how = False, "it answered SERVICE_DISABLED"
            except CollabError as exc:
                if exc.exit_code == 4:
                    raise
                enabled, how = True, "it answered a request"
        if not enabled:
            return failed(f"{service} is disabled in project {project} ({how})",
                          f"an admin runs `{enable_command(service, project)}` "
                          "(or `collab bootstrap --compute vertex`)")
        return passed(f"{service} is enabled in project {project} ({how})")

    return check


def _probe(ctx: DoctorContext, service: str, project: str) -> None:
    from zenml_collab.infra.gcp import compute as gcompute

    if service == AIPLATFORM:
        settings = compute(ctx)
        region = settings.vertex.region or ctx.require_gcp().region
        gcompute.probe_vertex(ctx.credentials().credentials, project, region)
        return
    region = compute(ctx).vertex.region or ctx.require_gcp().region
    client = _clients(ctx, "artifactregistry")
    parent = f"projects/{project}/locations/{region}"
    repos = client.projects().locations().repositories()
    try:
        repos.list(parent=parent, pageSize=1).execute()
    except Exception as exc:
        from zenml_collab.infra.gcp.errors import translate

        raise translate(exc, action="list repositories", resource=parent,
                        project=project) from exc


def check_jobs_permission(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.infra.gcp import projects
    from zenml_collab.infra.gcp.permissions import grant_command

    project, _ = _vertex(ctx)
    member = ctx.member()
    clients = ctx.clients()
    if ctx.member_override:
        policy = projects.get_iam_policy(clients.projects, project, retry=clients.retry)
        roles = projects.members_with(policy, member)
        held = bool(roles & {JOBS_ROLE, "roles/aiplatform.admin", "roles/owner",
                             "roles/editor"})
        source = f"{member}'s bindings in the project policy"
    else:
        held = CREATE_JOBS in projects.test_permissions(clients.projects, project,
                                                        [CREATE_JOBS], retry=clients.retry)
        source = "testIamPermissions"
    if not held:
        return failed(f"{member} cannot create Vertex AI jobs in {project} (lacks "
                      f"{CREATE_JOBS}; {source})",
                      f"ask an admin for {JOBS_ROLE}: "
                      f"`{grant_command(member, JOBS_ROLE, project=project)}`", "permission")
    return passed(f"{member} may create Vertex AI jobs in {project} ({source})")


def act_as_command(account: str, member: str) -> str:
    return (f"gcloud iam service-accounts add-iam-policy-binding {shlex.quote(account)} "
            f"--member={shlex.quote(member)} --role={ACT_AS_ROLE}")


def check_act_as(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.infra.gcp import compute as gcompute

    _, settings = _vertex(ctx)
    account = settings.vertex.service_account
    if not account:
        return failed("compute.vertex.service_account is not set: jobs would run as the "
                      "project's default compute account, with its broad roles",
                      "run `collab bootstrap --compute vertex` (it creates the runner account "
                      "and records it in collab.yaml)")
    member = ctx.member()
    client = _clients(ctx, "iam")
    if ctx.member_override:
        bindings = gcompute.service_account_bindings(client, account)
        held = member in bindings.get(ACT_AS_ROLE, [])
        source = f"{member}'s bindings on the account"
    else:
        held = gcompute.can_act_as(client, account)
        source = "testIamPermissions"
    if not held:
        return failed(f"{member} cannot run jobs as {account} (lacks "
                      f"iam.serviceAccounts.actAs; {source})",
                      f"ask an admin for {ACT_AS_ROLE} on that account only: "
                      f"`{act_as_command(account, member)}`", "permission")
    return passed(f"{member} may run jobs as {account} ({source})")


def repository_grant_command(repository: str, location: str, project: str,
                             member: str) -> str:
    return (f"gcloud artifacts repositories add-iam-policy-binding {shlex.quote(repository)} "
            f"--location={shlex.quote(location)} --project={shlex.quote(project)} "
            f"--member={shlex.quote(member)} --role={WRITER_ROLE}")


def check_image(ctx: DoctorContext) -> CheckResult:
    from zenml_collab.infra.gcp import compute as gcompute

    _, settings = _vertex(ctx)
    image = settings.vertex.image or settings.image
    if not image:
        return failed("no step image is configured for vertex",
                      "run `collab image build --push` and put the digest it prints in "
                      "collab.yaml (compute.image)")
    ref = gcompute.parse_image(image)
    if ref is None:
        raise NotApplicable(f"{image} is not an Artifact Registry image (checked there only)")
    try:
        found = gcompute.find_image(_clients(ctx, "artifactregistry"), ref)
    except CollabError as exc:
        if exc.exit_code != 3:
            raise
        member = ctx.member()
        grant = repository_grant_command(ref.repository, ref.location, ref.project, member)
        return failed(f"{member} cannot read repository {ref.repository} ({ref.location}): "
                      f"{exc.message}",
                      f"ask an admin for {WRITER_ROLE} on that repository only: `{grant}`",
                      "permission")
    if found is None:
        return failed(f"{image} is not in repository {ref.repository} ({ref.location})",
                      "push it: `collab image build --push` (then record the digest it prints)")
    if ref.digest is None:
        return warned(f"{image} is in the registry ({found.get('uri')}) but named by tag: "
                      "a push to the tag changes what every teammate's jobs run",
                      "record the image by digest in collab.yaml (compute.image: ...@sha256:...)")
    return passed(f"{image} is in the registry")


CHECKS = (
    Check("compute.api.aiplatform", "Vertex AI API enabled", _service_check(AIPLATFORM),
          ("gcp.project",), timeout=8),
    Check("compute.api.artifactregistry", "Artifact Registry API enabled",
          _service_check(ARTIFACTREGISTRY), ("gcp.project",), timeout=8),
    Check("compute.iam", "may create Vertex AI jobs", check_jobs_permission,
          ("compute.api.aiplatform",), timeout=8, category="permission"),
    Check("compute.actas", "may act as the runner account", check_act_as, ("gcp.project",),
          timeout=8, category="permission"),
    Check("compute.image", "step image in Artifact Registry", check_image,
          ("compute.api.artifactregistry",), timeout=8),
)
