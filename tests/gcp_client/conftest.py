"""Real client libraries against the fake: an admin with ``GcpClients`` for one project."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from zenml_collab.infra.gcp.clients import GcpClients
from zenml_collab.infra.gcp.credentials import FoundCredentials, find_credentials
from zenml_collab.testing.fake_gcp import FakeGCP

PROJECT = "proj-a"
REGION = "europe-west1"
ADMIN = "admin@proj-a.iam.gserviceaccount.com"


@pytest.fixture
def gcp(fake_gcp_env: FakeGCP, monkeypatch: pytest.MonkeyPatch) -> FakeGCP:
    """The fake (endpoints in the environment) with a project owned by ``ADMIN``."""
    monkeypatch.setenv("COLLAB_GCP_RETRY_INITIAL", "0.01")
    monkeypatch.setenv("COLLAB_GCP_POLL_INTERVAL", "0.01")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(fake_gcp_env.workdir / "no-gcloud"))
    fake_gcp_env.add_project(PROJECT, owner=ADMIN)
    return fake_gcp_env


@pytest.fixture
def login(gcp: FakeGCP, monkeypatch: pytest.MonkeyPatch) -> Callable[..., FoundCredentials]:
    """``login(email, roles)``: make ``email`` the caller (GOOGLE_APPLICATION_CREDENTIALS)."""

    def make(email: str = ADMIN, roles: tuple[str, ...] = ()) -> FoundCredentials:
        key: Path = gcp.add_member(email, roles=roles, project=PROJECT if roles else None)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
        return find_credentials()

    return make


@pytest.fixture
def clients_for(login: Callable[..., FoundCredentials]) -> Iterator[Callable[..., GcpClients]]:
    """``clients_for(email, roles)``: ``GcpClients`` for that caller; closed at teardown."""
    made: list[GcpClients] = []

    def make(email: str = ADMIN, roles: tuple[str, ...] = ()) -> GcpClients:
        clients = GcpClients.from_found(login(email, roles), PROJECT)
        made.append(clients)
        return clients

    yield make
    for clients in made:
        clients.close()


@pytest.fixture
def admin(clients_for: Callable[..., GcpClients]) -> GcpClients:
    return clients_for()
