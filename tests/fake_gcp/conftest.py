"""Helpers for the fake-GCP tests: real google-auth credentials and real API clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from zenml_collab.testing.fake_gcp import FakeGCP

PROJECT = "proj-a"
ADMIN = "admin@proj-a.iam.gserviceaccount.com"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


@pytest.fixture
def gcp(fake_gcp: FakeGCP) -> FakeGCP:
    """The fake with one project whose owner is ``ADMIN``."""
    fake_gcp.add_project(PROJECT, owner=ADMIN)
    fake_gcp.operation_polls["CREATE"] = 2
    return fake_gcp


@pytest.fixture
def credentials_for(gcp: FakeGCP) -> Callable[..., Any]:
    """``credentials_for(email, roles=[...])``: service-account credentials from a key file."""
    from google.oauth2 import service_account

    def make(email: str = ADMIN, roles: tuple[str, ...] = ()) -> Any:
        key_file = gcp.add_member(email, roles=roles, project=PROJECT if roles else None)
        return service_account.Credentials.from_service_account_file(str(key_file), scopes=SCOPES)

    return make


@pytest.fixture
def discovery_client(
    gcp: FakeGCP, credentials_for: Callable[..., Any]
) -> Iterator[Callable[..., Any]]:
    """``discovery_client(api, email, roles)``: a discovery-based v1 client as that member.

    Clients are closed at teardown (httplib2 keeps connections open otherwise).
    """
    from googleapiclient.discovery import build

    built: list[Any] = []

    def make(api: str, email: str = ADMIN, roles: tuple[str, ...] = ()) -> Any:
        client = build(api, "v1", credentials=credentials_for(email, roles),
                       static_discovery=True, client_options={"api_endpoint": f"{gcp.url}/"})
        built.append(client)
        return client

    yield make
    for client in built:
        client.close()


@pytest.fixture
def sqladmin_for(discovery_client: Callable[..., Any]) -> Callable[..., Any]:
    """``sqladmin_for(email, roles)``: the sqladmin v1 client as that member."""
    return lambda email=ADMIN, roles=(): discovery_client("sqladmin", email, roles)


def create_instance(sql: Any, name: str = "main", flags: dict[str, str] | None = None) -> dict:
    """Insert an instance and poll its operation to DONE; returns the final operation."""
    body = {"name": name, "region": "europe-west1", "databaseVersion": "MYSQL_8_0",
            "settings": {"tier": "db-f1-micro", "databaseFlags": [
                {"name": k, "value": v} for k, v in (flags or {}).items()]}}
    op = sql.instances().insert(project=PROJECT, body=body).execute()
    while op["status"] != "DONE":
        op = sql.operations().get(project=PROJECT, operation=op["name"]).execute()
    return op
