"""A Vertex AI step whose worker reaches the team's Cloud SQL store the way Google's would:
through the in-process connector, logging in to the database as the runner service account
(IAM database authentication), never straight to MariaDB.

The team is set up as bootstrap (--compute vertex) and `collab join --connector python` leave it:
an instance with IAM logins on, backed by the test MariaDB through the fake's TLS front; the
member and the runner account each have an IAM database user granted the team database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import STEPS_MODULE, team_repo

from zenml_collab import Pipeline, Repository
from zenml_collab.testing.fake_gcp import FakeGCP

pytestmark = [pytest.mark.docker, pytest.mark.mysql, pytest.mark.gcs, pytest.mark.slow]
PROJECT = "team-sql"
REGION = "europe-west1"
INSTANCE = "main"
CONNECTION = f"{PROJECT}:{REGION}:{INSTANCE}"
ADMIN = f"admin@{PROJECT}.iam.gserviceaccount.com"
RUNNER = f"collab-runner@{PROJECT}.iam.gserviceaccount.com"
MEMBER = f"ana@{PROJECT}.iam.gserviceaccount.com"
SQL_ROLES = ["roles/cloudsql.client", "roles/cloudsql.instanceUser"]


@dataclass
class SqlTeam:
    fake: FakeGCP
    root: Path
    database: str


def _admin_login(url: str) -> dict[str, Any]:
    import sqlalchemy

    parts = sqlalchemy.make_url(url)
    return {"host": parts.host or "127.0.0.1", "port": parts.port or 3306,
            "user": parts.username or "root", "password": parts.password or ""}


@pytest.fixture
def sql_team(fake_gcp: FakeGCP, tmp_path: Path, gcs_bucket: str, gcs_endpoint: str,
             step_image: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlTeam]:
    import pymysql
    import sqlalchemy
    from google.oauth2 import service_account

    from zenml_collab.config import LocalConfig, MetadataConfig, write_local_config
    from zenml_collab.core.metadata.store import MetadataStore
    from zenml_collab.infra.gcp.clients import sqladmin_client

    url = os.environ.get("COLLAB_TEST_MYSQL_URL")
    if not url:
        pytest.skip("COLLAB_TEST_MYSQL_URL is not set (run under scripts/test for MariaDB)")
    fake = fake_gcp
    fake.attach_mysql(url)
    fake.add_project(PROJECT, owner=ADMIN)
    fake.operation_polls["CREATE"] = 0
    admin_key = fake.add_member(ADMIN)
    member_key = fake.add_member(MEMBER, roles=["roles/aiplatform.user", *SQL_ROLES],
                                 project=PROJECT)
    fake.add_member(RUNNER, roles=SQL_ROLES, project=PROJECT)
    fake.vertex.grant_on_service_account(RUNNER, "roles/iam.serviceAccountUser",
                                         f"serviceAccount:{MEMBER}")
    # The job's container reaches the fake's Admin API and TLS front (host networking, the
    # fake's env); its artifacts go to the same fake-gcs-server as this process's.
    fake.vertex.container_env = {"STORAGE_EMULATOR_HOST": gcs_endpoint}
    for name, value in fake.env.items():
        if name != "STORAGE_EMULATOR_HOST":
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(member_key))
    monkeypatch.delenv("COLLAB_VERTEX_ALLOW_DIRECT_DB", raising=False)
    monkeypatch.setenv("COLLAB_VERTEX_POLL_MAX", "0.5")
    monkeypatch.setenv("COLLAB_STEP_IMAGE", step_image)
    monkeypatch.setenv("COLLAB_GCP_RETRY_INITIAL", "0.01")
    monkeypatch.setenv("COLLAB_GCP_POLL_INTERVAL", "0.01")

    database = f"zenml_{uuid.uuid4().hex[:10]}"
    creds = service_account.Credentials.from_service_account_file(
        str(admin_key), scopes=["https://www.googleapis.com/auth/cloud-platform"])
    sql = sqladmin_client(creds)
    try:
        sql.instances().insert(project=PROJECT, body={
            "name": INSTANCE, "region": REGION, "databaseVersion": "MYSQL_8_0",
            "settings": {"tier": "db-f1-micro", "databaseFlags": [
                {"name": "cloudsql_iam_authentication", "value": "on"}]}}).execute()
        sql.databases().insert(project=PROJECT, instance=INSTANCE,
                               body={"name": database}).execute()
        for email in (MEMBER, RUNNER):  # as join (member) and bootstrap --compute vertex do
            sql.users().insert(project=PROJECT, instance=INSTANCE, body={
                "name": email.removesuffix(".gserviceaccount.com"),
                "type": "CLOUD_IAM_SERVICE_ACCOUNT"}).execute()
    finally:
        sql.close()
    admin = _admin_login(url)
    conn = pymysql.connect(**admin, autocommit=True)
    try:
        with conn.cursor() as cur:
            for email in (MEMBER, RUNNER):  # Cloud SQL gives a new IAM user no rights
                cur.execute(f"GRANT ALL ON `{database}`.* TO %s@'%%'", (email.split("@")[0],))
    finally:
        conn.close()
    engine = sqlalchemy.create_engine(sqlalchemy.URL.create(
        "mysql+pymysql", username=admin["user"], password=admin["password"],
        host=admin["host"], port=admin["port"], database=database))
    MetadataStore(engine).upgrade("head")
    engine.dispose()

    metadata = {"kind": "cloudsql", "instance": CONNECTION, "database": database,
                "username": MEMBER.split("@")[0], "auth": "iam", "connector": "python"}
    root = team_repo(tmp_path / "ana", metadata=metadata, password=None,
                     artifacts=f"gs://{gcs_bucket}/team",
                     compute={"backend": "vertex", "vertex": {
                         "project": PROJECT, "region": REGION, "service_account": RUNNER}})
    # What `collab join --connector python` writes (local.yaml is not committed).
    write_local_config(root, LocalConfig(metadata=MetadataConfig(**metadata),
                                         credentials_file=str(member_key), connector="python"))
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(root)
    yield SqlTeam(fake, root, database)


def test_a_vertex_step_records_itself_through_the_connector_as_the_runner_account(
        sql_team: SqlTeam) -> None:
    import importlib

    s = importlib.import_module(STEPS_MODULE)
    p = Pipeline("vertex on cloud sql")
    p.add(s.numbers, params={"n": 6}, backend="local")
    p.add(s.total, inputs={"xs": "numbers"})
    repo = Repository(sql_team.root)
    assert repo.settings.metadata.kind == "cloudsql"
    try:
        run = p.run(repo)
        assert run.statuses == {"numbers": "executed", "total": "executed"}
        assert run.load("total") == 15
    finally:
        repo.metadata.close()  # no connector socket left for the garbage collector

    jobs = sql_team.fake.vertex.created()
    assert len(jobs) == 1 and jobs[0].state == "JOB_STATE_SUCCEEDED", jobs[0].logs[-3000:]
    env = {e["name"]: e["value"]
           for e in jobs[0].body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]}
    assert '"connector": "python"' in env["COLLAB_WORKER_STORES"]
    assert '"auth": "iam"' in env["COLLAB_WORKER_STORES"]
    assert "password" not in env["COLLAB_WORKER_STORES"]

    reader = Repository(sql_team.root).metadata
    try:
        rows = [r for r in reader.step_runs(run.id) if r.step_name == "total"]
    finally:
        reader.close()
    assert len(rows) == 1 and rows[0].status == "executed"
    assert rows[0].execution is not None and rows[0].execution.backend == "vertex"

    certs = [r for r in sql_team.fake.requests
             if r.method_id == "sql.connect.generateEphemeralCert" and r.status == 200]
    assert RUNNER in {r.member for r in certs}  # the worker's connector, as the runner
    assert MEMBER in {r.member for r in certs}  # this process's, as the member
