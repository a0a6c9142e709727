"""Only the member's loopback reaches the proxy: not the host's other addresses (the docker
bridge gateway, the LAN address) and not another container. Real containers on dockerd."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zenml_collab.infra.proxy import (
    DB_PORT,
    HEALTH_PORT,
    find_free_port,
    start_proxy,
    stop_proxy,
)

CONNECTION = "collab-test:europe-west1:collab"
pytestmark = pytest.mark.docker


def _host_addresses() -> list[str]:
    """Every IPv4 address of this host except loopback (bridges included)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True,
                         check=True).stdout
    found = [line.split()[3].split("/")[0] for line in out.splitlines() if " inet " in line]
    return [ip for ip in found if not ip.startswith("127.")]


def _probes(proxy: Any, docker_client: Any) -> list[tuple[str, int]]:
    """(address, port) pairs nobody but the member's loopback may reach: the proxy's ports on
    every host address, and every port it could listen on at any address docker gave it."""
    attrs = docker_client.containers.get(proxy.container_id).attrs
    own = [n.get("IPAddress") for n in attrs["NetworkSettings"]["Networks"].values()]
    ports = (proxy.port, proxy.health_port)
    return ([(ip, p) for ip in _host_addresses() for p in ports]
            + [(ip, p) for ip in own if ip for p in (*ports, DB_PORT, HEALTH_PORT)])


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def proxy(docker_client: Any, proxy_image: str, tmp_path: Path) -> Iterator[Any]:
    repo = tmp_path / "repo"
    repo.mkdir()
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account"}')
    key.chmod(0o600)
    status = start_proxy(docker_client, repo_root=repo, connection_name=CONNECTION,
                         credentials_file=key, port=find_free_port(), image=proxy_image)
    yield status
    stop_proxy(docker_client, repo_root=repo, timeout=2)


@pytest.fixture
def control_port() -> Iterator[int]:
    """A listener on every address: proves each probe below could reach something."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen(16)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(timeout=2)
    server.close()


def test_proxy_answers_on_loopback_and_refuses_on_every_other_host_address(
    proxy: Any, control_port: int, docker_client: Any,
) -> None:
    addresses = _host_addresses()
    assert addresses, "this host has no non-loopback IPv4 address to probe"
    assert _answers("127.0.0.1", proxy.port) and _answers("127.0.0.1", proxy.health_port)
    for address in addresses:
        assert _answers(address, control_port), address  # the probe itself works
    answering = [probe for probe in _probes(proxy, docker_client) if _answers(*probe)]
    assert answering == []


def test_another_container_cannot_reach_the_proxy(
    proxy: Any, control_port: int, docker_client: Any, proxy_image: str,
) -> None:
    targets = [*(f"{ip} {port}" for ip, port in _probes(proxy, docker_client)),
               f"127.0.0.1 {proxy.port}"]  # the container's own loopback is its own
    controls = [f"{ip} {control_port}" for ip in _host_addresses()]
    script = "; ".join(
        f"if nc -w 2 {t} </dev/null >/dev/null 2>&1; then echo 'OPEN {t}'; "
        f"else echo 'CLOSED {t}'; fi" for t in [*controls, *targets])
    # A busybox container on the default bridge network, as any other local container runs.
    output = docker_client.containers.run(
        proxy_image, entrypoint=["/bin/sh", "-c"], command=[script], remove=True,
        network_mode="bridge").decode()
    lines = set(output.splitlines())
    for target in controls:
        assert f"OPEN {target}" in lines, output  # the container reaches the host at all
    for target in targets:
        assert f"CLOSED {target}" in lines, output
