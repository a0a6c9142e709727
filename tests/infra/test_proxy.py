"""The Cloud SQL Auth Proxy container lifecycle, on a real docker daemon with the stand-in image."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zenml_collab.errors import ConfigError, ConnectivityError, CredentialsError
from zenml_collab.infra.proxy import (
    CREDENTIALS_MOUNT,
    container_name,
    find_free_port,
    port_in_use,
    proxy_logs,
    proxy_status,
    resolve_proxy_image,
    start_proxy,
    stop_proxy,
)
from zenml_collab.infra.proxy_network import choose_network, host_network_is_loopback

CONNECTION = "collab-test:europe-west1:collab"


@pytest.fixture
def repo_root(tmp_path: Path, docker_client: Any) -> Iterator[Path]:
    root = tmp_path / "repo"
    root.mkdir()
    yield root
    stop_proxy(docker_client, repo_root=root, timeout=2)


@pytest.fixture
def credentials(tmp_path: Path) -> Path:
    path = tmp_path / "key.json"
    path.write_text('{"type": "service_account", "client_email": "sa@collab-test.iam"}')
    path.chmod(0o600)
    return path


def _start(client: Any, repo_root: Path, credentials: Path, image: str, **kw: Any) -> Any:
    return start_proxy(
        client,
        repo_root=repo_root,
        connection_name=CONNECTION,
        credentials_file=credentials,
        port=kw.pop("port", None) or find_free_port(),
        image=image,
        **kw,
    )


def test_port_in_use_sees_a_listening_socket_and_find_free_port_does_not() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        assert port_in_use(taken)
    free = find_free_port()
    assert not port_in_use(free)


def test_container_name_is_stable_per_repository_and_differs_between_them(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert container_name(first) == container_name(tmp_path / "a" / ".." / "a")
    assert container_name(first) != container_name(second)
    assert container_name(first).startswith("collab-proxy-")


def test_image_override_from_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLLAB_PROXY_IMAGE", raising=False)
    assert resolve_proxy_image("example/proxy:1") == "example/proxy:1"
    assert resolve_proxy_image(None).startswith("gcr.io/cloud-sql-connectors/cloud-sql-proxy:")
    monkeypatch.setenv("COLLAB_PROXY_IMAGE", "local/proxy:dev")
    assert resolve_proxy_image("example/proxy:1") == "local/proxy:dev"


@pytest.mark.docker
def test_proxy_lifecycle_start_status_reuse_logs_stop(
    docker_client: Any, proxy_image: str, repo_root: Path, credentials: Path
) -> None:
    port = find_free_port()
    started = _start(docker_client, repo_root, credentials, proxy_image, port=port)
    assert started.ready and started.running and not started.reused
    assert (started.port, started.connection_name) == (port, CONNECTION)

    status = proxy_status(docker_client, repo_root=repo_root)
    assert status.ready and status.container_id == started.container_id

    container = docker_client.containers.get(started.container_id)
    started_at = container.attrs["State"]["StartedAt"]
    again = _start(docker_client, repo_root, credentials, proxy_image, port=port)
    assert again.reused and again.container_id == started.container_id
    container.reload()
    assert container.attrs["State"]["StartedAt"] == started_at  # not restarted

    # Through the published port we reach the proxy in the container.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        assert conn.makefile().readline().strip() == f"collab-standin-proxy {CONNECTION}"

    logs = proxy_logs(docker_client, repo_root=repo_root)
    assert "ready for new connections" in logs

    assert stop_proxy(docker_client, repo_root=repo_root, timeout=2) is True
    assert proxy_status(docker_client, repo_root=repo_root).state == "absent"
    assert not port_in_use(port)
    assert stop_proxy(docker_client, repo_root=repo_root) is False


@pytest.mark.docker
def test_proxy_uses_host_networking_bound_to_loopback_and_mounts_credentials_read_only(
    docker_client: Any, proxy_image: str, repo_root: Path, credentials: Path
) -> None:
    port = find_free_port()
    status = _start(docker_client, repo_root, credentials, proxy_image, port=port)
    assert status.network == "host"  # a rootful local Linux daemon: host networking is chosen
    attrs = docker_client.containers.get(status.container_id).attrs

    assert attrs["HostConfig"]["NetworkMode"] == "host"
    assert not attrs["HostConfig"].get("PortBindings")
    args = attrs["Args"]
    assert args[args.index("--address") + 1] == "127.0.0.1"
    assert args[args.index("--port") + 1] == str(port)
    assert args[args.index("--http-address") + 1] == "127.0.0.1"
    assert args[args.index("--http-port") + 1] == str(status.health_port)
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    (mount,) = [m for m in attrs["Mounts"] if m["Destination"] == CREDENTIALS_MOUNT]
    assert mount["Source"] == str(credentials.resolve()) and mount["RW"] is False
    env = dict(item.split("=", 1) for item in attrs["Config"]["Env"])
    assert env["GOOGLE_APPLICATION_CREDENTIALS"] == CREDENTIALS_MOUNT
    assert not any("TOKEN" in key for key in env)
    assert args[0] == CONNECTION and "--auto-iam-authn" in args and "--health-check" in args


@pytest.mark.docker
def test_isolated_mode_runs_on_a_network_of_its_own_published_on_loopback_only(
    docker_client: Any, proxy_image: str, repo_root: Path, credentials: Path
) -> None:
    port = find_free_port()
    status = _start(docker_client, repo_root, credentials, proxy_image, port=port,
                    network="isolated")
    assert status.ready and status.network == "isolated" and status.port == port
    attrs = docker_client.containers.get(status.container_id).attrs
    bindings = attrs["HostConfig"]["PortBindings"]
    assert {b["HostIp"] for entries in bindings.values() for b in entries} == {"127.0.0.1"}
    name = container_name(repo_root)
    assert set(attrs["NetworkSettings"]["Networks"]) == {name}
    network = docker_client.networks.get(name)
    assert [c.id for c in network.containers] == [status.container_id]
    assert network.attrs["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        assert conn.makefile().readline().strip() == f"collab-standin-proxy {CONNECTION}"

    assert stop_proxy(docker_client, repo_root=repo_root, timeout=2)
    assert not [n for n in docker_client.networks.list(names=[name]) if n.name == name]


def test_network_mode_follows_the_platform_and_the_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = {"OSType": "linux", "OperatingSystem": "Debian GNU/Linux 12", "SecurityOptions": []}
    local = "http+docker://localhost"
    assert host_network_is_loopback(engine, local) is sys.platform.startswith("linux")
    desktop = {**engine, "OperatingSystem": "Docker Desktop"}
    rootless = {**engine, "SecurityOptions": ["name=seccomp", "name=rootless"]}
    for info, url in ((desktop, local), (rootless, local), (engine, "https://10.0.0.5:2376")):
        assert not host_network_is_loopback(info, url)

    monkeypatch.setenv("COLLAB_PROXY_NETWORK", "isolated")
    assert choose_network(object()) == "isolated"  # the daemon is not even asked
    monkeypatch.setenv("COLLAB_PROXY_NETWORK", "bridge")
    with pytest.raises(ConfigError, match="host, isolated"):
        choose_network(object())


@pytest.mark.docker
def test_changed_settings_replace_the_running_proxy(
    docker_client: Any, proxy_image: str, repo_root: Path, credentials: Path
) -> None:
    first = _start(docker_client, repo_root, credentials, proxy_image)
    second = _start(docker_client, repo_root, credentials, proxy_image, auto_iam_authn=False)
    assert not second.reused and second.container_id != first.container_id
    assert "--auto-iam-authn" not in docker_client.containers.get(second.container_id).attrs["Args"]


@pytest.mark.docker
def test_port_already_in_use_is_refused_before_anything_starts(
    docker_client: Any, proxy_image: str, repo_root: Path, credentials: Path
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        with pytest.raises(ConnectivityError) as info:
            _start(docker_client, repo_root, credentials, proxy_image, port=taken)
    assert str(taken) in info.value.message
    assert info.value.hint and "collab join --port" in info.value.hint
    assert proxy_status(docker_client, repo_root=repo_root).state == "absent"


@pytest.mark.docker
def test_missing_image_gives_a_clear_error_and_pulls_nothing(
    docker_client: Any, repo_root: Path, credentials: Path
) -> None:
    missing = "collab-test/no-such-proxy:0"
    with pytest.raises(ConfigError) as info:
        _start(docker_client, repo_root, credentials, missing)
    assert missing in info.value.message
    assert info.value.hint and "COLLAB_PROXY_IMAGE" in info.value.hint
    assert proxy_status(docker_client, repo_root=repo_root).state == "absent"


@pytest.mark.docker
def test_proxy_that_dies_on_start_reports_its_last_words_and_is_removed(
    docker_client: Any, proxy_image: str, repo_root: Path, credentials: Path
) -> None:
    with pytest.raises(ConnectivityError) as info:
        _start(docker_client, repo_root, credentials, proxy_image, extra_args=["--no-such-flag"])
    assert "--no-such-flag" in info.value.message
    assert proxy_status(docker_client, repo_root=repo_root).state == "absent"


def test_bad_connection_name_and_missing_credentials_fail_before_docker(tmp_path: Path) -> None:
    client = object()  # never touched: the inputs are checked first
    with pytest.raises(ConfigError, match="project:region:instance"):
        start_proxy(
            client,
            repo_root=tmp_path,
            connection_name="collab",
            port=1,
            credentials_file=tmp_path,
            image="x",
        )
    with pytest.raises(CredentialsError):
        start_proxy(
            client,
            repo_root=tmp_path,
            connection_name=CONNECTION,
            port=1,
            credentials_file=tmp_path / "absent.json",
            image="x",
        )


@pytest.mark.docker
@pytest.mark.mysql
def test_mariadb_is_reachable_through_the_proxy_container(
    docker_client: Any, proxy_image: str, repo_root: Path, credentials: Path, mysql_server: Any
) -> None:
    if not mysql_server.socket:
        pytest.skip("needs the MariaDB socket path from scripts/test's state file")
    socket_dir = Path(mysql_server.socket).parent
    status = _start(
        docker_client,
        repo_root,
        credentials,
        proxy_image,
        extra_args=[f"--standin-target=unix:/cloudsql/{Path(mysql_server.socket).name}"],
        extra_mounts={str(socket_dir): "/cloudsql"},
    )
    import pymysql

    conn = pymysql.connect(
        host="127.0.0.1",
        port=status.port,
        user=mysql_server.user,
        password=mysql_server.password,
        connect_timeout=10,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
    finally:
        conn.close()
