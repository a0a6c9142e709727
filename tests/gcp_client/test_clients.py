"""The GCP client layer through the real Google libraries against the fake."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.gcp_client.conftest import ADMIN, PROJECT, REGION
from zenml_collab.errors import CredentialsError, PermissionDeniedError
from zenml_collab.infra.gcp import buckets, credentials, projects, services, sqladmin
from zenml_collab.infra.gcp.clients import GcpClients
from zenml_collab.infra.gcp.errors import ServiceDisabledError
from zenml_collab.infra.gcp.permissions import (
    ADMIN_PROJECT_PERMISSIONS,
    BUCKET_MEMBER_ROLES,
    MEMBER_BUCKET_PERMISSIONS,
    MEMBER_PROJECT_PERMISSIONS,
    ROLE_PERMISSIONS,
    least_role,
    role_grants,
)
from zenml_collab.testing.fake_gcp import FakeGCP

MEMBER = "serviceAccount:dana@proj-a.iam.gserviceaccount.com"


def test_credentials_name_their_source_file_and_account(
    login: Callable[..., credentials.FoundCredentials],
) -> None:
    found = login()
    assert found.account == ADMIN
    assert found.file is not None and str(found.file) in found.source
    assert found.source.startswith("GOOGLE_APPLICATION_CREDENTIALS")
    token = credentials.refresh(found)
    assert token.expiry is not None and token.account == ADMIN


def test_missing_credentials_say_how_to_log_in(gcp: FakeGCP,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcp.workdir / "absent.json"))
    with pytest.raises(CredentialsError) as err:
        credentials.find_credentials()
    assert "gcloud auth application-default login" in (err.value.hint or "")


def test_test_permissions_returns_only_held_ones(
    clients_for: Callable[..., GcpClients],
) -> None:
    dana = clients_for("dana@proj-a.iam.gserviceaccount.com", ("roles/cloudsql.client",))
    held = projects.test_permissions(dana.projects, PROJECT, ADMIN_PROJECT_PERMISSIONS)
    assert held == {"cloudsql.instances.get"}


def test_add_bindings_keeps_existing_and_writes_nothing_when_present(
    gcp: FakeGCP, admin: GcpClients,
) -> None:
    gcp.grant(PROJECT, "roles/viewer", "user:someone@x.com")
    wanted = {"roles/cloudsql.client": [MEMBER]}
    assert projects.add_bindings(admin.projects, PROJECT, wanted) is True
    policy = projects.get_iam_policy(admin.projects, PROJECT)
    assert projects.members_with(policy, MEMBER) == {"roles/cloudsql.client"}
    assert projects.members_with(policy, "user:someone@x.com") == {"roles/viewer"}
    before = len(gcp.mutating_requests())
    assert projects.add_bindings(admin.projects, PROJECT, wanted) is False
    assert len(gcp.mutating_requests()) == before


def test_add_bindings_retries_transient_errors(gcp: FakeGCP, admin: GcpClients) -> None:
    gcp.inject("cloudresourcemanager.projects.setIamPolicy", status=503, times=2)
    gcp.inject("cloudresourcemanager.projects.getIamPolicy", status=429, times=1)
    assert projects.add_bindings(admin.projects, PROJECT, {"roles/cloudsql.client": [MEMBER]})
    statuses = [r.status for r in gcp.requests if r.method_id and "IamPolicy" in r.method_id]
    assert statuses.count(503) == 2 and statuses.count(429) == 1


def test_permission_denied_names_permission_and_role(
    gcp: FakeGCP, clients_for: Callable[..., GcpClients],
) -> None:
    gcp.storage.create_bucket("b1", PROJECT)
    dana = clients_for("dana@proj-a.iam.gserviceaccount.com", ("roles/cloudsql.client",))
    with pytest.raises(PermissionDeniedError) as err:
        buckets.probe_object(dana.storage, "b1", "x")
    assert "storage.objects.create" in err.value.message
    assert "roles/storage.objectAdmin" in (err.value.hint or "")


def test_disabled_service_error_gives_the_enable_command(gcp: FakeGCP, admin: GcpClients) -> None:
    gcp.disable_service(PROJECT, "sqladmin.googleapis.com")
    assert not services.is_enabled(admin.serviceusage, PROJECT, "sqladmin.googleapis.com")
    with pytest.raises(ServiceDisabledError) as err:
        sqladmin.get_instance(admin.sqladmin, PROJECT, "main")
    assert err.value.service == "sqladmin.googleapis.com"
    assert f"gcloud services enable sqladmin.googleapis.com --project {PROJECT}" in (
        err.value.hint or "")
    services.enable(admin.serviceusage, PROJECT, "sqladmin.googleapis.com", poll=0)
    assert sqladmin.get_instance(admin.sqladmin, PROJECT, "main") is None


def test_instance_database_and_users_lifecycle(gcp: FakeGCP, admin: GcpClients) -> None:
    gcp.operation_polls["CREATE"] = 3
    body = {"name": "main", "region": REGION, "databaseVersion": "MYSQL_8_0",
            "settings": {"tier": "db-custom-1-3840"}}
    op = sqladmin.insert_instance(admin.sqladmin, PROJECT, body)
    assert sqladmin.pending_operations(admin.sqladmin, PROJECT, "main")[0]["name"] == op
    seen: list[str] = []
    sqladmin.wait_operation(admin.sqladmin, PROJECT, op, poll=0,
                            on_progress=lambda p: seen.append(p.status))
    assert seen[-1] == "DONE" and len(seen) == 4
    inst = sqladmin.get_instance(admin.sqladmin, PROJECT, "main")
    assert inst is not None and sqladmin.connection_name(inst) == f"{PROJECT}:{REGION}:main"
    assert sqladmin.get_database(admin.sqladmin, PROJECT, "main", "zenml") is None
    sqladmin.insert_database(admin.sqladmin, PROJECT, "main", "zenml")
    assert sqladmin.get_database(admin.sqladmin, PROJECT, "main", "zenml")["charset"] == "utf8mb4"
    sqladmin.insert_user(admin.sqladmin, PROJECT, "main", sqladmin.iam_user_name(MEMBER),
                         sqladmin.iam_user_type(MEMBER))
    users = {u["name"]: u["type"] for u in sqladmin.list_users(admin.sqladmin, PROJECT, "main")}
    assert users["dana@proj-a.iam"] == "CLOUD_IAM_SERVICE_ACCOUNT"


def test_bucket_create_bindings_and_probe(gcp: FakeGCP, admin: GcpClients,
                                          clients_for: Callable[..., GcpClients]) -> None:
    assert buckets.get_bucket_info(admin.storage, "art") is None
    info = buckets.create_bucket(admin.storage, "art", location=REGION, project=PROJECT)
    assert info.ubla and info.public_access_prevention == "enforced"
    assert gcp.storage.bucket("art").ubla
    wanted = {role: [MEMBER] for role in BUCKET_MEMBER_ROLES}
    assert buckets.add_bucket_bindings(admin.storage, "art", wanted) is True
    assert buckets.add_bucket_bindings(admin.storage, "art", wanted) is False
    bucket_policy = buckets.get_bucket_policy(admin.storage, "art")
    assert projects.members_with(bucket_policy, MEMBER) == set(BUCKET_MEMBER_ROLES)
    dana = clients_for("dana@proj-a.iam.gserviceaccount.com")
    held = buckets.test_bucket_permissions(dana.storage, "art", MEMBER_BUCKET_PERMISSIONS)
    assert held == set(MEMBER_BUCKET_PERMISSIONS)
    probe = buckets.probe_object(dana.storage, "art", "artifacts")
    assert probe.write_ms >= 0 and probe.object_name.startswith("artifacts/")


def test_least_role_grants_the_permission_and_member_tables_are_covered() -> None:
    for permission in ADMIN_PROJECT_PERMISSIONS + MEMBER_PROJECT_PERMISSIONS["iam"]:
        role = least_role(permission)
        assert role in ROLE_PERMISSIONS and role_grants(role, permission)
    assert least_role("cloudsql.instances.create") == "roles/cloudsql.admin"
    assert least_role("resourcemanager.projects.setIamPolicy") == (
        "roles/resourcemanager.projectIamAdmin")
