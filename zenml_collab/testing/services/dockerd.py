"""A private dockerd per test run: own socket, data root and bridge; no iptables."""

from __future__ import annotations

import os
import random
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from zenml_collab.testing.services._process import log, spawn, terminate, wait_for

PROXY_IMAGE_TAG = "collab-test/cloud-sql-proxy:standin"


@dataclass
class DockerState:
    """A private dockerd: its socket, its data, and the bridge it owns."""

    host: str = ""
    pid: int = 0
    bridge: str = ""
    data_root: str = ""
    skip_reason: str = ""
    proxy_image: str = ""


def _free_subnet() -> str:
    """A 172.31.x.0/24 no interface or route uses yet (several daemons may share this host)."""
    used = subprocess.run(["ip", "-o", "route"], capture_output=True, text=True, check=False).stdout
    used += subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=False).stdout
    candidates = [n for n in range(100, 250) if f"172.31.{n}." not in used]
    if not candidates:
        raise RuntimeError("no free 172.31.x.0/24 subnet for the docker bridge")
    return f"172.31.{random.choice(candidates)}"


def launch_dockerd(base: Path) -> DockerState:
    """Start dockerd on a private socket, data root and bridge; do not wait for it yet.

    Its own bridge (not ``docker0``) so two runs on one host do not fight over it; no
    iptables/NAT, so containers reach nothing beyond this host. Published ports still work:
    docker's userland proxy listens on 127.0.0.1 and forwards into the container.
    """
    if not shutil.which("dockerd"):
        return DockerState(skip_reason="dockerd is not installed")
    if not shutil.which("ip"):
        return DockerState(skip_reason="the `ip` command (iproute2) is missing")
    base.mkdir(parents=True, exist_ok=True)
    bridge = f"ctb{secrets.token_hex(4)}"
    prefix = _free_subnet()
    try:
        for cmd in (
            ["ip", "link", "add", "name", bridge, "type", "bridge"],
            ["ip", "addr", "add", f"{prefix}.1/24", "dev", bridge],
            ["ip", "link", "set", bridge, "up"],
        ):
            subprocess.run(cmd, capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError as exc:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
        return DockerState(skip_reason=f"cannot create a bridge here: {exc.stderr.strip()}")
    sock = base / "docker.sock"
    argv = [
        "dockerd",
        f"--data-root={base / 'data'}",
        f"--exec-root={base / 'exec'}",
        f"--pidfile={base / 'dockerd.pid'}",
        f"--host=unix://{sock}",
        f"--bridge={bridge}",
        "--iptables=false",
        "--ip-masq=false",
        # Nothing a container sends may leave this host: no NAT and no routing off the bridge.
        "--ip-forward=false",
        "--ip6tables=false" if _dockerd_knows("--ip6tables") else "--ipv6=false",
    ]
    pid = spawn(argv, base / "dockerd.log")
    return DockerState(host=f"unix://{sock}", pid=pid, bridge=bridge, data_root=str(base))


def _dockerd_knows(flag: str) -> bool:
    out = subprocess.run(["dockerd", "--help"], capture_output=True, text=True, check=False)
    return flag in out.stdout


def _docker_ready(host: str) -> bool:
    env = {**os.environ, "DOCKER_HOST": host}
    cli = shutil.which("docker")
    if cli:
        result = subprocess.run([cli, "info"], capture_output=True, env=env, check=False)
        return result.returncode == 0
    import docker

    try:
        docker.DockerClient(base_url=host).ping()
    except Exception:
        return False
    return True


def finish_dockerd(state: DockerState) -> None:
    """Wait for the daemon launched by :func:`launch_dockerd`, then build the proxy stand-in."""
    if state.skip_reason:
        return
    log_file = Path(state.data_root) / "dockerd.log"
    try:
        wait_for("dockerd", lambda: _docker_ready(state.host), 60, state.pid, log_file)
    except RuntimeError as exc:
        stop_dockerd(state)
        lines = str(exc).splitlines()
        state.skip_reason = f"dockerd cannot run here: {lines[0]}; last log line: {lines[-1]}"
        return
    import docker

    from zenml_collab.testing.standin_proxy import build_standin_image

    client = docker.DockerClient(base_url=state.host)
    try:
        state.proxy_image = build_standin_image(client, PROXY_IMAGE_TAG)
    except Exception as exc:  # the daemon is still useful without the stand-in
        log(f"could not build the proxy stand-in image: {exc}")
    finally:
        client.close()


def stop_dockerd(state: DockerState) -> None:
    if state.pid:
        terminate(state.pid, timeout=30)
    if state.bridge:
        subprocess.run(["ip", "link", "del", state.bridge], capture_output=True, check=False)
