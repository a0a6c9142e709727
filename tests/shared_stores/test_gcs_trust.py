"""The bucket is shared, so its bytes are untrusted (DESIGN §10): against fake-gcs-server."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from shared_helpers import GcsProxy, overwrite_object

from zenml_collab.core.artifacts.base import (
    ArtifactRef,
    Presence,
    load_artifact,
    save_artifact,
)
from zenml_collab.core.artifacts.gcs import GcsArtifactStore
from zenml_collab.errors import ArtifactCorruptError, ArtifactError, MaterializerError
from zenml_collab.testing.hostile import store_raw_artifact

pytestmark = pytest.mark.gcs


def store(bucket: str, cache: Path) -> GcsArtifactStore:
    return GcsArtifactStore.from_uri(f"gs://{bucket}/team", cache_dir=cache)


class _Canary:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


_upload_raw = store_raw_artifact  # what a hostile teammate can do


@pytest.mark.parametrize(("materializer", "file"), [("json", "value.json"),
                                                    ("numpy", "array.npy"),
                                                    ("sklearn", "model.skops"),
                                                    ("sklearn", "model.joblib")])
def test_a_teammates_pickle_under_any_label_never_runs_on_my_machine(
        gcs_proxy: GcsProxy, gcs_bucket: str, tmp_path: Path, materializer: str, file: str) -> None:
    canary = tmp_path / "canary"
    ref = _upload_raw(store(gcs_bucket, tmp_path / "mallory"), materializer,
                      {file: pickle.dumps(_Canary(canary))})
    with pytest.raises(MaterializerError) as info:
        load_artifact(store(gcs_bucket, tmp_path / "me"), ref)
    assert info.value.hint
    assert not canary.exists()


def test_a_file_name_outside_the_layout_is_never_downloaded(
        gcs_proxy: GcsProxy, gcs_bucket: str, tmp_path: Path) -> None:
    good = save_artifact(store(gcs_bucket, tmp_path / "a"), {"x": 1})
    hostile = ArtifactRef(good.hash, "json", ("../../../outside.txt",), good.size)
    with pytest.raises(ArtifactError, match="refused"):
        store(gcs_bucket, tmp_path / "me" / "cache").local_dir(hostile)
    assert not (tmp_path / "outside.txt").exists()
    assert not list(tmp_path.rglob("outside.txt"))


def test_a_replaced_object_is_corrupt_until_the_step_rewrites_it(
        gcs_proxy: GcsProxy, gcs_bucket: str, gcs_endpoint: str, tmp_path: Path) -> None:
    writer = store(gcs_bucket, tmp_path / "a")
    ref = save_artifact(writer, {"model": "good"})
    overwrite_object(gcs_endpoint, gcs_bucket, writer.object_name(ref.hash, "value.json"),
                     b'{"model": "evil"}')
    me = store(gcs_bucket, tmp_path / "me")
    assert me.presence(ref) is Presence.PRESENT  # nothing tells, until the bytes are read
    with pytest.raises(ArtifactCorruptError, match="artifact corrupt"):
        load_artifact(me, ref)
    assert not (tmp_path / "me" / ref.hash).exists()
    assert me.presence(ref) is Presence.CORRUPT  # so the runner re-executes the step
    # The re-execution produces the good bytes again; commit replaces the corrupt object.
    again = save_artifact(me, {"model": "good"})
    assert again == ref
    assert me.presence(ref) is Presence.PRESENT
    fresh = store(gcs_bucket, tmp_path / "someone else")
    assert load_artifact(fresh, ref) == {"model": "good"}


def test_an_edited_cached_copy_is_never_served_and_is_downloaded_again(
        gcs_proxy: GcsProxy, gcs_bucket: str, tmp_path: Path) -> None:
    ref = save_artifact(store(gcs_bucket, tmp_path / "a"), {"rows": [1, 2, 3]})
    me = store(gcs_bucket, tmp_path / "me")
    assert load_artifact(me, ref) == {"rows": [1, 2, 3]}
    (tmp_path / "me" / ref.hash / "value.json").write_text(json.dumps({"rows": [6, 6, 6]}))
    me2 = store(gcs_bucket, tmp_path / "me")  # the same cache, as a later command sees it
    before = len(gcs_proxy.requests())
    assert load_artifact(me2, ref) == {"rows": [1, 2, 3]}
    assert any("value.json" in r[1] or "value.json" in r[3]
               for r in gcs_proxy.requests(since=before))  # downloaded again
