"""The read-only phase of `collab join`: credentials, permissions, instance, connector, proxy.

:func:`plan_join` fails before anything changes when the member lacks a permission, the instance
is not usable or the proxy could not start; otherwise it returns the :class:`JoinPlan`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from zenml_collab.actions.init import is_ignored
from zenml_collab.actions.join.model import (
    DEFAULT_PROXY_PORT,
    Connector,
    JoinPlan,
    JoinRequest,
    MissingPermissionsError,
    PermissionGap,
)
from zenml_collab.config import (
    LOCAL_DIR,
    LOCAL_FILE,
    ArtifactsConfig,
    GcpConfig,
    LocalConfig,
    MetadataConfig,
    TeamConfig,
    load_local_config,
    load_team_config,
)
from zenml_collab.errors import ConfigError, ConnectivityError
from zenml_collab.infra import proxy as px
from zenml_collab.infra.gcp.credentials import FoundCredentials

if TYPE_CHECKING:
    from docker import DockerClient

    from zenml_collab.infra.gcp.clients import GcpClients


def load_team(start: Path) -> tuple[Path, TeamConfig, GcpConfig]:
    """The repository root, its ``collab.yaml`` and the ``gcp`` section join needs."""
    from zenml_collab.actions.config import find_config_root

    root = find_config_root(start)
    team = load_team_config(root)
    if team.gcp is None:
        raise ConfigError(
            f"{root / 'collab.yaml'} has no gcp section: this repository has no team stores yet",
            "ask the admin to run `collab bootstrap` and commit collab.yaml, then `git pull`",
        )
    return root, team, team.gcp


def member_principal(found: FoundCredentials, account: str | None) -> str:
    """``user:...`` / ``serviceAccount:...`` of the caller; the gcloud account as a fallback."""
    from zenml_collab.errors import CredentialsError
    from zenml_collab.infra.gcp.permissions import normalise_member

    email = account or found.account
    if not email:
        from zenml_collab.infra.gcp import credentials as creds

        lookup = getattr(creds, "gcloud_config_value", None)
        email = lookup("core", "account") if lookup else None
    if not email:
        raise CredentialsError(
            f"cannot tell which Google account the credentials from {found.source} belong to",
            "pass it: `collab join --account you@example.com`",
        )
    return normalise_member(email)


def permission_gaps(clients: GcpClients, gcp: GcpConfig, member: str) -> list[PermissionGap]:
    """testIamPermissions on the project and the bucket: what the member lacks, and who grants it."""
    from zenml_collab.infra.gcp import buckets, projects
    from zenml_collab.infra.gcp import permissions as perms

    def role_for(permission: str, ours: tuple[str, ...]) -> str:
        return next((r for r in ours if perms.role_grants(r, permission)),
                    perms.least_role(permission))

    gaps = []
    wanted = perms.MEMBER_PROJECT_PERMISSIONS[gcp.db_auth]
    held = projects.test_permissions(clients.projects, gcp.project, wanted, retry=clients.retry)
    for permission in (p for p in wanted if p not in held):
        role = role_for(permission, perms.member_roles(gcp.db_auth))
        gaps.append(PermissionGap(permission, role, f"project {gcp.project}",
                                  perms.grant_command(member, role, project=gcp.project)))
    wanted = perms.MEMBER_BUCKET_PERMISSIONS
    held = buckets.test_bucket_permissions(clients.storage, gcp.bucket, wanted, retry=clients.retry)
    for permission in (p for p in wanted if p not in held):
        role = role_for(permission, perms.BUCKET_MEMBER_ROLES)
        gaps.append(PermissionGap(permission, role, f"gs://{gcp.bucket}",
                                  perms.grant_command(member, role, bucket=gcp.bucket)))
    return gaps


def check_instance(clients: GcpClients, gcp: GcpConfig) -> None:
    """The instance exists, runs, and accepts IAM logins when the team uses them."""
    import shlex

    from zenml_collab.config import parse_connection_name
    from zenml_collab.infra.gcp import sqladmin

    project, _, name = parse_connection_name(gcp.instance)
    instance = sqladmin.get_instance(clients.sqladmin, project, name, retry=clients.retry)
    if instance is None:
        raise ConfigError(f"the Cloud SQL instance {gcp.instance} does not exist",
                          "ask the admin to run `collab bootstrap` (or fix gcp.instance in "
                          "collab.yaml)")
    state = instance.get("state", "RUNNABLE")
    if state != "RUNNABLE":
        raise ConnectivityError(f"the Cloud SQL instance {gcp.instance} is {state}",
                                "wait until it is RUNNABLE, or ask the admin why it is not")
    flags = {f.get("name"): f.get("value") for f in
             (instance.get("settings") or {}).get("databaseFlags") or []}
    if gcp.db_auth == "iam" and flags.get("cloudsql_iam_authentication") != "on":
        raise ConfigError(
            f"the Cloud SQL instance {gcp.instance} does not accept IAM database logins",
            "ask the admin to run `gcloud sql instances patch "
            f"{shlex.quote(name)} --project {shlex.quote(project)} "
            "--database-flags=cloudsql_iam_authentication=on` (or `collab bootstrap`)",
        )


def _choose_connector(request: JoinRequest, local: LocalConfig, found: FoundCredentials,
                      docker: Callable[[], DockerClient]
                      ) -> tuple[Connector, str, DockerClient | None]:
    wanted = request.connector or local.connector
    if wanted == "python":
        return "python", ("chosen with --connector python" if request.connector
                          else "as in .collab/local.yaml"), None
    if wanted == "proxy":
        if found.file is None:
            from zenml_collab.errors import CredentialsError

            raise CredentialsError(
                f"the proxy needs a credentials file to mount; {found.source} has none",
                "use `collab join --connector python`, or set GOOGLE_APPLICATION_CREDENTIALS")
        return "proxy", ("chosen with --connector proxy" if request.connector
                         else "as in .collab/local.yaml"), docker()
    if found.file is None:
        return "python", f"{found.source} has no file to mount into a proxy", None
    try:
        return "proxy", "docker is available", docker()
    except ConnectivityError as exc:
        return "python", f"docker is not available ({exc.message.partition(': ')[2][:80]})", None


def _image_present(client: DockerClient, image: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(image)
    except ImageNotFound:
        return False
    return True


def _metadata_for(gcp: GcpConfig, connector: Connector, db_user: str,
                  port: int | None) -> MetadataConfig:
    if connector == "proxy":  # the proxy speaks plain MySQL on loopback; it adds the IAM login
        return MetadataConfig(kind="mysql", host="127.0.0.1", port=port, database=gcp.database,
                              username=db_user, connector="proxy")
    return MetadataConfig(kind="cloudsql", instance=gcp.instance, database=gcp.database,
                          username=db_user, auth="iam", connector="python")

def _plan_proxy(request: JoinRequest, team: TeamConfig, local: LocalConfig, root: Path,
                client: DockerClient) -> tuple[int, str, px.ProxyStatus, str | None]:
    """Port, image and current container of the proxy; the change starting it (None: reuse).

    A taken port or a missing image fails here, before anything starts.
    """
    assert team.gcp is not None
    status = px.proxy_status(client, repo_root=root)
    port = request.port or local.proxy_port or status.port or DEFAULT_PROXY_PORT
    image = request.proxy_image or px.resolve_proxy_image(f"{team.proxy.image}:{team.proxy.version}")
    serves_us = status.running and status.port == port
    if not serves_us and px.port_in_use(port):
        raise ConnectivityError(
            f"port {port} on 127.0.0.1 is already in use by another program",
            f"stop what listens on {port}, or use a free port: "
            f"`collab join --port {px.find_free_port()}`")
    if not _image_present(client, image):
        raise ConfigError(
            f"the Cloud SQL Auth Proxy image {image} is not available to docker",
            f"pull it with `docker pull {image}`, set {px.PROXY_IMAGE_ENV} to an image you "
            "have, or use `collab join --connector python`")
    same = status.connection_name == team.gcp.instance and status.image == image
    if status.ready and serves_us and same:
        return port, image, status, None
    return port, image, status, (f"start the Cloud SQL Auth Proxy ({image}) as container "
                                 f"{status.name} on 127.0.0.1:{port}")


def plan_join(request: JoinRequest, *, found: FoundCredentials, clients: GcpClients,
              docker: Callable[[], DockerClient] = px.connect_docker) -> JoinPlan:
    """Decide what joining needs; raises (and changes nothing) when something is missing.

    ``clients`` is a :class:`~zenml_collab.infra.gcp.clients.GcpClients` of the member;
    ``docker`` returns a docker client (called only when the proxy is wanted or probed).
    """
    from zenml_collab.infra.gcp.sqladmin import iam_db_username

    root, team, gcp = load_team(request.start)
    if gcp.db_auth != "iam":
        raise ConfigError(
            "this team's database uses password authentication; `collab join` sets up IAM logins",
            "ask the admin for your database password, then run `collab config metadata set "
            f"cloudsql --instance {gcp.instance} --database {gcp.database} --username YOU "
            "--password-stdin`")
    member = member_principal(found, request.account)
    gaps = permission_gaps(clients, gcp, member)
    if gaps:
        raise MissingPermissionsError(member, gaps)
    check_instance(clients, gcp)
    local = load_local_config(root)
    connector, reason, client = _choose_connector(request, local, found, docker)
    if request.port is not None and connector == "python":
        raise ConfigError(f"--port is for the proxy connector, but join uses the in-process "
                          f"connector ({reason})", "drop --port, or add --connector proxy")
    db_user = iam_db_username(member)

    changes: list[str] = []
    init_needed = not (root / LOCAL_DIR).is_dir() or not is_ignored(root)
    if init_needed:
        changes.append(f"create {LOCAL_DIR}/ and add it to .gitignore")
    port = image = status = None
    if connector == "proxy":
        port, image, status, change = _plan_proxy(request, team, local, root, client)
        changes += [change] if change else []
    # The team's bucket URI applies; a private override (e.g. a local folder) would hide it.
    artifact_uri, artifacts = team.artifacts.uri, None
    if not artifact_uri.startswith(f"gs://{gcp.bucket}"):
        artifact_uri = f"gs://{gcp.bucket}/artifacts"
        artifacts = ArtifactsConfig(uri=artifact_uri)
    after = LocalConfig.model_validate({
        **local.model_dump(exclude_unset=True),
        "metadata": _metadata_for(gcp, connector, db_user, port),
        "artifacts": artifacts,
        "credentials_file": str(found.file) if found.file else None,
        "proxy_port": port if connector == "proxy" else local.proxy_port,
        "connector": connector,
    })
    if after != local:
        changes.append(f"write {LOCAL_DIR}/{LOCAL_FILE} (connector {connector}"
                       + (f", port {port}" if port else "") + ")")
    return JoinPlan(root, gcp, member, db_user, found.source, found.file, connector, reason, port,
                    image, artifact_uri, init_needed, local, after, status, tuple(changes),
                    request.proxy_extra_args, dict(request.proxy_extra_mounts),
                    request.proxy_timeout)
