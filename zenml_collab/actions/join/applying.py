"""The changing phase of `collab join`, and :func:`join`, which plans and applies in one call.

:func:`apply_join` initialises ``.collab/``, starts (or reuses) the proxy, verifies both stores
and only then writes ``.collab/local.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from zenml_collab.actions.init import prepare_local_dir
from zenml_collab.actions.join.model import JoinPlan, JoinRequest, JoinResult, Progress, _quiet
from zenml_collab.actions.join.planning import load_team, plan_join
from zenml_collab.actions.join.verify import verify_artifacts, verify_metadata
from zenml_collab.config import LOCAL_DIR, load_local_config
from zenml_collab.infra import proxy as px

if TYPE_CHECKING:
    from docker import DockerClient

    from zenml_collab.infra.gcp.clients import GcpClients


def start_member_proxy(client: DockerClient, *, root: Path, instance: str, credentials_file: Path,
                       port: int, image: str, extra_args: tuple[str, ...] = (),
                       extra_mounts: Mapping[str, str] | None = None,
                       timeout: float = 60.0) -> px.ProxyStatus:
    """Start (or reuse) the repository's proxy."""
    return px.start_proxy(
        client, repo_root=root, connection_name=instance, credentials_file=credentials_file,
        port=port, image=image, extra_args=extra_args, extra_mounts=extra_mounts, pull=False,
        timeout=timeout)


def record_store_id(root: Path, store_id: str) -> str:
    """Write the store's identity into the team's ``collab.yaml`` (to be committed)."""
    from zenml_collab.config import load_team_config, write_team_config

    team = load_team_config(root)
    metadata = team.metadata.model_copy(update={"store_id": store_id})
    path = write_team_config(root, team.model_copy(update={"metadata": metadata}))
    return (f"recorded the metadata store's id {store_id[:8]} in {path.name} (commit it: every "
            "command then refuses a database that is not this store)")


def apply_join(plan: JoinPlan, *, clients: GcpClients,
               docker: Callable[[], DockerClient] = px.connect_docker,
               on_progress: Progress = _quiet) -> JoinResult:
    """Carry out ``plan``; ``.collab/local.yaml`` is written only once both stores answered."""
    from zenml_collab.config import write_local_config

    changed: list[str] = []
    if plan.init_needed:
        prepare_local_dir(plan.root)
        changed.append(f"created {LOCAL_DIR}/ (ignored by git)")
    status = None
    if plan.connector == "proxy":
        on_progress(f"starting the Cloud SQL Auth Proxy on 127.0.0.1:{plan.port}")
        assert plan.port and plan.image and plan.credentials_file
        status = start_member_proxy(
            docker(), root=plan.root, instance=plan.gcp.instance,
            credentials_file=plan.credentials_file, port=plan.port, image=plan.image,
            extra_args=plan.extra_args, extra_mounts=plan.extra_mounts, timeout=plan.proxy_timeout)
        if not status.reused:
            changed.append(f"started proxy container {status.name} on 127.0.0.1:{status.port}")
    on_progress(f"opening the metadata store as {plan.db_user} ({plan.connector} connector)")
    schema, description = verify_metadata(plan.metadata, plan.root, plan.member)
    if schema.initialised:
        changed.append(f"created the metadata schema {schema.revision} in the empty database")
    if schema.store_id and plan.metadata.store_id is None and schema.initialised:
        # Bootstrap records the id of the store it sets up; this is for a team bootstrapped
        # before it did. Only the member whose join created the store records its id (and
        # commits it): a second member writing the same line into their tracked collab.yaml
        # would make their next `git pull` abort ("local changes would be overwritten").
        changed.append(record_store_id(plan.root, schema.store_id))
    on_progress(f"writing, reading and deleting a probe object in {plan.artifact_uri}")
    probe = verify_artifacts(clients, plan.artifact_uri)
    if plan.local_after != load_local_config(plan.root):
        path = write_local_config(plan.root, plan.local_after)
        changed.append(f"wrote {path.relative_to(plan.root)} (mode 0600)")
    return JoinResult(plan, tuple(changed), status, schema, probe, description)


def join(request: JoinRequest, *, dry_run: bool = False, on_progress: Progress = _quiet,
         docker: Callable[[], DockerClient] = px.connect_docker) -> JoinPlan | JoinResult:
    """Find the credentials, plan, and (unless ``dry_run``) apply. The one call the CLI makes."""
    from zenml_collab.infra.gcp.clients import GcpClients
    from zenml_collab.infra.gcp.credentials import find_credentials, refresh

    _, _, gcp = load_team(request.start)
    on_progress("looking for your Google credentials")
    found = find_credentials()
    refresh(found)  # a revoked or expired login fails here, with the login command
    on_progress(f"credentials: {found.source}")
    cached: list[DockerClient] = []

    def docker_once() -> DockerClient:
        if not cached:
            cached.append(docker())
        return cached[0]

    with GcpClients.from_found(found, gcp.project) as clients:
        on_progress(f"checking your permissions on project {gcp.project} and gs://{gcp.bucket}")
        plan = plan_join(request, found=found, clients=clients, docker=docker_once)
        if dry_run:
            return plan
        return apply_join(plan, clients=clients, docker=docker_once, on_progress=on_progress)
