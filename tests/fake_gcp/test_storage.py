"""google-cloud-storage against the fake's storage front (bucket IAM, UBLA, PAP, permissions)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.api_core import exceptions as core_exceptions

from tests.fake_gcp.conftest import PROJECT
from zenml_collab.testing.fake_gcp import FakeGCP

BUCKET = "collab-artifacts"
MEMBER = "gina@proj-a.iam.gserviceaccount.com"


@pytest.fixture
def storage_for(gcp: FakeGCP, credentials_for: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """``storage_for(email)``: a google-cloud-storage client as that member."""
    from google.cloud import storage

    made: list[Any] = []

    def make(*args: Any) -> Any:
        client = storage.Client(project=PROJECT, credentials=credentials_for(*args),
                                client_options={"api_endpoint": gcp.url})
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def bucket(storage_for: Callable[..., Any]) -> Any:
    """A bucket created by the owner with UBLA and public access prevention enforced."""
    client = storage_for()
    bucket = client.bucket(BUCKET)
    bucket.iam_configuration.uniform_bucket_level_access_enabled = True
    bucket.iam_configuration.public_access_prevention = "enforced"
    return client.create_bucket(bucket, location="europe-west1")


def _grant_member(bucket: Any, *roles: str) -> None:
    policy = bucket.get_iam_policy(requested_policy_version=3)
    for role in roles:
        policy.bindings.append({"role": role, "members": {f"serviceAccount:{MEMBER}"}})
    bucket.set_iam_policy(policy)


def test_bucket_keeps_ubla_and_public_access_prevention(
    bucket: Any, storage_for: Callable[..., Any]
) -> None:
    reloaded = storage_for().get_bucket(BUCKET)
    assert reloaded.iam_configuration.uniform_bucket_level_access_enabled is True
    assert reloaded.iam_configuration.public_access_prevention == "enforced"


def test_bucket_roles_let_a_member_write_and_read_objects(
    bucket: Any, storage_for: Callable[..., Any]
) -> None:
    _grant_member(bucket, "roles/storage.objectAdmin", "roles/storage.legacyBucketReader")
    member_bucket = storage_for(MEMBER).bucket(BUCKET)
    held = member_bucket.test_iam_permissions(
        ["storage.objects.create", "storage.objects.get", "storage.buckets.setIamPolicy"])
    member_bucket.blob("runs/a.json").upload_from_string(b'{"a": 1}')
    assert held == ["storage.objects.create", "storage.objects.get"]
    assert member_bucket.blob("runs/a.json").download_as_bytes() == b'{"a": 1}'


def test_member_without_bucket_role_is_forbidden_with_googles_message(
    bucket: Any, storage_for: Callable[..., Any]
) -> None:
    bucket.blob("x").upload_from_string(b"secret")
    with pytest.raises(core_exceptions.Forbidden) as denied:
        storage_for(MEMBER).bucket(BUCKET).blob("x").download_as_bytes()
    assert (f"{MEMBER} does not have storage.objects.get access to the Google Cloud Storage "
            "object.") in denied.value.message


def test_large_upload_goes_resumable_and_keeps_bytes(bucket: Any) -> None:
    data = bytes(range(256)) * (9 * 4096)  # 9 MiB: above the multipart limit
    blob = bucket.blob("big.bin")
    blob.upload_from_string(data, checksum="crc32c")
    assert bucket.blob("big.bin").download_as_bytes() == data


def test_concurrent_create_of_existing_object_fails_precondition(bucket: Any) -> None:
    bucket.blob("artifacts/ab/abc").upload_from_string(b"1", if_generation_match=0)
    with pytest.raises(core_exceptions.PreconditionFailed):
        bucket.blob("artifacts/ab/abc").upload_from_string(b"1", if_generation_match=0)


def test_public_members_are_refused_under_public_access_prevention(bucket: Any) -> None:
    policy = bucket.get_iam_policy(requested_policy_version=3)
    policy.bindings.append({"role": "roles/storage.objectViewer", "members": {"allUsers"}})
    with pytest.raises(core_exceptions.PreconditionFailed) as refused:
        bucket.set_iam_policy(policy)
    assert "public access prevention is enforced" in refused.value.message


def test_object_acls_are_refused_under_uniform_access(bucket: Any) -> None:
    with pytest.raises(core_exceptions.BadRequest) as refused:
        bucket.blob("acl").upload_from_string(b"x", predefined_acl="publicRead")
    assert "uniform bucket-level access is enabled" in refused.value.message


def test_disabled_storage_api_answers_service_disabled(
    gcp: FakeGCP, bucket: Any
) -> None:
    gcp.disable_service(PROJECT, "storage.googleapis.com")
    with pytest.raises(core_exceptions.Forbidden) as disabled:
        bucket.blob("x").upload_from_string(b"x")
    assert "Cloud Storage API has not been used in project" in disabled.value.message


def test_bucket_created_by_helper_has_project_default_policy(gcp: FakeGCP) -> None:
    meta = gcp.storage.create_bucket("helper-bucket", PROJECT)
    assert meta.policy.bindings["roles/storage.legacyBucketOwner"] == [
        f"projectEditor:{PROJECT}", f"projectOwner:{PROJECT}"]


def test_storage_emulator_host_env_reaches_the_fake_with_the_members_token(
    fake_gcp_env: FakeGCP, gcp: FakeGCP, credentials_for: Callable[..., Any]
) -> None:
    from google.cloud import storage

    gcp.storage.create_bucket(BUCKET, PROJECT)
    client = storage.Client(project=PROJECT, credentials=credentials_for(MEMBER))
    with pytest.raises(core_exceptions.Forbidden):
        client.bucket(BUCKET).blob("x").upload_from_string(b"x")
    client.close()
    [upload] = [r for r in gcp.requests if r.method_id == "storage.objects.insert"]
    assert (upload.member, upload.status) == (MEMBER, 403)
