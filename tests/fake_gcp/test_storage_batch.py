"""Batched presence checks through the fake's storage front: each inner call is authenticated,
permission-checked and fault-injectable like a call of its own, as Google does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_gcp.conftest import PROJECT
from zenml_collab.core.artifacts.base import ArtifactRef, Presence, save_artifact
from zenml_collab.core.artifacts.gcs import GcsArtifactStore
from zenml_collab.errors import ConfigError, PermissionDeniedError
from zenml_collab.testing.fake_gcp import FakeGCP

BUCKET = "collab-artifacts"
MEMBER = "gina@proj-a.iam.gserviceaccount.com"
NEVER_STORED = ArtifactRef("0" * 32, "json", ("value.json",), 1)


@pytest.fixture
def store_for(fake_gcp_env: FakeGCP, gcp: FakeGCP, credentials_for: Callable[..., Any],
              tmp_path: Path) -> Iterator[Callable[..., GcsArtifactStore]]:
    """``store_for(email, bucket)``: the artifact store as that member, with its own cache."""
    from google.cloud import storage

    clients: list[Any] = []

    def make(email: str, bucket: str = BUCKET) -> GcsArtifactStore:
        client = storage.Client(project=PROJECT, credentials=credentials_for(email),
                                client_options={"api_endpoint": gcp.url})
        clients.append(client)
        return GcsArtifactStore(bucket, "team", tmp_path / email / bucket, client=client)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def stored(gcp: FakeGCP, store_for: Callable[..., GcsArtifactStore]) -> list[ArtifactRef]:
    """Three artifacts in a bucket where ``MEMBER`` may only read."""
    gcp.storage.create_bucket(BUCKET, PROJECT)
    writer = store_for("admin@proj-a.iam.gserviceaccount.com")
    return [save_artifact(writer, {"i": i}) for i in range(3)]


def _grant_reader(store: GcsArtifactStore) -> None:
    bucket = store.client.bucket(BUCKET)
    policy = bucket.get_iam_policy(requested_policy_version=3)
    policy.bindings.append({"role": "roles/storage.objectViewer",
                            "members": {f"serviceAccount:{MEMBER}"}})
    bucket.set_iam_policy(policy)


def test_a_batch_is_one_request_whose_calls_are_each_checked(
        gcp: FakeGCP, store_for: Callable[..., GcsArtifactStore],
        stored: list[ArtifactRef]) -> None:
    _grant_reader(store_for("admin@proj-a.iam.gserviceaccount.com"))
    reader = store_for(MEMBER)
    sent: list[str] = []
    reader.client._http.hooks["response"].append(
        lambda response, *_, **__: sent.append(response.request.path_url))
    before = len(gcp.requests)
    assert reader.presence_many([*stored, NEVER_STORED]) == {
        **{r.hash: Presence.PRESENT for r in stored}, NEVER_STORED.hash: Presence.MISSING}
    assert sent == ["/batch/storage/v1"]
    # The member's own calls (the admin's client may still be finishing its set-up calls).
    calls = [c for c in gcp.requests[before:] if c.member == MEMBER]
    assert [(c.method_id, c.member, c.status, c.mutating) for c in calls] == [
        ("storage.objects.list", MEMBER, 200, False)] * 4


def test_a_member_without_list_permission_gets_the_error_of_a_single_check(
        store_for: Callable[..., GcsArtifactStore], stored: list[ArtifactRef]) -> None:
    reader = store_for(MEMBER)
    with pytest.raises(PermissionDeniedError) as single:
        reader.presence(stored[0])
    with pytest.raises(PermissionDeniedError) as batched:
        reader.presence_many(stored)
    assert type(batched.value) is type(single.value)
    assert (batched.value.message, batched.value.hint) == (single.value.message,
                                                           single.value.hint)
    assert "storage.objects.list" in batched.value.message and BUCKET in batched.value.message


def test_a_missing_bucket_is_not_a_missing_artifact(
        gcp: FakeGCP, store_for: Callable[..., GcsArtifactStore],
        stored: list[ArtifactRef]) -> None:
    elsewhere = store_for("admin@proj-a.iam.gserviceaccount.com", bucket="no-such-bucket")
    with pytest.raises(ConfigError, match="gs://no-such-bucket does not exist"):
        elsewhere.presence_many(stored)


def test_a_503_on_one_call_is_retried_on_its_own(
        gcp: FakeGCP, store_for: Callable[..., GcsArtifactStore],
        stored: list[ArtifactRef], monkeypatch: pytest.MonkeyPatch) -> None:
    _grant_reader(store_for("admin@proj-a.iam.gserviceaccount.com"))
    reader = store_for(MEMBER)
    gcp.inject("storage.objects.list", status=503, times=1)
    before = len(gcp.requests)
    assert set(reader.presence_many(stored).values()) == {Presence.PRESENT}
    statuses = [c.status for c in gcp.requests[before:] if c.method_id == "storage.objects.list"]
    assert sorted(statuses) == [200, 200, 200, 503]  # three in the batch, one retried alone
