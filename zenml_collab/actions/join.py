"""`collab join`: connect this clone to the team's Cloud SQL database and bucket, and prove it.

Two phases, like bootstrap: :func:`plan_join` only reads (credentials, IAM permissions, the
instance, the existing ``.collab/local.yaml``, docker and the proxy container) and fails before
anything changes when the member lacks a permission; :func:`apply_join` then initialises
``.collab/``, starts (or reuses) the proxy, verifies the metadata store and the bucket, and only
then writes ``.collab/local.yaml``. A second join with the same settings changes nothing.

Two ways to reach the database (both log in with IAM database authentication, no password):

* ``proxy``: the Cloud SQL Auth Proxy v2 in a docker container of this repository, published on
  ``127.0.0.1:<port>``; the store is then a ``mysql`` store on that port.
* ``python``: the cloud-sql-python-connector inside each process (no docker needed); the store
  is a ``cloudsql`` store.

No terminal I/O here: progress goes to the ``on_progress`` callback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from zenml_collab.actions.init import is_ignored, prepare_local_dir
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
    merge_metadata,
)
from zenml_collab.errors import CollabError, ConfigError, ConnectivityError, PermissionDeniedError
from zenml_collab.infra import proxy as px
from zenml_collab.infra.gcp.credentials import FoundCredentials

Connector = Literal["proxy", "python"]
Progress = Callable[[str], None]
DEFAULT_PROXY_PORT = 3307  # not 3306: members often run a MySQL of their own there


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class JoinRequest:
    """What the member asked for; ``None`` means "work it out"."""

    start: Path = Path(".")
    connector: Connector | None = None  # None: proxy when docker answers, else python
    port: int | None = None
    account: str | None = None  # the member's email when the credentials do not name it
    proxy_image: str | None = None
    # Extra proxy flags and read-only mounts (e.g. ``--private-ip``; the stand-in's target).
    proxy_extra_args: tuple[str, ...] = ()
    proxy_extra_mounts: Mapping[str, str] = field(default_factory=dict)
    proxy_timeout: float = 60.0


@dataclass(frozen=True)
class PermissionGap:
    """One permission the member lacks, the role that grants it and the admin's command."""

    permission: str
    role: str
    resource: str
    command: str


class MissingPermissionsError(PermissionDeniedError):
    """The member lacks permissions; ``gaps`` lists each with the admin's grant command."""

    def __init__(self, member: str, gaps: list[PermissionGap]) -> None:
        named = ", ".join(f"{g.permission} on {g.resource} (granted by {g.role})" for g in gaps)
        commands = sorted({g.command for g in gaps})
        super().__init__(
            f"{member} is missing {len(gaps)} permission(s): {named}",
            "ask a project admin to run:\n  " + "\n  ".join(commands)
            + "\nthen re-run `collab join`",
        )
        self.member = member
        self.gaps = tuple(gaps)


@dataclass(frozen=True)
class JoinPlan:
    """Everything :func:`apply_join` will do, decided from reads only."""

    root: Path
    gcp: GcpConfig
    member: str  # IAM principal, e.g. user:alice@example.com
    db_user: str  # the MySQL login of the member's IAM database user
    credentials_source: str
    credentials_file: Path | None
    connector: Connector
    connector_reason: str
    port: int | None
    image: str | None
    artifact_uri: str
    init_needed: bool
    local_before: LocalConfig
    local_after: LocalConfig
    proxy_before: px.ProxyStatus | None
    changes: tuple[str, ...]
    extra_args: tuple[str, ...] = ()
    extra_mounts: Mapping[str, str] = field(default_factory=dict)
    proxy_timeout: float = 60.0

    @property
    def metadata(self) -> MetadataConfig:
        """The metadata settings the member will use once joined."""
        return _effective_metadata(self.root, self.local_after)


@dataclass(frozen=True)
class SchemaCheck:
    revision: str | None
    head: str
    initialised: bool  # this join created the schema in an empty database

    @property
    def state(self) -> str:
        if self.revision == self.head:
            return "current"
        return "behind" if self.revision is None or self.revision < self.head else "ahead"

    @property
    def advice(self) -> str | None:
        if self.state == "behind":
            return "run `collab db upgrade` (back up the shared store first)"
        if self.state == "ahead":
            return "upgrade zenml-collab: a teammate's newer version migrated the store"
        return None


@dataclass(frozen=True)
class JoinResult:
    """What :func:`apply_join` did and verified."""

    plan: JoinPlan
    changed: tuple[str, ...]
    proxy: px.ProxyStatus | None
    schema: SchemaCheck
    probe_object: str
    metadata_description: str

    @property
    def unchanged(self) -> bool:
        return not self.changed

    @property
    def next_steps(self) -> tuple[str, ...]:
        """Commands worth running now that the member has joined."""
        steps = ["collab pipelines list", "collab runs list"]
        if self.schema.state == "behind":
            steps.insert(0, "collab db upgrade")
        if self.proxy is not None:
            steps.append("collab proxy status")
        return (*steps, "collab doctor")


# -- planning (reads only) --------------------------------------------------------------------
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


def permission_gaps(clients: Any, gcp: GcpConfig, member: str) -> list[PermissionGap]:
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


def check_instance(clients: Any, gcp: GcpConfig) -> None:
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
                      docker: Callable[[], Any]) -> tuple[Connector, str, Any]:
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


def _image_present(client: Any, image: str) -> bool:
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


def _effective_metadata(root: Path, local: LocalConfig) -> MetadataConfig:
    return merge_metadata(load_team_config(root).metadata, local.metadata)


def _plan_proxy(request: JoinRequest, team: TeamConfig, local: LocalConfig, root: Path,
                client: Any) -> tuple[int, str, px.ProxyStatus, str | None]:
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


def plan_join(request: JoinRequest, *, found: FoundCredentials, clients: Any,
              docker: Callable[[], Any] = px.connect_docker) -> JoinPlan:
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


# -- applying ---------------------------------------------------------------------------------
def start_member_proxy(client: Any, *, root: Path, instance: str, credentials_file: Path,
                       port: int, image: str, extra_args: tuple[str, ...] = (),
                       extra_mounts: Mapping[str, str] | None = None,
                       timeout: float = 60.0) -> px.ProxyStatus:
    """Start (or reuse) the repository's proxy."""
    return px.start_proxy(
        client, repo_root=root, connection_name=instance, credentials_file=credentials_file,
        port=port, image=image, extra_args=extra_args, extra_mounts=extra_mounts, pull=False,
        timeout=timeout)


def verify_metadata(cfg: MetadataConfig, root: Path, member: str) -> tuple[SchemaCheck, str]:
    """Open the store, read its schema revision; initialise an empty database (never migrate)."""
    from zenml_collab.core.metadata.store import HEAD_REVISION
    from zenml_collab.core.stores import open_metadata_store

    store = open_metadata_store(cfg, root)
    try:
        revision, initialised = store.revision(), False
        if revision is None:
            store.upgrade()
            revision, initialised = HEAD_REVISION, True
        return SchemaCheck(revision, HEAD_REVISION, initialised), store.description
    except CollabError as exc:
        raise _login_refused(exc, cfg, member) or exc from None
    except Exception as exc:  # the in-process connector raises its HTTP client's errors
        import sqlalchemy as sa

        status = getattr(exc, "status", None)
        if status is None and not isinstance(exc, OSError | sa.exc.SQLAlchemyError):
            raise  # a bug, not a connection problem: keep the traceback
        if status == 403:
            raise PermissionDeniedError(f"Cloud SQL refused the connection: {exc}",
                                        "run `collab doctor` to see which role is missing") from None
        raise ConnectivityError(f"cannot open the metadata store {store.description}: {exc}",
                                "check `collab proxy status` (proxy) or your network, then "
                                "re-run `collab join`") from None
    finally:
        # The cloudsql engine closes its connector (and event loop) when it is collected.
        store.engine.dispose()


def _login_refused(exc: CollabError, cfg: MetadataConfig, member: str) -> CollabError | None:
    if "(1045," not in exc.message and "(1044," not in exc.message:
        return None
    from zenml_collab.infra.gcp.sqladmin import iam_user_name, iam_user_type

    instance = cfg.instance or "INSTANCE"
    kind = "cloud_iam_service_account" if iam_user_type(member).endswith("ACCOUNT") \
        else "cloud_iam_user"
    return PermissionDeniedError(
        f"the database refused {cfg.username!r}: {exc.message.partition(': ')[2] or exc.message}",
        f"ask the admin to add your IAM database user and grant it the database: `gcloud sql "
        f"users create {iam_user_name(member)} --instance={instance.split(':')[-1]} "
        f"--type={kind}` and `GRANT ALL ON \\`{cfg.database}\\`.* TO '{cfg.username}'@'%'`")


def verify_artifacts(clients: Any, uri: str) -> str:
    """Write, read back and delete a probe object under the artifact prefix; its name."""
    from zenml_collab.infra.gcp.buckets import probe_object

    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    return probe_object(clients.storage, bucket, prefix, retry=clients.retry).object_name


def apply_join(plan: JoinPlan, *, clients: Any, docker: Callable[[], Any] = px.connect_docker,
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
    on_progress(f"writing, reading and deleting a probe object in {plan.artifact_uri}")
    probe = verify_artifacts(clients, plan.artifact_uri)
    if plan.local_after != load_local_config(plan.root):
        path = write_local_config(plan.root, plan.local_after)
        changed.append(f"wrote {path.relative_to(plan.root)} (mode 0600)")
    return JoinResult(plan, tuple(changed), status, schema, probe, description)


def join(request: JoinRequest, *, dry_run: bool = False, on_progress: Progress = _quiet,
         docker: Callable[[], Any] = px.connect_docker) -> JoinPlan | JoinResult:
    """Find the credentials, plan, and (unless ``dry_run``) apply. The one call the CLI makes."""
    from zenml_collab.infra.gcp.clients import GcpClients
    from zenml_collab.infra.gcp.credentials import find_credentials, refresh

    _, _, gcp = load_team(request.start)
    on_progress("looking for your Google credentials")
    found = find_credentials()
    refresh(found)  # a revoked or expired login fails here, with the login command
    on_progress(f"credentials: {found.source}")
    cached: list[Any] = []

    def docker_once() -> Any:
        if not cached:
            cached.append(docker())
        return cached[0]

    with GcpClients.from_found(found, gcp.project) as clients:
        on_progress(f"checking your permissions on project {gcp.project} and gs://{gcp.bucket}")
        plan = plan_join(request, found=found, clients=clients, docker=docker_once)
        if dry_run:
            return plan
        return apply_join(plan, clients=clients, docker=docker_once, on_progress=on_progress)


# -- `collab proxy ...` -----------------------------------------------------------------------
def _proxy_settings(start: Path) -> tuple[Path, TeamConfig, GcpConfig, LocalConfig]:
    root, team, gcp = load_team(start)
    return root, team, gcp, load_local_config(root)


def proxy_start(start: Path = Path("."), *, docker: Callable[[], Any] = px.connect_docker,
                timeout: float = 60.0) -> px.ProxyStatus:
    """Start (or reuse) the proxy with the settings `collab join` wrote."""
    root, team, gcp, local = _proxy_settings(start)
    if local.connector != "proxy" or not local.proxy_port or not local.credentials_file:
        raise ConfigError("this clone is not set up for the proxy connector",
                          "run `collab join --connector proxy` first")
    image = px.resolve_proxy_image(f"{team.proxy.image}:{team.proxy.version}")
    return start_member_proxy(docker(), root=root, instance=gcp.instance,
                              credentials_file=Path(local.credentials_file),
                              port=local.proxy_port, image=image, timeout=timeout)


def proxy_stop(start: Path = Path("."), *, docker: Callable[[], Any] = px.connect_docker) -> bool:
    """Stop and remove this repository's proxy container; False when none ran."""
    root = load_team(start)[0]
    return px.stop_proxy(docker(), repo_root=root)


def proxy_status(start: Path = Path("."), *,
                 docker: Callable[[], Any] = px.connect_docker) -> px.ProxyStatus:
    root = load_team(start)[0]
    return px.proxy_status(docker(), repo_root=root)


def proxy_logs(start: Path = Path("."), *, tail: int = 200,
               docker: Callable[[], Any] = px.connect_docker) -> str:
    root = load_team(start)[0]
    return px.proxy_logs(docker(), repo_root=root, tail=tail)
