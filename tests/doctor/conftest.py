"""A healthy team setup, built for real against the fakes, that each test then breaks once.

The world: the fake Google APIs (project, IAM, a RUNNABLE Cloud SQL instance with IAM logins
on, the bucket) with MariaDB behind the instance; a member with the least roles; a git clone
with collab.yaml, .collab/local.yaml and the stand-in Cloud SQL proxy container forwarding to
MariaDB, as `collab join` leaves it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from zenml_collab.config import (
    ArtifactsConfig,
    GcpConfig,
    LocalConfig,
    MetadataConfig,
    TeamConfig,
    write_local_config,
    write_team_config,
)
from zenml_collab.testing.fake_gcp import FakeGCP
from zenml_collab.testing.repos import git, make_git_repo

PROJECT = "team-proj"
# fake-gcs-server reports every bucket in US-CENTRAL1 whatever was asked (a gap of the fake
# storage front), so the team lives there to keep bucket and instance in one region.
REGION = "us-central1"
INSTANCE = "main"
CONNECTION = f"{PROJECT}:{REGION}:{INSTANCE}"
ADMIN = "admin@team-proj.iam.gserviceaccount.com"
MEMBER_ROLES = ("roles/cloudsql.client", "roles/cloudsql.instanceUser")
BUCKET_ROLES = ("roles/storage.objectAdmin", "roles/storage.legacyBucketReader")
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


@dataclass
class Options:
    """What the setup builder does; a fault case flips one of these before building."""

    member_roles: tuple[str, ...] = MEMBER_ROLES
    bucket_roles: tuple[str, ...] = BUCKET_ROLES
    create_bucket: bool = True
    public_access_prevention: str = "enforced"
    schema: str = "head"
    team_instance: str = CONNECTION
    start_proxy: bool = True
    team_packages: dict[str, str] | None = None  # None: the team ran with our environment
    flags: dict[str, str] = field(default_factory=lambda: {"cloudsql_iam_authentication": "on"})


@dataclass
class World:
    fake: FakeGCP
    root: Path
    member: str  # serviceAccount:...
    login: str  # MySQL login name
    bucket: str
    database: str
    key_file: Path
    proxy_port: int
    mysql: Any
    docker: Any


def _admin_clients(fake: FakeGCP) -> Any:
    from google.oauth2 import service_account

    from zenml_collab.infra.gcp.clients import GcpClients

    key = fake.add_member(ADMIN)
    creds = service_account.Credentials.from_service_account_file(str(key), scopes=SCOPES)
    return GcpClients(creds, PROJECT)


def _record_team_run(store: Any, packages: dict[str, str] | None) -> None:
    from zenml_collab.core.environment import capture_environment
    from zenml_collab.core.hashing import canonical_json, sha256_json

    mine = capture_environment()
    env_hash, packages_json = mine.hash, mine.packages_json
    if packages is not None:
        packages_json = canonical_json(packages)
        env_hash = sha256_json([mine.python, mine.platform, sorted(packages.items())])
    store.ensure_environment(env_hash, mine.python, mine.platform, packages_json)
    pipeline_id, _ = store.register_pipeline(name="training", kind="pipeline", identity="x" * 64,
                                             config_json="{}", created_by="ana", git_sha=None)
    store.start_run(run_id=uuid.uuid4().hex, pipeline_id=pipeline_id, pipeline_name="training",
                    git_sha=None, git_dirty=False, user="ana@example.com", hostname="h",
                    environment_hash=env_hash)


def build_world(fake: FakeGCP, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mysql: Any,
                docker: Any, image: str, options: Options) -> World:
    import sqlalchemy

    from zenml_collab.core.metadata.store import MetadataStore
    from zenml_collab.infra import proxy
    from zenml_collab.infra.gcp import buckets, sqladmin

    for name, value in fake.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLLAB_GCP_RETRY_INITIAL", "0.01")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    for name in ("COLLAB_DB_URL", "COLLAB_DB_PASSWORD", "COLLAB_ARTIFACT_URI",
                 "COLLAB_PROXY_IMAGE"):
        monkeypatch.delenv(name, raising=False)
    suffix = uuid.uuid4().hex[:8]
    email = f"m{suffix}@{PROJECT}.iam.gserviceaccount.com"
    member, login = f"serviceAccount:{email}", f"m{suffix}"
    database, bucket = f"collab_{suffix}", f"team-artifacts-{suffix}"

    fake.add_project(PROJECT, owner=ADMIN)
    with _admin_clients(fake) as admin:
        body = {"name": INSTANCE, "region": REGION, "databaseVersion": "MYSQL_8_0",
                "settings": {"tier": "db-f1-micro", "databaseFlags": [
                    {"name": k, "value": v} for k, v in options.flags.items()]}}
        op = sqladmin.insert_instance(admin.sqladmin, PROJECT, body)
        sqladmin.wait_operation(admin.sqladmin, PROJECT, op, poll=0)
        sqladmin.insert_database(admin.sqladmin, PROJECT, INSTANCE, database)
        sqladmin.insert_user(admin.sqladmin, PROJECT, INSTANCE, sqladmin.iam_user_name(member),
                             sqladmin.iam_user_type(member))
    conn = mysql.connect()
    try:
        with conn.cursor() as cursor:  # what the admin grants a member on the team database
            cursor.execute(f"GRANT ALL ON `{database}`.* TO %s@'%%'", (login,))
    finally:
        conn.close()
    store = MetadataStore(sqlalchemy.create_engine(mysql.url(database)))
    try:
        store.upgrade(options.schema)
        if options.schema == "head":
            _record_team_run(store, options.team_packages)
    finally:
        store.engine.dispose()

    if options.create_bucket:
        with _admin_clients(fake) as admin:
            buckets.create_bucket(admin.storage, bucket, location=REGION, project=PROJECT)
            buckets.add_bucket_bindings(admin.storage, bucket,
                                        {role: [member] for role in options.bucket_roles})
        with fake.world.lock:
            fake.storage.bucket(bucket).public_access_prevention = options.public_access_prevention
    key_file = fake.add_member(email, roles=options.member_roles, project=PROJECT)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))

    root = tmp_path / "clone"
    make_git_repo(root)
    port = proxy.find_free_port()
    write_team_config(root, TeamConfig(
        gcp=GcpConfig(project=PROJECT, region=REGION, instance=options.team_instance,
                      database=database, bucket=bucket),
        metadata=MetadataConfig(kind="mysql", database=database),
        artifacts=ArtifactsConfig(uri=f"gs://{bucket}/artifacts")))
    write_local_config(root, LocalConfig(
        metadata=MetadataConfig(kind="mysql", host="127.0.0.1", port=port, username=login,
                                database=database),
        credentials_file=str(key_file), proxy_port=port, connector="proxy"))
    (root / ".gitignore").write_text(".collab/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "join the team")
    if options.start_proxy:
        socket_path = Path(mysql.socket)
        proxy.start_proxy(docker, repo_root=root, connection_name=options.team_instance,
                          credentials_file=key_file, port=port, image=image,
                          extra_args=[f"--standin-target=unix:/cloudsql/{socket_path.name}"],
                          extra_mounts={str(socket_path.parent): "/cloudsql"}, timeout=30)
    return World(fake, root, member, login, bucket, database, key_file, port, mysql, docker)


@pytest.fixture
def make_world(fake_gcp_mysql: FakeGCP, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               mysql_server: Any, docker_client: Any,
               proxy_image: str) -> Iterator[Callable[..., World]]:
    """``make_world(**options)``: build the healthy setup, with ``Options`` overrides."""
    if not mysql_server.socket:
        pytest.skip("needs the MariaDB socket path from scripts/test's state file")
    built: list[World] = []

    def make(**overrides: Any) -> World:
        world = build_world(fake_gcp_mysql, tmp_path, monkeypatch, mysql_server, docker_client,
                            proxy_image, Options(**overrides))
        built.append(world)
        return world

    yield make
    from zenml_collab.infra.proxy import stop_proxy

    for world in built:
        stop_proxy(docker_client, repo_root=world.root, timeout=2)
