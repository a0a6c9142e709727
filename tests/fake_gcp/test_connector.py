"""cloud-sql-python-connector through the fake's API and TLS front to the test MariaDB."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from tests.fake_gcp.conftest import PROJECT, create_instance
from zenml_collab.testing.fake_gcp import FakeGCP

pytestmark = pytest.mark.mysql
CONNECTION = f"{PROJECT}:europe-west1:main"
SQL_SCOPES = ["https://www.googleapis.com/auth/sqlservice.admin"]


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    """Unique database / user names on the shared MariaDB, dropped afterwards."""
    import pymysql

    if not os.environ.get("COLLAB_TEST_MYSQL_URL"):
        pytest.skip("COLLAB_TEST_MYSQL_URL is not set (run under scripts/test for MariaDB)")
    suffix = uuid.uuid4().hex[:8]
    made = {"db": f"collab_{suffix}", "user": f"u_{suffix}", "sa": f"sa-{suffix}"}
    yield made
    url = urlsplit(os.environ["COLLAB_TEST_MYSQL_URL"])
    conn = pymysql.connect(host=url.hostname, port=url.port or 3306,
                           user=unquote(url.username or "root"),
                           password=unquote(url.password or ""), autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{made['db']}`")
        for user in (made["user"], made["sa"]):
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
    conn.close()


@pytest.fixture
def instance(fake_gcp_mysql: FakeGCP, gcp: FakeGCP, sqladmin_for: Callable[..., Any],
             names: dict[str, str]) -> Any:
    """A RUNNABLE instance with IAM authentication on, a database and a built-in user."""
    sql = sqladmin_for()
    create_instance(sql, flags={"cloudsql_iam_authentication": "on"})
    sql.databases().insert(project=PROJECT, instance="main", body={"name": names["db"]}).execute()
    sql.users().insert(project=PROJECT, instance="main",
                       body={"name": names["user"], "password": "pw-" + names["user"]}).execute()
    return sql


@contextlib.contextmanager
def open_connector(credentials: Any, endpoint: str) -> Iterator[Any]:
    """A Connector on an event loop we own: the connector stops a loop it made itself but
    never closes it, which leaks its self-pipe (a ResourceWarning, an error in our tests)."""
    from google.cloud.sql.connector import Connector

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    connector = Connector(credentials=credentials, sqladmin_api_endpoint=endpoint, loop=loop)
    try:
        yield connector
    finally:
        connector.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def _member_credentials(gcp: FakeGCP, email: str, roles: tuple[str, ...]) -> Any:
    from google.oauth2 import service_account

    key_file = gcp.add_member(email, roles=roles, project=PROJECT)
    return service_account.Credentials.from_service_account_file(str(key_file),
                                                                 scopes=SQL_SCOPES)


def test_connector_runs_select_1_with_a_built_in_user(
    gcp: FakeGCP, instance: Any, names: dict[str, str]
) -> None:
    creds = _member_credentials(gcp, f"{names['sa']}@proj-a.iam.gserviceaccount.com",
                                ("roles/cloudsql.client",))
    with open_connector(creds, gcp.url) as connector:
        conn = connector.connect(CONNECTION, "pymysql", user=names["user"],
                                 password="pw-" + names["user"], db=names["db"])
        with conn.cursor() as cur:
            cur.execute("SELECT 1, DATABASE()")
            row = cur.fetchone()
        conn.close()
    assert row == (1, names["db"])
    assert gcp.tls_front.connections == 1


def test_connector_logs_in_an_iam_service_account_without_password(
    gcp: FakeGCP, instance: Any, names: dict[str, str]
) -> None:

    email = f"{names['sa']}@proj-a.iam.gserviceaccount.com"
    instance.users().insert(project=PROJECT, instance="main",
                            body={"name": email, "type": "CLOUD_IAM_SERVICE_ACCOUNT"}).execute()
    creds = _member_credentials(gcp, email,
                                ("roles/cloudsql.client", "roles/cloudsql.instanceUser"))
    with open_connector(creds, gcp.url) as connector:
        conn = connector.connect(CONNECTION, "pymysql", user=email, enable_iam_auth=True)
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            (current,) = cur.fetchone()
        conn.close()
    assert current == f"{names['sa']}@%"


def test_iam_login_without_instance_user_role_is_denied(
    gcp: FakeGCP, instance: Any, names: dict[str, str]
) -> None:
    import pymysql

    email = f"{names['sa']}@proj-a.iam.gserviceaccount.com"
    instance.users().insert(project=PROJECT, instance="main",
                            body={"name": email, "type": "CLOUD_IAM_SERVICE_ACCOUNT"}).execute()
    creds = _member_credentials(gcp, email, ("roles/cloudsql.client",))
    with open_connector(creds, gcp.url) as connector, \
            pytest.raises(pymysql.err.OperationalError) as denied:
        connector.connect(CONNECTION, "pymysql", user=email, enable_iam_auth=True)
    assert denied.value.args[0] == 1045
    assert f"Access denied for user '{names['sa']}'" in denied.value.args[1]


def test_connector_without_connect_permission_surfaces_googles_refusal(
    gcp: FakeGCP, instance: Any, names: dict[str, str]
) -> None:
    import aiohttp
    creds = _member_credentials(gcp, f"{names['sa']}@proj-a.iam.gserviceaccount.com",
                                ("roles/viewer",))
    with open_connector(creds, gcp.url) as connector, \
            pytest.raises(aiohttp.ClientResponseError) as refused:
        connector.connect(CONNECTION, "pymysql", user=names["user"], password="x")
    assert refused.value.status == 403
    assert refused.value.message == "The client is not authorized to make this request."
    assert gcp.tls_front.connections == 0


def test_stopping_the_fake_drops_what_it_created_on_mysql(names: dict[str, str]) -> None:
    import pymysql

    url = os.environ["COLLAB_TEST_MYSQL_URL"]
    parts = urlsplit(url)
    with FakeGCP() as fake:
        fake.attach_mysql(url)
        fake.operation_polls["CREATE"] = 0
        fake.add_project(PROJECT, owner="root@proj-a.iam.gserviceaccount.com")
        session_token = fake.token_for("root@proj-a.iam.gserviceaccount.com")
        import requests

        headers = {"Authorization": f"Bearer {session_token}"}
        base = f"{fake.url}/v1/projects/{PROJECT}/instances"
        requests.post(base, json={"name": "main"}, headers=headers, timeout=10)
        requests.post(f"{base}/main/databases", json={"name": names["db"]}, headers=headers,
                      timeout=10)
        requests.post(f"{base}/main/users", json={"name": names["user"], "password": "p"},
                      headers=headers, timeout=10)
        conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                               user=unquote(parts.username or "root"),
                               password=unquote(parts.password or ""))
        with conn.cursor() as cur:
            during = cur.execute("SHOW DATABASES LIKE %s", (names["db"],))
        conn.close()
    conn = pymysql.connect(host=parts.hostname, port=parts.port or 3306,
                           user=unquote(parts.username or "root"),
                           password=unquote(parts.password or ""))
    with conn.cursor() as cur:
        after = cur.execute("SHOW DATABASES LIKE %s", (names["db"],))
        users = cur.execute("SELECT 1 FROM mysql.user WHERE User = %s", (names["user"],))
    conn.close()
    assert (during, after, users) == (1, 0, 0)


def test_the_metadata_store_runs_a_pipeline_over_the_connector_with_iam_login(
    gcp: FakeGCP, instance: Any, names: dict[str, str], tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The product's `cloudsql` store kind: connector on its own loop, IAM login, real runs."""
    import gc
    import warnings

    from zenml_collab.config import MetadataConfig
    from zenml_collab.core.metadata.engine import create_engine_for
    from zenml_collab.core.metadata.store import HEAD_REVISION, MetadataStore

    email = f"{names['sa']}@proj-a.iam.gserviceaccount.com"
    instance.users().insert(project=PROJECT, instance="main",
                            body={"name": email, "type": "CLOUD_IAM_SERVICE_ACCOUNT"}).execute()
    key = gcp.add_member(email, roles=("roles/cloudsql.client", "roles/cloudsql.instanceUser"),
                         project=PROJECT)
    _grant_database(names["db"], names["sa"])  # as `collab bootstrap` does for IAM users
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    monkeypatch.setenv("COLLAB_SQLADMIN_ENDPOINT", gcp.url)
    cfg = MetadataConfig(kind="cloudsql", instance=CONNECTION, database=names["db"],
                         username=email, auth="iam")
    engine = create_engine_for(cfg, tmp_path)
    store = MetadataStore(engine)
    store.check_schema()  # an empty database is initialised through the connector
    assert store.revision() == HEAD_REVISION
    pipeline_id, created = store.register_pipeline(
        name="p", kind="pipeline", identity="x" * 64, config_json="{}", created_by=email,
        git_sha=None)
    assert created and pipeline_id >= 1
    assert gcp.tls_front.connections >= 1
    engine.dispose()
    del store, engine
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        gc.collect()  # the connector and its event loop are closed, not leaked


def _grant_database(database: str, user: str) -> None:
    import pymysql

    url = urlsplit(os.environ["COLLAB_TEST_MYSQL_URL"])
    conn = pymysql.connect(host=url.hostname, port=url.port or 3306,
                           user=unquote(url.username or "root"),
                           password=unquote(url.password or ""), autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@'%%'", (user,))
    conn.close()
