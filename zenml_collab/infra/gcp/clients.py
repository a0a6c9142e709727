"""``GcpClients``: the four API clients of one caller and project, created on first use.

Build one per command from :func:`~zenml_collab.infra.gcp.credentials.find_credentials` and pass
it around; tests build it with credentials from the fake's key files. Call :meth:`close` (or use
it as a context manager) to release connections.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zenml_collab.infra.gcp.endpoints import (
    resourcemanager_endpoint,
    serviceusage_endpoint,
    sqladmin_endpoint,
)
from zenml_collab.infra.gcp.retry import RetryPolicy, default_policy

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud.resourcemanager_v3 import ProjectsClient
    from google.cloud.storage import Client as StorageClient
    from googleapiclient.discovery import Resource

    from zenml_collab.infra.gcp.credentials import FoundCredentials


def _discovery(api: str, credentials: Credentials, endpoint: str | None) -> Resource:
    from googleapiclient.discovery import build

    return build(api, "v1", credentials=credentials, static_discovery=True,
                 cache_discovery=False,
                 client_options={"api_endpoint": endpoint} if endpoint else None)


def sqladmin_client(credentials: Credentials) -> Resource:
    """Cloud SQL Admin v1 (discovery), honouring ``COLLAB_SQLADMIN_ENDPOINT``."""
    return _discovery("sqladmin", credentials, sqladmin_endpoint())


def serviceusage_client(credentials: Credentials) -> Resource:
    """Service Usage v1 (discovery), honouring ``COLLAB_SERVICEUSAGE_ENDPOINT``."""
    return _discovery("serviceusage", credentials, serviceusage_endpoint())


def projects_client(credentials: Credentials) -> ProjectsClient:
    """Resource Manager v3 ``ProjectsClient`` (REST), honouring the endpoint variable."""
    from google.cloud import resourcemanager_v3

    endpoint = resourcemanager_endpoint()
    return resourcemanager_v3.ProjectsClient(
        credentials=credentials, transport="rest",
        client_options={"api_endpoint": endpoint} if endpoint else None)


def default_poll_interval() -> float:
    """Seconds between polls of a long operation (``COLLAB_GCP_POLL_INTERVAL``, default 3)."""
    return float(os.environ.get("COLLAB_GCP_POLL_INTERVAL") or 3.0)


@dataclass(frozen=True)
class GcpClients:
    """The API clients of one caller (``credentials``) working on ``project``."""

    credentials: Credentials
    project: str
    account: str | None = None
    retry: RetryPolicy = field(default_factory=default_policy)
    poll_interval: float = field(default_factory=default_poll_interval)

    @classmethod
    def from_found(cls, found: FoundCredentials, project: str, **kwargs: Any) -> GcpClients:
        """From a :class:`~zenml_collab.infra.gcp.credentials.FoundCredentials`."""
        return cls(found.credentials, project, account=found.account, **kwargs)

    @functools.cached_property
    def sqladmin(self) -> Resource:
        return sqladmin_client(self.credentials)

    @functools.cached_property
    def serviceusage(self) -> Resource:
        return serviceusage_client(self.credentials)

    @functools.cached_property
    def projects(self) -> ProjectsClient:
        return projects_client(self.credentials)

    @functools.cached_property
    def storage(self) -> StorageClient:
        from zenml_collab.infra.gcp.buckets import storage_client

        return storage_client(self.credentials, self.project)

    def close(self) -> None:
        """Close the clients that were created (others were never opened)."""
        created = self.__dict__
        for name in ("sqladmin", "serviceusage"):
            if name in created:
                created[name].close()
        if "projects" in created:
            created["projects"].transport.close()
        if "storage" in created:
            created["storage"].close()

    def __enter__(self) -> GcpClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
