"""Red-team findings against the GCS store (a flaky network between a member and the bucket):
each test names a behaviour that must hold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from shared_helpers import RewritingRelay

from zenml_collab.core.artifacts.base import ArtifactRef, load_artifact, save_artifact
from zenml_collab.core.artifacts.gcs import GcsArtifactStore
from zenml_collab.errors import CollabError

pytestmark = pytest.mark.gcs

class _Mangler(RewritingRelay):
    """Flips one byte of every media download (what a broken middlebox or a flaky link does),
    keeping the object's hash headers."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, self._flip)
        self.mangled = 0

    def _flip(self, method: str, path: str, content_type: str, data: bytes
              ) -> tuple[str, bytes]:
        if method == "GET" and "alt=media" in path and data and "json" not in content_type:
            self.mangled += 1
            return content_type, data[:-1] + bytes([data[-1] ^ 0xFF])
        return content_type, data


@pytest.fixture
def mangler(gcs_endpoint: str, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[_Mangler]:
    relay = _Mangler(gcs_endpoint)
    relay.start()
    monkeypatch.setenv("COLLAB_GCS_RETRY_TIMEOUT", "3")
    yield relay
    relay.stop()


def test_a_download_damaged_in_transit_is_a_clear_error_never_a_crash(
        mangler: _Mangler, gcs_endpoint: str, gcs_bucket: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage library checks the object's crc32c and raises its own DataCorruption (not a
    Google API error): it must reach the member as a CollabError (message + hint), not as an
    'internal error' traceback, and the team's good object must not be marked corrupt."""
    writer = GcsArtifactStore.from_uri(f"gs://{gcs_bucket}/team", cache_dir=tmp_path / "w")
    ref = save_artifact(writer, {"weights": list(range(100))})
    ref = ArtifactRef.from_json(ref.to_json(), origin="a test")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", mangler.url)
    reader = GcsArtifactStore.from_uri(f"gs://{gcs_bucket}/team", cache_dir=tmp_path / "r")
    with pytest.raises(CollabError) as info:
        load_artifact(reader, ref)
    assert mangler.mangled >= 1
    assert info.value.hint
    assert not any((tmp_path / "r" / ".corrupt").glob("*")), "a flaky link is not corruption"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    healthy = GcsArtifactStore.from_uri(f"gs://{gcs_bucket}/team", cache_dir=tmp_path / "r")
    assert load_artifact(healthy, ref) == {"weights": list(range(100))}


def test_an_object_replaced_by_a_huge_one_is_stopped_at_the_recorded_size_and_repaired(
        gcs_endpoint: str, gcs_bucket: str, tmp_path: Path) -> None:
    """A teammate (objectAdmin) replaces an artifact's object with a huge one: the member's
    download stops once it passes the recorded size (their disk is not filled before the hash
    check), the artifact counts as corrupt, and the next save of the same value repairs it."""
    from shared_helpers import overwrite_object

    from zenml_collab.core.artifacts.base import Presence
    from zenml_collab.errors import ArtifactCorruptError

    writer = GcsArtifactStore.from_uri(f"gs://{gcs_bucket}/team", cache_dir=tmp_path / "w")
    value = {"weights": list(range(100))}
    ref = ArtifactRef.from_json(save_artifact(writer, value).to_json(), origin="a test")
    overwrite_object(gcs_endpoint, gcs_bucket, writer.object_name(ref.hash, "value.json"),
                     b"x" * (4 << 20))
    reader = GcsArtifactStore.from_uri(f"gs://{gcs_bucket}/team", cache_dir=tmp_path / "r")
    with pytest.raises(ArtifactCorruptError) as info:
        load_artifact(reader, ref)
    assert "larger than" in info.value.message and info.value.hint
    assert not any((tmp_path / "r" / ".tmp").iterdir())
    assert reader.presence(ref) is Presence.CORRUPT
    assert save_artifact(reader, value) == ref  # the re-execution's output replaces it
    fresh = GcsArtifactStore.from_uri(f"gs://{gcs_bucket}/team", cache_dir=tmp_path / "x")
    assert load_artifact(fresh, ref) == value


def test_a_large_artifact_still_downloads_in_chunks(gcs_bucket: str, tmp_path: Path) -> None:
    import numpy as np

    writer = GcsArtifactStore.from_uri(f"gs://{gcs_bucket}/team", cache_dir=tmp_path / "w")
    array = np.arange(300_000, dtype=np.int64)
    ref = ArtifactRef.from_json(save_artifact(writer, array).to_json(), origin="a test")
    reader = GcsArtifactStore(gcs_bucket, "team", tmp_path / "r",
                              chunked_download_threshold=1 << 20, chunk_size=1 << 19)
    assert (load_artifact(reader, ref) == array).all()
