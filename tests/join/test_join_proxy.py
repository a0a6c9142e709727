"""`collab join --connector proxy` and `collab proxy ...` on a real docker daemon.

The stand-in proxy image (built by scripts/test) forwards to the test MariaDB's unix socket, so
the member really opens the metadata store through the container as their IAM database user.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.join.conftest import CONNECTION, Team
from tests.join.test_join import collab
from zenml_collab.actions.join import JoinRequest, JoinResult, join
from zenml_collab.config import file_mode, load_local_config
from zenml_collab.infra.proxy import (
    CREDENTIALS_MOUNT,
    container_name,
    find_free_port,
    proxy_status,
    stop_proxy,
)

pytestmark = [pytest.mark.docker, pytest.mark.mysql]


@pytest.fixture
def clones(team: Team, docker_client: Any) -> Iterator[list[Path]]:
    """Clones made by the test; their proxy containers are removed afterwards."""
    made: list[Path] = []
    yield made
    for root in made:
        stop_proxy(docker_client, repo_root=root, timeout=1)


@pytest.fixture
def standin(proxy_image: str, mysql_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """JoinRequest arguments that make the stand-in forward to MariaDB's socket."""
    if not mysql_server.socket:
        pytest.skip("needs the MariaDB socket path from scripts/test's state file")
    monkeypatch.setenv("COLLAB_PROXY_IMAGE", proxy_image)
    sock = Path(mysql_server.socket)
    return {"proxy_extra_args": (f"--standin-target=unix:/cloudsql/{sock.name}",),
            "proxy_extra_mounts": {str(sock.parent): "/cloudsql"}}


def test_proxy_join_starts_a_ready_container_the_store_works_through_and_reuses_it(
    team: Team, clones: list[Path], standin: dict[str, Any], docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    member = team.member("frank")
    repo = team.repo("frank")
    clones.append(repo)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(member.key_file))
    port = find_free_port()
    request = JoinRequest(start=repo, connector="proxy", port=port, **standin)
    progress: list[str] = []

    first = join(request, on_progress=progress.append)
    assert isinstance(first, JoinResult)
    assert first.proxy is not None and first.proxy.ready and not first.proxy.reused
    # Bootstrap set up the store: the join finds it, the one collab.yaml names.
    assert first.schema.state == "current" and not first.schema.initialised
    assert first.schema.store_id == team.store_id and team.store_id is not None
    assert any("proxy" in line for line in progress)

    attrs = docker_client.containers.get(first.proxy.container_id).attrs
    assert attrs["Name"] == f"/{container_name(repo)}"
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    # Host networking, the proxy bound to 127.0.0.1: no bridge address another container or
    # the host's other interfaces could reach (tests/infra/test_proxy_exposure.py probes it).
    assert attrs["HostConfig"]["NetworkMode"] == "host" and first.proxy.network == "host"
    args = attrs["Args"]
    assert (args[args.index("--address") + 1], args[args.index("--port") + 1]) == (
        "127.0.0.1", str(port))
    (mount,) = [m for m in attrs["Mounts"] if m["Destination"] == CREDENTIALS_MOUNT]
    assert mount["Source"] == str(member.key_file.resolve()) and mount["RW"] is False
    assert not any("TOKEN" in item for item in attrs["Config"]["Env"])
    assert attrs["Args"][0] == CONNECTION and "--auto-iam-authn" in attrs["Args"]

    local = load_local_config(repo)
    assert (local.connector, local.proxy_port) == ("proxy", port)
    assert local.metadata is not None and local.metadata.kind == "mysql"
    assert (local.metadata.host, local.metadata.port) == ("127.0.0.1", port)
    assert local.metadata.username == member.login and local.metadata.password is None
    assert file_mode(repo / ".collab" / "local.yaml") == 0o600

    # The member's store, opened the ordinary way, goes through the container as their login.
    from zenml_collab.core.repository import Repository

    store = Repository(repo).metadata
    with store.engine.connect() as conn:
        import sqlalchemy as sa

        assert conn.execute(sa.text("SELECT CURRENT_USER()")).scalar() == f"{member.login}@%"
    store.engine.dispose()

    written = (repo / ".collab" / "local.yaml").read_bytes()
    second = join(request)
    assert isinstance(second, JoinResult) and second.unchanged
    assert second.proxy is not None and second.proxy.reused
    assert second.proxy.container_id == first.proxy.container_id
    assert (repo / ".collab" / "local.yaml").read_bytes() == written


def test_proxy_commands_show_status_and_logs_stop_and_start_the_container(
    team: Team, clones: list[Path], standin: dict[str, Any], docker_client: Any,
    monkeypatch: pytest.MonkeyPatch, proxy_image: str,
) -> None:
    member = team.member("gina")
    repo = team.repo("gina")
    clones.append(repo)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(member.key_file))
    joined = join(JoinRequest(start=repo, connector="proxy", port=find_free_port(), **standin))
    assert isinstance(joined, JoinResult) and joined.proxy is not None
    env = {**member.env, "COLLAB_PROXY_IMAGE": proxy_image}

    status = collab(repo, "proxy", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["ready"] and shown["port"] == joined.proxy.port
    assert shown["connection_name"] == CONNECTION

    logs = collab(repo, "proxy", "logs", "--tail", "50", env=env)
    assert "ready for new connections" in logs.stdout

    stopped = collab(repo, "proxy", "stop", env=env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert proxy_status(docker_client, repo_root=repo).state == "absent"
    assert "not running" in collab(repo, "proxy", "status", env=env).stdout

    started = collab(repo, "proxy", "start", env=env)
    assert started.returncode == 0, started.stderr
    after = proxy_status(docker_client, repo_root=repo)
    assert after.ready and after.port == joined.proxy.port
    again = collab(repo, "proxy", "start", env=env)
    assert "already running" in again.stdout
    assert proxy_status(docker_client, repo_root=repo).container_id == after.container_id


def test_port_in_use_is_refused_before_start_with_a_free_port_offered(
    team: Team, clones: list[Path], proxy_image: str, docker_client: Any,
) -> None:
    member = team.member("hank")
    repo = team.repo("hank")
    clones.append(repo)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        done = collab(repo, "join", "--connector", "proxy", "--port", str(taken),
                      env={**member.env, "COLLAB_PROXY_IMAGE": proxy_image})
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"port {taken} on 127.0.0.1 is already in use" in done.stderr
    assert "collab join --port " in done.stderr
    assert proxy_status(docker_client, repo_root=repo).state == "absent"
    assert not (repo / ".collab").exists()


def test_missing_proxy_image_is_a_clear_error_and_nothing_starts(
    team: Team, clones: list[Path], docker_client: Any,
) -> None:
    member = team.member("ivy")
    repo = team.repo("ivy")
    clones.append(repo)
    missing = "collab-test/no-such-proxy:0"
    done = collab(repo, "join", "--connector", "proxy",
                  env={**member.env, "COLLAB_PROXY_IMAGE": missing})
    assert done.returncode == 1, done.stdout + done.stderr
    assert missing in done.stderr and "COLLAB_PROXY_IMAGE" in done.stderr
    assert "--connector python" in done.stderr
    assert proxy_status(docker_client, repo_root=repo).state == "absent"
    assert not (repo / ".collab").exists()


def test_member_without_permissions_gets_no_container_and_no_files(
    team: Team, clones: list[Path], proxy_image: str, docker_client: Any,
) -> None:
    member = team.member("jack", roles=("roles/cloudsql.client",), db_user=False)
    repo = team.repo("jack")
    clones.append(repo)
    done = collab(repo, "join", "--connector", "proxy",
                  env={**member.env, "COLLAB_PROXY_IMAGE": proxy_image})
    assert done.returncode == 3, done.stdout + done.stderr
    assert "cloudsql.instances.login" in done.stderr
    assert "roles/cloudsql.instanceUser" in done.stderr
    assert proxy_status(docker_client, repo_root=repo).state == "absent"
    assert not (repo / ".collab").exists()
