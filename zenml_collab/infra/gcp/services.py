"""Service Usage v1 (discovery client): is an API enabled in the project, and enable it.

``client`` is ``build("serviceusage", "v1", ...)`` (see
:func:`zenml_collab.infra.gcp.clients.serviceusage_client`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from zenml_collab.errors import CollabError
from zenml_collab.infra.gcp.errors import translate
from zenml_collab.infra.gcp.retry import RetryPolicy, call_with_retry


def _name(project: str, service: str) -> str:
    return f"projects/{project}/services/{service}"


def is_enabled(client: Any, project: str, service: str, *,
               retry: RetryPolicy | None = None) -> bool:
    """Whether ``service`` (e.g. ``sqladmin.googleapis.com``) is enabled in ``project``."""
    try:
        answer = call_with_retry(
            lambda: client.services().get(name=_name(project, service)).execute(), retry)
    except Exception as exc:
        raise translate(exc, action=f"check whether {service} is enabled",
                        resource=f"projects/{project}", project=project) from exc
    return bool(answer.get("state") == "ENABLED")


def enable(client: Any, project: str, service: str, *, retry: RetryPolicy | None = None,
           poll: float = 2.0, sleep: Callable[[float], None] = time.sleep,
           max_polls: int = 300) -> None:
    """Enable ``service`` in ``project`` and wait until Google says it is done."""
    try:
        op = call_with_retry(lambda: client.services().enable(
            name=_name(project, service), body={}).execute(), retry)
        polls = 0
        while not op.get("done"):
            if polls >= max_polls:
                raise CollabError(f"enabling {service} in {project} did not finish",
                                  "check the Cloud console, then re-run")
            sleep(poll)
            polls += 1
            op = call_with_retry(client.operations().get(name=op["name"]).execute, retry)
    except CollabError:
        raise
    except Exception as exc:
        raise translate(exc, action=f"enable {service}", resource=f"projects/{project}",
                        project=project) from exc
    if op.get("error"):
        raise CollabError(f"enabling {service} in {project} failed: "
                          f"{op['error'].get('message', op['error'])}",
                          "check the project's billing account and your permissions")
