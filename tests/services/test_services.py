"""The services scripts/test starts are reachable through the fixtures, with the real clients."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from zenml_collab.testing.fixtures_services import MySQLServer


@pytest.mark.mysql
def test_mariadb_answers_select_1_over_tcp(mysql_server: MySQLServer) -> None:
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1, VERSION()")
            one, version = cursor.fetchone()
    finally:
        conn.close()
    assert one == 1
    assert "MariaDB" in version


@pytest.mark.mysql
def test_mysql_url_is_a_fresh_empty_database_sqlalchemy_can_use(mysql_url: Any) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(mysql_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SHOW TABLES")).fetchall() == []
            conn.execute(sa.text("CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20))"))
            conn.execute(sa.text("INSERT INTO t VALUES (1, 'ünï')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM t")).scalar_one() == "ünï"
            assert conn.execute(sa.text("SELECT DATABASE()")).scalar_one() == mysql_url.database
    finally:
        engine.dispose()


@pytest.mark.mysql
def test_mysql_url_database_is_dropped_after_the_test(mysql_server: MySQLServer) -> None:
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE 't\\_%'")
            leftovers = cursor.fetchall()
    finally:
        conn.close()
    # Earlier tests in this module used mysql_url: their databases must be gone.
    assert leftovers == ()


@pytest.mark.mysql
def test_mysql_url_hides_the_password_when_printed(mysql_url: Any) -> None:
    assert mysql_url.password
    assert mysql_url.password not in str(mysql_url)
    assert mysql_url.password not in repr(mysql_url)


@pytest.mark.mysql
@pytest.mark.slow
def test_restart_keeps_data_and_serves_new_connections(mysql_server: MySQLServer, mysql_url: Any) -> None:
    import pymysql

    database = mysql_url.database
    conn = mysql_server.connect(database)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE kept (v INT)")
        cursor.execute("INSERT INTO kept VALUES (42)")
    mysql_server.restart()
    # The old session died with the server...
    with pytest.raises(pymysql.err.OperationalError), conn.cursor() as cursor:
        cursor.execute("SELECT v FROM kept")
    conn.close()
    # ...a new one sees the committed row.
    conn = mysql_server.connect(database)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT v FROM kept")
            assert cursor.fetchone() == (42,)
    finally:
        conn.close()


@pytest.mark.gcs
def test_gcs_bucket_round_trips_an_object_with_google_cloud_storage(gcs_bucket: str) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="collab-test", credentials=AnonymousCredentials())
    bucket = client.bucket(gcs_bucket)
    payload = uuid.uuid4().bytes * 1000
    bucket.blob("dir/data.bin").upload_from_string(payload)
    assert bucket.blob("dir/data.bin").download_as_bytes() == payload
    assert [b.name for b in client.list_blobs(gcs_bucket)] == ["dir/data.bin"]


@pytest.mark.gcs
def test_gcs_if_generation_match_zero_refuses_to_overwrite(gcs_bucket: str) -> None:
    from google.api_core.exceptions import PreconditionFailed
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="collab-test", credentials=AnonymousCredentials())
    blob = client.bucket(gcs_bucket).blob("once")
    blob.upload_from_string(b"first", if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        blob.upload_from_string(b"second", if_generation_match=0)
    assert blob.download_as_bytes() == b"first"


@pytest.mark.gcs
def test_gcs_bucket_fixture_creates_a_new_empty_bucket(gcs_bucket: str) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="collab-test", credentials=AnonymousCredentials())
    assert client.bucket(gcs_bucket).exists()
    assert list(client.list_blobs(gcs_bucket)) == []


@pytest.mark.docker
def test_docker_daemon_reports_its_version(docker_client: Any) -> None:
    version = docker_client.version()
    assert version["ApiVersion"]
    assert docker_client.ping() is True


@pytest.mark.docker
def test_proxy_stand_in_image_is_present_and_labelled(docker_client: Any, proxy_image: str) -> None:
    from zenml_collab.testing.standin_proxy import STANDIN_LABEL

    image = docker_client.images.get(proxy_image)
    assert image.labels.get(STANDIN_LABEL) == "1"
