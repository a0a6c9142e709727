"""pytest fixtures for the services ``scripts/test`` starts (MariaDB, fake-gcs-server, dockerd).

Each fixture skips, saying which variable is missing, when run outside ``scripts/test``.

========================  ========  ==========================================================
fixture                   scope     gives
========================  ========  ==========================================================
``mysql_server``          session   :class:`MySQLServer`: host, port, root login, ``restart()``
``mysql_url``             function  SQLAlchemy ``URL`` of a fresh, empty database (dropped after)
``gcs_endpoint``          session   ``http://127.0.0.1:PORT`` of fake-gcs-server
``gcs_bucket``            function  name of a fresh bucket; ``STORAGE_EMULATOR_HOST`` is set
``docker_client``         session   ``docker.DockerClient`` of the private dockerd
``proxy_image``           session   tag of the local Cloud SQL Auth Proxy stand-in image
========================  ========  ==========================================================

The URL from ``mysql_url`` hides its password in ``str()`` (SQLAlchemy's own rule); pass the
URL object itself to ``create_engine`` or use ``url.render_as_string(hide_password=False)``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from zenml_collab.testing.services import STATE_ENV, MySQLControl

__all__ = [
    "MySQLServer",
    "docker_client",
    "gcs_bucket",
    "gcs_endpoint",
    "mysql_server",
    "mysql_url",
    "proxy_image",
]

_OUTSIDE = "run the tests with scripts/test, which starts the services"


def _require_env(name: str, what: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.skip(f"{what}: {name} is not set ({_OUTSIDE})")
    return value


@dataclass(frozen=True)
class MySQLServer:
    """The session's MariaDB, logged in as root over TCP on 127.0.0.1."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    socket: str = ""
    state_file: Path | None = None

    def url(self, database: str = "") -> Any:
        """SQLAlchemy ``URL`` (``mysql+pymysql``, utf8mb4) of ``database`` on this server."""
        from sqlalchemy.engine import URL

        return URL.create(
            "mysql+pymysql",
            username=self.user,
            password=self.password,
            host=self.host,
            port=self.port,
            database=database or None,
            query={"charset": "utf8mb4"},
        )

    def connect(self, database: str = "") -> Any:
        """A raw autocommit ``pymysql`` connection (the caller closes it)."""
        import pymysql

        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database or None,
            autocommit=True,
            connect_timeout=10,
        )

    def _control(self) -> MySQLControl:
        if self.state_file is None or not self.state_file.exists():
            pytest.skip(f"restarting MariaDB needs {STATE_ENV} ({_OUTSIDE})")
        return MySQLControl(self.state_file)

    def stop(self) -> None:
        """Shut the server down cleanly (fault tests); :meth:`start` brings it back."""
        self._control().stop()

    def start(self) -> None:
        """Start the server again with the same datadir and port; waits until it answers."""
        self._control().start()

    def restart(self) -> None:
        """Stop and start the server; open connections see it go away."""
        self._control().restart()


@pytest.fixture(scope="session")
def mysql_server() -> MySQLServer:
    """The test MariaDB (see :class:`MySQLServer`)."""
    from sqlalchemy.engine import make_url

    url = make_url(_require_env("COLLAB_TEST_MYSQL_URL", "needs MariaDB"))
    state_path = os.environ.get(STATE_ENV)
    state_file = Path(state_path) if state_path else None
    socket = ""
    if state_file and state_file.exists():
        socket = json.loads(state_file.read_text())["mysql"]["socket"]
    return MySQLServer(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        socket=socket,
        state_file=state_file,
    )


def _ensure_running(server: MySQLServer) -> None:
    # A fault test that failed between stop() and start() must not take the rest down.
    if server.state_file and server.state_file.exists():
        MySQLControl(server.state_file).start()


@pytest.fixture
def mysql_url(mysql_server: MySQLServer) -> Iterator[Any]:
    """URL of a new, uniquely named empty database; dropped (and its sessions killed) after."""
    _ensure_running(mysql_server)
    name = f"t_{uuid.uuid4().hex[:16]}"
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    finally:
        conn.close()
    yield mysql_server.url(name)
    _ensure_running(mysql_server)
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cursor:
            # A connection the test leaked would make DROP DATABASE wait on its metadata lock.
            cursor.execute(
                "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
                (name,),
            )
            for (session_id,) in cursor.fetchall():
                cursor.execute(f"KILL {int(session_id)}")
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


@pytest.fixture(scope="session")
def gcs_endpoint() -> str:
    """Base URL of fake-gcs-server (plain HTTP on 127.0.0.1)."""
    return _require_env("COLLAB_TEST_GCS_ENDPOINT", "needs fake-gcs-server").rstrip("/")


def _gcs_call(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


@pytest.fixture
def gcs_bucket(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Name of a new empty bucket on fake-gcs-server; it and its objects are deleted after."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    name = f"collab-test-{uuid.uuid4().hex[:16]}"
    _gcs_call("POST", f"{gcs_endpoint}/storage/v1/b?project=collab-test", {"name": name})
    yield name
    base = f"{gcs_endpoint}/storage/v1/b/{name}"
    try:
        page_token = ""
        while True:
            query = "?versions=true" + (f"&pageToken={page_token}" if page_token else "")
            listing = _gcs_call("GET", f"{base}/o{query}") or {}
            for item in listing.get("items", []):
                object_name = urllib.parse.quote(item["name"], safe="")
                _gcs_call("DELETE", f"{base}/o/{object_name}")
            page_token = listing.get("nextPageToken", "")
            if not page_token:
                break
        _gcs_call("DELETE", base)
    except urllib.error.HTTPError as exc:
        if exc.code != 404:  # the test may have deleted the bucket itself
            raise


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A ``docker.DockerClient`` of the daemon ``scripts/test`` started (``DOCKER_HOST``)."""
    if os.environ.get("COLLAB_TEST_DOCKER") != "1":
        reason = os.environ.get("COLLAB_TEST_DOCKER_SKIP_REASON") or _OUTSIDE
        pytest.skip(f"needs a docker daemon: COLLAB_TEST_DOCKER is not 1 ({reason})")
    import docker

    client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST"), timeout=60)
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def proxy_image(docker_client: Any) -> str:
    """Tag of the locally built Cloud SQL Auth Proxy stand-in (no registry in tests)."""
    tag = _require_env("COLLAB_TEST_PROXY_IMAGE", "needs the proxy stand-in image")
    docker_client.images.get(tag)
    return tag
