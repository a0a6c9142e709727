"""A team as `collab bootstrap` leaves it, on the fake GCP: instance, database, bucket, members.

``team_env`` builds the project on the fake (endpoints in the environment), and
``team.member(name, ...)`` makes a member: IAM roles, bucket roles, an IAM database user (which
the fake mirrors onto the test MariaDB) with rights on the team database, and a key file.
``team.repo(name)`` is a clone of the team repository holding the committed ``collab.yaml``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from zenml_collab.config import (
    ArtifactsConfig,
    GcpConfig,
    MetadataConfig,
    TeamConfig,
    write_team_config,
)
from zenml_collab.testing.fake_gcp import FakeGCP
from zenml_collab.testing.repos import git, make_git_repo

PROJECT = "proj-join"
REGION = "europe-west1"
INSTANCE = "main"
CONNECTION = f"{PROJECT}:{REGION}:{INSTANCE}"
ADMIN = "admin@proj-join.iam.gserviceaccount.com"
MEMBER_ROLES = ("roles/cloudsql.client", "roles/cloudsql.instanceUser")
BUCKET_ROLES = ("roles/storage.objectAdmin", "roles/storage.legacyBucketReader")
DATA = resources.files("zenml_collab.data") / "diabetes.csv"


@dataclass
class Member:
    email: str
    key_file: Path

    @property
    def principal(self) -> str:
        return f"serviceAccount:{self.email}"

    @property
    def login(self) -> str:
        return self.email.split("@")[0]

    @property
    def env(self) -> dict[str, str]:
        return {"GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file)}


@dataclass
class Team:
    fake: FakeGCP
    tmp: Path
    database: str
    bucket: str
    sql: Any = None
    mysql: dict[str, Any] | None = None
    origin: Path | None = None
    members: list[Member] = field(default_factory=list)
    # Bootstrap sets up the store and records its id in collab.yaml; False: a team
    # bootstrapped before it did (the first member's join creates the store).
    store_by_bootstrap: bool = True
    store_id: str | None = None

    def member(self, name: str, *, roles: tuple[str, ...] = MEMBER_ROLES,
               bucket_roles: tuple[str, ...] = BUCKET_ROLES, db_user: bool = True,
               granted: bool = True) -> Member:
        """A member with ``roles`` on the project and ``bucket_roles`` on the bucket."""
        email = f"{name}-{uuid.uuid4().hex[:6]}@{PROJECT}.iam.gserviceaccount.com"
        key = self.fake.add_member(email, roles=roles, project=PROJECT if roles else None)
        meta = self.fake.storage.bucket(self.bucket)
        for role in bucket_roles:
            with self.fake.world.lock:
                meta.policy.grant(role, f"serviceAccount:{email}")
        member = Member(email, key)
        if db_user and self.sql is not None:
            self.sql.users().insert(project=PROJECT, instance=INSTANCE, body={
                "name": email.removesuffix(".gserviceaccount.com"),
                "type": "CLOUD_IAM_SERVICE_ACCOUNT"}).execute()
            if granted:
                self._grant_database(member.login)
        self.members.append(member)
        return member

    def _grant_database(self, login: str) -> None:
        # Cloud SQL gives a new IAM user no rights: the admin grants them (as bootstrap does).
        import pymysql

        if self.mysql is None:
            return
        conn = pymysql.connect(**self.mysql, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f"GRANT ALL ON `{self.database}`.* TO %s@'%%'", (login,))
        finally:
            conn.close()

    def _set_up_store(self) -> str | None:
        """What bootstrap does: an empty team database becomes the store; its id (None for a
        store from before store ids)."""
        if self.mysql is None:
            return None
        import sqlalchemy as sa

        from zenml_collab.core.metadata.schema import SchemaState
        from zenml_collab.core.metadata.store import MetadataStore

        engine = sa.create_engine(sa.URL.create(
            "mysql+pymysql", username=self.mysql["user"], password=self.mysql["password"],
            host=self.mysql["host"], port=self.mysql["port"], database=self.database))
        try:
            store = MetadataStore(engine)
            if store.schema_state() is SchemaState.EMPTY:
                store.check_schema()
            return store.store_id()
        finally:
            engine.dispose()

    def team_config(self) -> TeamConfig:
        return TeamConfig(
            gcp=GcpConfig(project=PROJECT, region=REGION, instance=CONNECTION,
                          database=self.database, bucket=self.bucket),
            metadata=MetadataConfig(kind="cloudsql", instance=CONNECTION, database=self.database,
                                    store_id=self.store_id),
            artifacts=ArtifactsConfig(uri=f"gs://{self.bucket}/artifacts"))

    def repo(self, name: str) -> Path:
        """A clone of the team repository (committed collab.yaml and data), not yet joined."""
        if self.origin is None:
            self.origin = self.tmp / "origin.git"
            git(self.tmp, "init", "-q", "--bare", "--initial-branch=main", str(self.origin))
            admin = self.tmp / "admin-clone"
            make_git_repo(admin, "admin")
            if self.store_by_bootstrap:
                self.store_id = self._set_up_store()
            write_team_config(admin, self.team_config())
            (admin / "data").mkdir()
            shutil.copyfile(str(DATA), admin / "data" / "diabetes.csv")
            git(admin, "add", "-A")
            git(admin, "commit", "-q", "-m", "team stores")
            git(admin, "push", "-q", str(self.origin), "main")
        git(self.tmp, "clone", "-q", str(self.origin), name)
        path = self.tmp / name
        git(path, "config", "user.name", name)
        git(path, "config", "user.email", f"{name}@example.com")
        return path


def _mysql_login() -> dict[str, Any] | None:
    url = os.environ.get("COLLAB_TEST_MYSQL_URL")
    if not url:
        return None
    parts = urlsplit(url)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 3306,
            "user": unquote(parts.username or "root"), "password": unquote(parts.password or "")}


def _build(fake: FakeGCP, tmp: Path, monkeypatch: pytest.MonkeyPatch, *, with_sql: bool) -> Team:
    from google.oauth2 import service_account

    from zenml_collab.infra.gcp.clients import sqladmin_client

    monkeypatch.setenv("COLLAB_GCP_RETRY_INITIAL", "0.01")
    monkeypatch.setenv("COLLAB_GCP_POLL_INTERVAL", "0.01")
    # Never find this machine's own gcloud login.
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp / "no-gcloud"))
    fake.add_project(PROJECT, owner=ADMIN)
    fake.operation_polls["CREATE"] = 0
    team = Team(fake, tmp, f"zenml_{uuid.uuid4().hex[:10]}", f"team-{uuid.uuid4().hex[:10]}")
    fake.storage.create_bucket(team.bucket, PROJECT)
    if with_sql:
        team.mysql = _mysql_login()
        if team.mysql is not None:
            fake.attach_mysql(os.environ["COLLAB_TEST_MYSQL_URL"])
        admin_key = fake.add_member(ADMIN)
        creds = service_account.Credentials.from_service_account_file(
            str(admin_key), scopes=["https://www.googleapis.com/auth/cloud-platform"])
        team.sql = sqladmin_client(creds)
        team.sql.instances().insert(project=PROJECT, body={
            "name": INSTANCE, "region": REGION, "databaseVersion": "MYSQL_8_0",
            "settings": {"tier": "db-f1-micro", "databaseFlags": [
                {"name": "cloudsql_iam_authentication", "value": "on"}]}}).execute()
        team.sql.databases().insert(project=PROJECT, instance=INSTANCE,
                                    body={"name": team.database}).execute()
    return team


@pytest.fixture
def team(fake_gcp_env: FakeGCP, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    """The team on the fake, its instance backed by the test MariaDB (skips without it)."""
    if not os.environ.get("COLLAB_TEST_MYSQL_URL"):
        pytest.skip("COLLAB_TEST_MYSQL_URL is not set (run under scripts/test for MariaDB)")
    built = _build(fake_gcp_env, tmp_path, monkeypatch, with_sql=True)
    yield built
    built.sql.close()


@pytest.fixture
def team_no_sql_backend(fake_gcp_env: FakeGCP, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    """The team on the fake with an instance but no MariaDB behind it (permission checks)."""
    built = _build(fake_gcp_env, tmp_path, monkeypatch, with_sql=True)
    yield built
    built.sql.close()
