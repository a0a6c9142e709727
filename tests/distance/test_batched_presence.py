"""A cached run checks all its artifacts with one GCS request (issue 15), and the checks still
tell a missing artifact from a corrupt one."""

from __future__ import annotations

import shutil
import urllib.parse
import urllib.request
from pathlib import Path

import distance_steps as steps
import pytest
from distance_relays import Distance, distant_repo

from zenml_collab import Repository
from zenml_collab.core.artifacts.base import ArtifactRef
from zenml_collab.errors import ArtifactCorruptError

pytestmark = [pytest.mark.mysql, pytest.mark.gcs]


def object_url(distance: Distance, ref: ArtifactRef, file: str) -> str:
    """fake-gcs-server's own URL of a stored file (behind the store's back)."""
    name = urllib.parse.quote(f"team/artifacts/{ref.hash[:2]}/{ref.hash}/{file}", safe="")
    return f"{distance.endpoint}/storage/v1/b/{distance.bucket}/o/{name}"


def tamper(distance: Distance, ref: ArtifactRef, data: bytes | None) -> None:
    """Delete (``None``) or replace a stored file, as a careless or hostile teammate can."""
    if data is None:
        request = urllib.request.Request(object_url(distance, ref, ref.files[0]),
                                         method="DELETE")
    else:
        name = f"team/artifacts/{ref.hash[:2]}/{ref.hash}/{ref.files[0]}"
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        request = urllib.request.Request(
            f"{distance.endpoint}/upload/storage/v1/b/{distance.bucket}/o?{query}", data=data,
            method="POST", headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(request, timeout=30).close()


def gcs_requests_of_a_cached_run(repo: Repository, distance: Distance, length: int) -> int:
    steps.chain(f"batched-{length}", length).run(repo)  # cold
    distance.reset()
    run = steps.chain(f"batched-{length}", length).run(repo)
    assert set(run.statuses.values()) == {"cached"}
    return distance.gcs.stats.turns


def test_a_cached_run_of_5_or_40_steps_sends_one_gcs_request(
        tmp_path: Path, distance: Distance) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    assert [gcs_requests_of_a_cached_run(repo, distance, n) for n in (5, 40)] == [1, 1]


def test_a_deleted_data_file_still_makes_its_step_miss_with_reason_artifact_missing(
        tmp_path: Path, distance: Distance) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    tamper(distance, steps.chain("gone", 6).run(repo)["s03"].outputs["output"], None)
    distance.reset()
    run = steps.chain("gone", 6).run(repo)
    assert [(s.name, s.status, s.reason) for s in run.steps][2:5] == [
        ("s02", "cached", "cache hit"), ("s03", "executed", "artifact missing"),
        ("s04", "cached", "cache hit")]


def test_a_corrupt_artifact_makes_its_step_execute_with_reason_artifact_corrupt(
        tmp_path: Path, distance: Distance) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    first = steps.chain("tampered", 5).run(repo)
    ref = first["s02"].outputs["output"]
    tamper(distance, ref, b"666")
    shutil.rmtree(repo.root / ".collab" / "cache" / ref.hash)  # so the bucket's copy is read
    with pytest.raises(ArtifactCorruptError):
        Repository(repo.root).get_run(first.id).load("s02")  # noticed, remembered
    run = steps.chain("tampered", 5).run(repo)
    assert [(s.name, s.status, s.reason) for s in run.steps][1:4] == [
        ("s01", "cached", "cache hit"), ("s02", "executed", "artifact corrupt"),
        ("s03", "cached", "cache hit")]
    assert run.load("s02") == 3
