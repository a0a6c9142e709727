"""GcsArtifactStore against fake-gcs-server (through a counting, fault-injecting proxy)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from shared_helpers import GcsProxy, list_objects, overwrite_object

from zenml_collab.core.artifacts.base import MANIFEST, ArtifactRef, load_artifact, save_artifact
from zenml_collab.core.artifacts.gcs import GcsArtifactStore, object_fingerprint, read_object
from zenml_collab.core.hashing import hash_files
from zenml_collab.errors import (
    ArtifactError,
    ArtifactMissingError,
    ConfigError,
    ConnectivityError,
    PermissionDeniedError,
)

pytestmark = pytest.mark.gcs


def store(bucket: str, cache: Path, prefix: str = "team/zenml") -> GcsArtifactStore:
    return GcsArtifactStore.from_uri(f"gs://{bucket}/{prefix}", cache_dir=cache)


def test_saved_artifact_lands_at_its_content_address_with_the_manifest(
        gcs_proxy: GcsProxy, gcs_bucket: str, gcs_endpoint: str, tmp_path: Path) -> None:
    ref = save_artifact(store(gcs_bucket, tmp_path / "a"), {"rows": [1, 2, 3]})
    names = {o["name"] for o in list_objects(gcs_endpoint, gcs_bucket)}
    base = f"team/zenml/artifacts/{ref.hash[:2]}/{ref.hash}"
    assert names == {f"{base}/value.json", f"{base}/{MANIFEST}"}


def test_manifest_is_uploaded_after_every_file(gcs_proxy: GcsProxy, gcs_bucket: str,
                                               tmp_path: Path) -> None:
    import pandas as pd

    save_artifact(store(gcs_bucket, tmp_path / "a"), pd.Series([1.0, 2.0]))  # two files
    uploads = [name for method, urlpath, status, name in gcs_proxy.requests()
               if method == "POST" and "/upload/" in urlpath and status == 200]
    assert len(uploads) == 3
    assert MANIFEST in uploads[-1]
    assert all(MANIFEST not in u for u in uploads[:-1])


def test_another_member_reads_the_artifact_through_its_own_cache(
        gcs_proxy: GcsProxy, gcs_bucket: str, tmp_path: Path) -> None:
    ref = save_artifact(store(gcs_bucket, tmp_path / "a"), {"value": 42})
    reader = store(gcs_bucket, tmp_path / "b")
    assert not (tmp_path / "b" / ref.hash).exists()
    assert load_artifact(reader, ref) == {"value": 42}
    assert (tmp_path / "b" / ref.hash / "value.json").is_file()
    before = len(gcs_proxy.requests())
    assert load_artifact(reader, ref) == {"value": 42}
    assert gcs_proxy.requests(since=before) == []  # a cache hit makes no request


def test_exists_is_one_request(gcs_proxy: GcsProxy, gcs_bucket: str, tmp_path: Path) -> None:
    s = store(gcs_bucket, tmp_path / "a")
    ref = save_artifact(s, [1, 2])
    s.exists(ref)  # warm the client (it may fetch bucket metadata once, in the background)
    before = len(gcs_proxy.requests())
    assert s.exists(ref) is True
    missing = ArtifactRef("0" * 32, "json", ("value.json",), 1)
    assert s.exists(missing) is False
    seen = [r for r in gcs_proxy.requests(since=before) if "/o" in r[1]]
    assert len(seen) == 2
    assert all("prefix=" in r[1] for r in seen)  # one listing of the artifact's folder each


def test_an_artifact_missing_a_data_file_is_not_there_and_is_restored(
        gcs_proxy: GcsProxy, gcs_bucket: str, tmp_path: Path) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    s = store(gcs_bucket, tmp_path / "a")
    ref = save_artifact(s, b"payload")
    client = storage.Client(project="test", credentials=AnonymousCredentials())
    client.bucket(gcs_bucket).blob(s.object_name(ref.hash, "data.bin")).delete()
    assert s.exists(ref) is False  # the manifest alone does not make an artifact
    assert save_artifact(store(gcs_bucket, tmp_path / "b"), b"payload") == ref
    assert s.exists(ref) is True


def test_identical_artifacts_from_two_members_are_stored_once(
        gcs_proxy: GcsProxy, gcs_bucket: str, gcs_endpoint: str, tmp_path: Path) -> None:
    first = save_artifact(store(gcs_bucket, tmp_path / "a"), {"same": True})
    generations = {o["name"]: o["generation"] for o in list_objects(gcs_endpoint, gcs_bucket)}
    second = save_artifact(store(gcs_bucket, tmp_path / "b"), {"same": True})
    after = {o["name"]: o["generation"] for o in list_objects(gcs_endpoint, gcs_bucket)}
    assert first == second
    assert after == generations  # nothing was rewritten


def test_concurrent_writers_of_one_artifact_all_succeed_and_store_one_copy(
        gcs_proxy: GcsProxy, gcs_bucket: str, gcs_endpoint: str, tmp_path: Path) -> None:
    barrier = threading.Barrier(6)
    refs: list[ArtifactRef] = []
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        s = store(gcs_bucket, tmp_path / f"m{i}")
        staged = s.staging_dir()
        (staged / "value.json").write_text('{"n": 1}')
        ref = ArtifactRef(hash_files(staged, ["value.json"]), "json", ("value.json",), 8)
        barrier.wait()
        try:
            s.commit(staged, ref)
            refs.append(ref)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(refs)) == 1 and len(refs) == 6
    names = [o["name"] for o in list_objects(gcs_endpoint, gcs_bucket)]
    assert sorted(names) == sorted({n for n in names})
    assert len(names) == 2  # value.json + manifest


def test_many_files_upload_and_download_in_parallel_and_verify(
        gcs_proxy: GcsProxy, gcs_bucket: str, tmp_path: Path) -> None:
    writer = store(gcs_bucket, tmp_path / "a")
    staged = writer.staging_dir()
    files = [f"part-{i:02d}.bin" for i in range(24)]
    for i, name in enumerate(files):
        (staged / name).write_bytes(os.urandom(1000 + i))
    ref = ArtifactRef(hash_files(staged, files), "bytes", tuple(files),
                      sum(1000 + i for i in range(24)))
    writer.commit(staged, ref)
    reader = store(gcs_bucket, tmp_path / "b")
    local = reader.local_dir(ref)
    assert hash_files(local, files) == ref.hash


def test_large_files_download_as_parallel_ranges(gcs_proxy: GcsProxy, gcs_bucket: str,
                                                 tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    ref = save_artifact(store(gcs_bucket, tmp_path / "a"), payload)
    reader = GcsArtifactStore(gcs_bucket, "team/zenml", tmp_path / "b",
                              chunked_download_threshold=1024 * 1024, chunk_size=1024 * 1024)
    assert load_artifact(reader, ref) == payload
    ranged = [r for r in gcs_proxy.requests() if "alt=media" in r[1] or "/download/" in r[1]]
    assert len(ranged) >= 4  # one request per 1 MiB chunk


def test_a_download_that_does_not_match_its_hash_fails_and_leaves_nothing_in_the_cache(
        gcs_proxy: GcsProxy, gcs_bucket: str, gcs_endpoint: str, tmp_path: Path) -> None:
    writer = store(gcs_bucket, tmp_path / "a")
    ref = save_artifact(writer, {"model": "good"})
    overwrite_object(gcs_endpoint, gcs_bucket, writer.object_name(ref.hash, "value.json"),
                     b'{"model": "evil"}')
    reader = store(gcs_bucket, tmp_path / "b")
    with pytest.raises(ArtifactError, match="does not match its recorded content hash") as info:
        reader.local_dir(ref)
    assert ref.hash in info.value.message and info.value.hint
    assert not (tmp_path / "b" / ref.hash).exists()
    assert list((tmp_path / "b" / ".tmp").iterdir()) == []


def test_a_503_on_upload_is_retried(gcs_proxy: GcsProxy, gcs_bucket: str,
                                    tmp_path: Path) -> None:
    fault = gcs_proxy.inject("POST", "/upload/", 503, times=2)
    ref = save_artifact(store(gcs_bucket, tmp_path / "a"), {"retry": "me"})
    assert fault.hits == 2
    assert load_artifact(store(gcs_bucket, tmp_path / "b"), ref) == {"retry": "me"}


def test_a_403_names_the_bucket_and_the_role_to_grant(gcs_proxy: GcsProxy, gcs_bucket: str,
                                                      tmp_path: Path) -> None:
    gcs_proxy.inject("GET", "prefix=", 403)
    s = store(gcs_bucket, tmp_path / "a")
    with pytest.raises(PermissionDeniedError) as info:
        s.exists(ArtifactRef("ab" * 16, "json", ("value.json",), 1))
    assert gcs_bucket in info.value.message
    assert "roles/storage.objectAdmin" in (info.value.hint or "")


def test_an_unreachable_endpoint_is_a_connectivity_error(
        gcs_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("COLLAB_GCS_RETRY_TIMEOUT", "1")
    with pytest.raises(ConnectivityError, match=gcs_bucket):
        store(gcs_bucket, tmp_path / "a").exists(ArtifactRef("ab" * 16, "json", ("x",), 1))


def test_a_deleted_object_is_reported_missing(gcs_proxy: GcsProxy, gcs_bucket: str,
                                              gcs_endpoint: str, tmp_path: Path) -> None:
    import urllib.parse
    import urllib.request

    writer = store(gcs_bucket, tmp_path / "a")
    ref = save_artifact(writer, [9])
    name = urllib.parse.quote(writer.object_name(ref.hash, "value.json"), safe="")
    urllib.request.urlopen(urllib.request.Request(
        f"{gcs_endpoint}/storage/v1/b/{gcs_bucket}/o/{name}", method="DELETE")).close()
    with pytest.raises(ArtifactMissingError):
        store(gcs_bucket, tmp_path / "b").local_dir(ref)


def test_datasource_helpers_read_an_object_and_fingerprint_its_content(
        gcs_proxy: GcsProxy, gcs_bucket: str, gcs_endpoint: str) -> None:
    overwrite_object(gcs_endpoint, gcs_bucket, "data/x.csv", b"a,b\n1,2\n")
    uri = f"gs://{gcs_bucket}/data/x.csv"
    assert read_object(uri) == b"a,b\n1,2\n"
    first = object_fingerprint(uri)
    overwrite_object(gcs_endpoint, gcs_bucket, "data/x.csv", b"a,b\n1,2\n")
    assert object_fingerprint(uri) == first  # same bytes re-uploaded: same fingerprint
    overwrite_object(gcs_endpoint, gcs_bucket, "data/x.csv", b"a,b\n1,3\n")
    assert object_fingerprint(uri) != first
    with pytest.raises(ConfigError, match="does not exist"):
        read_object(f"gs://{gcs_bucket}/data/missing.csv")


@pytest.mark.parametrize("uri", ["gs://", "gs:///prefix", "gs://UPPER/x", "gs://a/x"])
def test_a_uri_without_a_valid_bucket_is_rejected(uri: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid bucket"):
        GcsArtifactStore.from_uri(uri, cache_dir=tmp_path)
