"""Where the Cloud SQL Auth Proxy container listens, so that only the member's loopback reaches it.

With ``--auto-iam-authn`` whoever reaches the proxy's port logs in as the member.

How the port is kept on the member's loopback (:func:`choose_network`, override with
``COLLAB_PROXY_NETWORK=host|isolated``):

* ``host`` (Linux with a local, rootful Docker Engine): host networking, the proxy itself binds
  ``--address 127.0.0.1 --port <port>`` and its health check ``--http-address 127.0.0.1``. No
  bridge address exists, so neither the host's other addresses nor any container can connect
  (a container's own 127.0.0.1 is its own namespace). Bridge networking with a port published
  on 127.0.0.1 is *not* enough here: the container's bridge IP answers the host and every
  container on that bridge.
* ``isolated`` (Docker Desktop on macOS/Windows/Linux, rootless Docker, a remote daemon: where
  the container's "host" network is a VM's or a namespace's, not the member's): a dedicated
  bridge network per repository (``collab-proxy-<hash>``, inter-container traffic off) that no
  other container joins, the proxy on ``0.0.0.0`` inside it and published on ``127.0.0.1`` of
  the member's machine only. The bridge lives inside Docker's VM, so the member's other
  interfaces never see it, and Docker isolates user-defined networks from each other. Docker
  Desktop lets any container reach services on the host's loopback through
  ``host.docker.internal``: a platform property that applies to every loopback service; members
  who run untrusted containers there should use ``collab join --connector python``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any, Literal

from zenml_collab.errors import ConfigError

PROXY_NETWORK_ENV = "COLLAB_PROXY_NETWORK"
LABEL = "dev.zenml-collab.proxy"
NetworkMode = Literal["host", "isolated"]
NETWORK_MODES: tuple[NetworkMode, ...] = ("host", "isolated")


def choose_network(client: Any) -> NetworkMode:
    """``host`` where host networking is the member's own loopback, else ``isolated``.

    ``$COLLAB_PROXY_NETWORK`` (``host`` or ``isolated``) overrides the choice.
    """
    forced = os.environ.get(PROXY_NETWORK_ENV, "").strip()
    if forced:
        if forced not in NETWORK_MODES:
            raise ConfigError(f"{PROXY_NETWORK_ENV}={forced!r} is not a network mode",
                              f"set it to one of: {', '.join(NETWORK_MODES)} (or unset it)")
        return "host" if forced == "host" else "isolated"
    base_url = str(getattr(getattr(client, "api", None), "base_url", ""))
    return "host" if host_network_is_loopback(client.info(), base_url) else "isolated"


def host_network_is_loopback(info: Mapping[str, Any], base_url: str) -> bool:
    """True when a host-networked container shares the member's own loopback: a rootful Docker
    Engine on this Linux machine (not Docker Desktop's VM, not rootless, not a remote daemon)."""
    desktop = "docker desktop" in str(info.get("OperatingSystem", "")).lower()
    rootless = any("rootless" in str(opt) for opt in info.get("SecurityOptions") or [])
    local = base_url.startswith(("http+docker://localhost", "http+docker://localunixsocket"))
    return (sys.platform.startswith("linux") and info.get("OSType") == "linux" and local
            and not desktop and not rootless)


def ensure_network(client: Any, name: str) -> str:
    """The repository's own bridge network (isolated mode); no other container joins it."""
    found = client.networks.list(names=[name])
    if any(n.name == name for n in found):
        return name
    client.networks.create(
        name, driver="bridge", labels={LABEL: "1"},
        # No traffic between containers on it, should anything else ever be attached.
        options={"com.docker.network.bridge.enable_icc": "false"})
    return name


def remove_network(client: Any, name: str) -> None:
    """Remove the repository's own network (made by :func:`ensure_network`), if any."""
    from docker.errors import APIError, NotFound

    for network in client.networks.list(names=[name]):
        if network.name == name and (network.attrs.get("Labels") or {}).get(LABEL):
            # Gone already, or still in use: leave it.
            with contextlib.suppress(NotFound, APIError):
                network.remove()


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something (any process, any container) already holds ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a port left in TIME_WAIT by a closed connection is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def other_free_port(avoid: int) -> int:
    """A free port on 127.0.0.1 other than ``avoid``."""
    while True:
        port = find_free_port()
        if port != avoid:
            return port
