"""`collab proxy start|stop|status|logs`: the repository's Cloud SQL Auth Proxy container.

They use the settings `collab join` wrote to ``.collab/local.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from zenml_collab.config import GcpConfig, LocalConfig, TeamConfig, load_local_config
from zenml_collab.errors import ConfigError
from zenml_collab.infra import proxy as px

if TYPE_CHECKING:
    from docker import DockerClient

# load_team and start_member_proxy are imported inside the functions: the join package
# re-exports these actions, so a top-level import of it here would be circular.


def _proxy_settings(start: Path) -> tuple[Path, TeamConfig, GcpConfig, LocalConfig]:
    from zenml_collab.actions.join.planning import load_team

    root, team, gcp = load_team(start)
    return root, team, gcp, load_local_config(root)


def proxy_start(start: Path = Path("."), *, docker: Callable[[], DockerClient] = px.connect_docker,
                timeout: float = 60.0) -> px.ProxyStatus:
    """Start (or reuse) the proxy with the settings `collab join` wrote."""
    from zenml_collab.actions.join.applying import start_member_proxy

    root, team, gcp, local = _proxy_settings(start)
    if local.connector != "proxy" or not local.proxy_port or not local.credentials_file:
        raise ConfigError("this clone is not set up for the proxy connector",
                          "run `collab join --connector proxy` first")
    image = px.resolve_proxy_image(f"{team.proxy.image}:{team.proxy.version}")
    return start_member_proxy(docker(), root=root, instance=gcp.instance,
                              credentials_file=Path(local.credentials_file),
                              port=local.proxy_port, image=image, timeout=timeout)


def proxy_stop(start: Path = Path("."), *, docker: Callable[[], DockerClient] = px.connect_docker) -> bool:
    """Stop and remove this repository's proxy container; False when none ran."""
    from zenml_collab.actions.join.planning import load_team

    root = load_team(start)[0]
    return px.stop_proxy(docker(), repo_root=root)


def proxy_status(start: Path = Path("."), *,
                 docker: Callable[[], DockerClient] = px.connect_docker) -> px.ProxyStatus:
    """The state of this repository's proxy container (``absent`` when there is none)."""
    from zenml_collab.actions.join.planning import load_team

    root = load_team(start)[0]
    return px.proxy_status(docker(), repo_root=root)


def proxy_logs(start: Path = Path("."), *, tail: int = 200,
               docker: Callable[[], DockerClient] = px.connect_docker) -> str:
    """The last ``tail`` log lines of this repository's proxy container."""
    from zenml_collab.actions.join.planning import load_team

    root = load_team(start)[0]
    return px.proxy_logs(docker(), repo_root=root, tail=tail)
