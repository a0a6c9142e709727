"""Run the Cloud SQL Auth Proxy v2 in a docker container, one per repository.

The proxy opens authenticated, encrypted connections to the Cloud SQL instance; with
``--auto-iam-authn`` whoever reaches its port logs in as the member, so only the member's own
loopback may reach it. Credentials are a file mounted read-only, not a token in the
environment: a token expires after an hour, the proxy refreshes tokens itself from the file.

The port is kept on the member's loopback by host networking where that is the member's own
loopback, else by a network of its own: :mod:`zenml_collab.infra.proxy_network` says how, per
platform.

Every function takes the docker client as its first argument (``docker.from_env()`` in real
use, the test daemon in tests)::

    client = connect_docker()
    status = start_proxy(
        client,
        repo_root=Path("."),
        connection_name="my-project:europe-west1:collab",
        credentials_file=Path("~/.config/gcloud/application_default_credentials.json"),
        port=3307,
        image=resolve_proxy_image(team_config.proxy.image + ":" + team_config.proxy.version),
    )
    ...
    stop_proxy(client, repo_root=Path("."))
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zenml_collab.config import DEFAULT_PROXY_IMAGE, DEFAULT_PROXY_VERSION
from zenml_collab.errors import CollabError, ConfigError, ConnectivityError, CredentialsError
from zenml_collab.infra.proxy_network import (
    LABEL,
    NetworkMode,
    choose_network,
    ensure_network,
    find_free_port,
    other_free_port,
    port_in_use,
    remove_network,
)

if TYPE_CHECKING:
    from docker import DockerClient

PROXY_IMAGE_ENV = "COLLAB_PROXY_IMAGE"
DB_PORT = 3306  # inside the container (isolated mode)
HEALTH_PORT = 9090  # inside the container (isolated mode)
CREDENTIALS_MOUNT = "/config/credentials.json"
_CONNECTION_NAME = re.compile(r"^[a-z0-9.:-]+:[a-z0-9-]+:[a-z0-9-]+$")


@dataclass(frozen=True)
class ProxyStatus:
    """What docker knows about this repository's proxy container, and whether it is ready."""

    name: str
    state: str  # "absent", or docker's: "created", "running", "restarting", "exited", ...
    ready: bool = False
    port: int | None = None
    health_port: int | None = None
    image: str | None = None
    connection_name: str | None = None
    container_id: str | None = None
    reused: bool = False
    network: str | None = None  # "host" or "isolated" (None: a container of an older version)

    @property
    def running(self) -> bool:
        return self.state == "running"


def container_name(repo_root: Path) -> str:
    """``collab-proxy-<hash>``: one proxy per repository checkout, stable across runs."""
    digest = hashlib.sha256(str(Path(repo_root).resolve()).encode()).hexdigest()
    return f"collab-proxy-{digest[:12]}"


def resolve_proxy_image(configured: str | None = None) -> str:
    """The image to run: ``$COLLAB_PROXY_IMAGE``, else ``configured``, else the pinned default."""
    return os.environ.get(PROXY_IMAGE_ENV) or configured or f"{DEFAULT_PROXY_IMAGE}:{DEFAULT_PROXY_VERSION}"


def connect_docker(base_url: str | None = None) -> DockerClient:
    """A ``docker.DockerClient`` for ``base_url`` (default: ``DOCKER_HOST`` or the local socket)."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
        client.ping()
    except DockerException as exc:
        raise ConnectivityError(
            f"cannot reach the docker daemon: {exc}",
            "start Docker (or set DOCKER_HOST), or use the in-process connector: "
            "`collab join --connector python`",
        ) from exc
    return client


def proxy_command(
    connection_name: str,
    *,
    auto_iam_authn: bool = True,
    extra_args: Sequence[str] = (),
    address: str = "127.0.0.1",
    port: int = DB_PORT,
    http_address: str = "127.0.0.1",
    http_port: int = HEALTH_PORT,
) -> list[str]:
    """The proxy's arguments: database and health ports on ``address``/``http_address``."""
    args = [connection_name, "--address", address, "--port", str(port)]
    if auto_iam_authn:
        args.append("--auto-iam-authn")
    args += ["--health-check", "--http-address", http_address, "--http-port", str(http_port)]
    return args + list(extra_args)


def _find(client: Any, name: str) -> Any | None:
    from docker.errors import NotFound

    try:
        return client.containers.get(name)
    except NotFound:
        return None


def _host_port(container: Any, container_port: int, label: str) -> int | None:
    labelled = (container.labels or {}).get(f"{LABEL}.{label}")
    if labelled and labelled.isdigit():
        return int(labelled)
    bindings = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
    entries = bindings.get(f"{container_port}/tcp") or []
    return int(entries[0]["HostPort"]) if entries and entries[0].get("HostPort") else None


def _ready(health_port: int | None) -> bool:
    if not health_port:
        return False
    url = f"http://127.0.0.1:{health_port}/readiness"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _status_of(container: Any, name: str) -> ProxyStatus:
    container.reload()
    labels = container.labels or {}
    health_port = _host_port(container, HEALTH_PORT, "health-port")
    state = str(container.status)
    tags = container.image.tags if container.image else []
    return ProxyStatus(
        name=name,
        state=state,
        ready=state == "running" and _ready(health_port),
        port=_host_port(container, DB_PORT, "port"),
        health_port=health_port,
        image=labels.get(f"{LABEL}.image") or (tags[0] if tags else None),
        connection_name=labels.get(f"{LABEL}.connection"),
        container_id=container.id,
        network=labels.get(f"{LABEL}.network"),
    )


def proxy_status(client: DockerClient, *, repo_root: Path) -> ProxyStatus:
    """The state of this repository's proxy (``state="absent"`` when there is none)."""
    name = container_name(repo_root)
    container = _find(client, name)
    return ProxyStatus(name=name, state="absent") if container is None else _status_of(container, name)


def proxy_logs(client: DockerClient, *, repo_root: Path, tail: int = 200) -> str:
    """The last ``tail`` lines the proxy wrote (stdout and stderr)."""
    container = _find(client, container_name(repo_root))
    if container is None:
        raise CollabError(
            "no Cloud SQL Auth Proxy container runs for this repository",
            "start it with `collab proxy start`",
        )
    return bytes(container.logs(tail=tail)).decode(errors="replace")


def stop_proxy(client: DockerClient, *, repo_root: Path, timeout: int = 10) -> bool:
    """Stop and remove this repository's proxy; False when there was none."""
    from docker.errors import NotFound

    name = container_name(repo_root)
    container = _find(client, name)
    if container is None:
        remove_network(client, name)
        return False
    try:
        container.stop(timeout=timeout)
        container.remove(force=True)
    except NotFound:  # removed concurrently: the goal is reached
        pass
    remove_network(client, name)
    return True


def _fingerprint(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _check_inputs(connection_name: str, credentials_file: Path) -> Path:
    if not _CONNECTION_NAME.match(connection_name):
        raise ConfigError(
            f"invalid instance connection name {connection_name!r}",
            "expected the form project:region:instance, e.g. my-project:europe-west1:collab",
        )
    credentials = Path(credentials_file).expanduser().resolve()
    if not credentials.is_file():
        raise CredentialsError(
            f"credentials file {credentials} does not exist",
            "run `gcloud auth application-default login`, or point the proxy at a service-account key file",
        )
    return credentials


def _ensure_image(client: Any, image: str, pull: bool) -> None:
    from docker.errors import APIError, ImageNotFound

    try:
        client.images.get(image)
        return
    except ImageNotFound:
        if not pull:
            raise ConfigError(
                f"the Cloud SQL Auth Proxy image {image} is not available to docker",
                f"pull it with `docker pull {image}`, or set {PROXY_IMAGE_ENV} to an image you have",
            ) from None
    try:
        client.images.pull(image)
    except (APIError, ImageNotFound) as exc:
        raise ConnectivityError(
            f"could not pull the Cloud SQL Auth Proxy image {image}: {exc}",
            f"check your network and the image name, or set {PROXY_IMAGE_ENV}",
        ) from exc


def _port_taken(port: int) -> ConnectivityError:
    free = find_free_port()
    return ConnectivityError(
        f"port {port} on 127.0.0.1 is already in use by another program",
        f"stop what listens on {port}, or use a free port such as {free}: "
        f"`collab join --port {free}`",
    )


def start_proxy(
    client: DockerClient,
    *,
    repo_root: Path,
    connection_name: str,
    credentials_file: Path,
    port: int,
    image: str,
    auto_iam_authn: bool = True,
    health_port: int | None = None,
    extra_args: Sequence[str] = (),
    extra_mounts: Mapping[str, str] | None = None,
    pull: bool = False,
    timeout: float = 60.0,
    network: NetworkMode | None = None,
) -> ProxyStatus:
    """Start (or reuse) this repository's proxy and wait until its ``/readiness`` answers 200.

    A running, ready container with the same settings is returned as is (``reused=True``); one
    with other settings, or stopped, is replaced. ``extra_mounts`` maps host paths to container
    paths, mounted read-only. ``network`` is ``"host"`` or ``"isolated"`` (default:
    :func:`choose_network`). Raises :class:`ConnectivityError` when ``port`` is taken (checked
    before anything starts) or the proxy does not become ready, :class:`ConfigError` when the
    image is missing and ``pull`` is false.
    """
    credentials = _check_inputs(connection_name, credentials_file)
    name = container_name(repo_root)
    mounts = {str(Path(h).resolve()): c for h, c in (extra_mounts or {}).items()}
    mode = network or choose_network(client)
    existing = _find(client, name)
    if existing is not None and existing.status == "running":
        # Reuse keeps the health port it was started with (a fresh one is picked otherwise).
        health_port = health_port or _host_port(existing, HEALTH_PORT, "health-port")
    chosen_health = health_port or other_free_port(port)
    if mode == "host":
        command = proxy_command(connection_name, auto_iam_authn=auto_iam_authn,
                                extra_args=extra_args, port=port, http_port=chosen_health)
    else:
        command = proxy_command(connection_name, auto_iam_authn=auto_iam_authn,
                                extra_args=extra_args, address="0.0.0.0",
                                http_address="0.0.0.0")
    settings = {
        "image": image, "command": command, "credentials": str(credentials), "port": port,
        "health_port": chosen_health, "mounts": mounts, "network": mode,
    }  # fmt: skip
    fingerprint = _fingerprint(settings)

    if existing is not None:
        if existing.status == "running" and existing.labels.get(f"{LABEL}.config") == fingerprint:
            status = _wait_ready(existing, name, timeout, remove_on_failure=False)
            return replace(status, reused=True)
        # Other settings, or not running: replace it (this frees its ports for the check below).
        existing.remove(force=True)

    if port_in_use(port):
        raise _port_taken(port)
    if port_in_use(chosen_health):
        raise _port_taken(chosen_health)
    _ensure_image(client, image, pull)

    volumes = {str(credentials): {"bind": CREDENTIALS_MOUNT, "mode": "ro"}}
    volumes.update({host: {"bind": inside, "mode": "ro"} for host, inside in mounts.items()})
    if mode == "host":
        networking: dict[str, Any] = {"network_mode": "host"}
    else:
        networking = {"network": ensure_network(client, name), "ports": {
            f"{DB_PORT}/tcp": ("127.0.0.1", port),
            f"{HEALTH_PORT}/tcp": ("127.0.0.1", chosen_health)}}
    from docker.errors import APIError

    try:
        container = client.containers.run(
            image,
            command=command,
            name=name,
            detach=True,
            labels={
                LABEL: "1",
                f"{LABEL}.repo": str(Path(repo_root).resolve()),
                f"{LABEL}.config": fingerprint,
                f"{LABEL}.connection": connection_name,
                f"{LABEL}.image": image,
                f"{LABEL}.network": mode,
                f"{LABEL}.port": str(port),
                f"{LABEL}.health-port": str(chosen_health),
            },
            restart_policy={"Name": "unless-stopped"},
            volumes=volumes,
            environment={"GOOGLE_APPLICATION_CREDENTIALS": CREDENTIALS_MOUNT},
            # The official image runs as a non-root user that could not read a 0600 key file
            # owned by the member: run as the member instead.
            user=f"{os.getuid()}:{os.getgid()}",
            **networking,
        )
    except APIError as exc:
        leftover = _find(client, name)
        if leftover is not None:
            leftover.remove(force=True)
        if "port is already allocated" in str(exc) or "address already in use" in str(exc):
            raise _port_taken(port) from exc
        raise ConnectivityError(
            f"docker could not start the Cloud SQL Auth Proxy: {exc.explanation or exc}",
            "check `docker info`, then retry",
        ) from exc
    return _wait_ready(container, name, timeout, remove_on_failure=True)


def _wait_ready(container: Any, name: str, timeout: float, *, remove_on_failure: bool) -> ProxyStatus:
    """Poll ``/readiness`` (docker accepts TCP on a published port before the proxy listens)."""
    deadline = time.monotonic() + timeout
    status = _status_of(container, name)
    while not status.ready:
        crashed = status.state in {"exited", "dead", "restarting"} or bool(
            container.attrs.get("RestartCount")
        )
        if crashed or time.monotonic() > deadline:
            logs = bytes(container.logs(tail=20)).decode(errors="replace").strip()
            if remove_on_failure:
                container.remove(force=True)
            what = "exited during start-up" if crashed else f"was not ready after {timeout:.0f}s"
            last = logs.splitlines()[-1] if logs else "(no output)"
            raise ConnectivityError(
                f"the Cloud SQL Auth Proxy {what}: {last}",
                "check the instance connection name and the credentials; full output:\n" + logs,
            )
        time.sleep(0.2)
        status = _status_of(container, name)
    return status
