"""The fake's Artifact Registry and IAM service-account calls, through the real discovery
clients: Google's answers for a duplicate, a missing resource and a missing permission."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zenml_collab.errors import CollabError
from zenml_collab.infra.gcp import compute
from zenml_collab.testing.fake_gcp import FakeGCP

PROJECT = "team-proj"
REGION = "europe-west1"
OWNER = f"owner@{PROJECT}.iam.gserviceaccount.com"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def _credentials(key: Path) -> Any:
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_file(str(key), scopes=SCOPES)


@pytest.fixture
def fake(fake_gcp: FakeGCP, monkeypatch: pytest.MonkeyPatch) -> FakeGCP:
    for name, value in fake_gcp.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLLAB_GCP_RETRY_INITIAL", "0.01")
    fake_gcp.add_project(PROJECT, owner=OWNER)
    return fake_gcp


def test_repository_and_account_create_get_and_a_second_create_conflicts(fake: FakeGCP) -> None:
    creds = _credentials(fake.add_member(OWNER))
    registry, iam = compute.artifactregistry_client(creds), compute.iam_client(creds)
    name = compute.repository_name(PROJECT, REGION, "collab")
    assert compute.get_repository(registry, name) is None
    compute.create_repository(registry, PROJECT, REGION, "collab", poll=0)
    assert compute.get_repository(registry, name)["format"] == "DOCKER"
    with pytest.raises(CollabError) as info:
        compute.create_repository(registry, PROJECT, REGION, "collab", poll=0)
    assert "already exists" in info.value.message

    email = compute.service_account_email(PROJECT, "collab-runner")
    assert compute.get_service_account(iam, email) is None
    created = compute.create_service_account(iam, PROJECT, "collab-runner", "runner")
    assert created["email"] == email and compute.get_service_account(iam, email) is not None
    member = f"user:ana@{PROJECT}.example"
    assert compute.add_service_account_bindings(
        iam, email, {"roles/iam.serviceAccountUser": [member]})
    assert not compute.add_service_account_bindings(  # already there: nothing written
        iam, email, {"roles/iam.serviceAccountUser": [member]})
    assert compute.add_repository_bindings(
        registry, name, {"roles/artifactregistry.writer": [member]})
    assert compute.repository_bindings(registry, name) == {
        "roles/artifactregistry.writer": [member]}
    registry.close()
    iam.close()
    assert fake.violations == []


def test_a_member_without_admin_roles_is_refused_with_googles_permission_error(
        fake: FakeGCP) -> None:
    creds = _credentials(fake.add_member(f"ana@{PROJECT}.iam.gserviceaccount.com",
                                         roles=["roles/aiplatform.user"], project=PROJECT))
    registry, iam = compute.artifactregistry_client(creds), compute.iam_client(creds)
    with pytest.raises(CollabError) as repo:
        compute.create_repository(registry, PROJECT, REGION, "collab", poll=0)
    assert repo.value.exit_code == 3
    assert "artifactregistry.repositories.create" in repo.value.message
    with pytest.raises(CollabError) as account:
        compute.create_service_account(iam, PROJECT, "collab-runner", "runner")
    assert account.value.exit_code == 3 and "iam.serviceAccounts.create" in account.value.message
    registry.close()
    iam.close()
