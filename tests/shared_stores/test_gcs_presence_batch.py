"""Batched presence checks (issue 15): one GCS request for many artifacts, against fake-gcs-server
through the counting proxy, and through a front that answers batches with broken bytes."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from shared_helpers import GcsProxy, RewritingRelay, overwrite_object

from zenml_collab.core.artifacts.base import (
    MANIFEST,
    ArtifactRef,
    Presence,
    load_artifact,
    presence_many,
    save_artifact,
)
from zenml_collab.core.artifacts.gcs import GcsArtifactStore
from zenml_collab.core.artifacts.local import LocalArtifactStore
from zenml_collab.errors import ArtifactCorruptError, ConnectivityError

pytestmark = pytest.mark.gcs

NEVER_STORED = ArtifactRef("0" * 32, "json", ("value.json",), 1)


def store(bucket: str, cache: Path) -> GcsArtifactStore:
    return GcsArtifactStore.from_uri(f"gs://{bucket}/team", cache_dir=cache)


def delete_object(s: GcsArtifactStore, name: str) -> None:
    s.client.bucket(s.bucket_name).blob(name).delete()


def batches(proxy: GcsProxy, since: int = 0) -> list[tuple[str, str, int, str]]:
    return [r for r in proxy.requests(since=since) if r[1].startswith("/batch/storage/v1")]


def lists(proxy: GcsProxy, since: int = 0) -> list[tuple[str, str, int, str]]:
    return [r for r in proxy.requests(since=since) if r[0] == "GET" and "prefix=" in r[1]]


def test_many_artifacts_are_checked_with_one_request(
        gcs_proxy: GcsProxy, gcs_bucket: str, tmp_path: Path) -> None:
    s = store(gcs_bucket, tmp_path / "a")
    refs = [save_artifact(s, {"i": i}) for i in range(5)]
    before = len(gcs_proxy.requests())
    assert presence_many(s, [*refs, NEVER_STORED]) == {
        **{r.hash: Presence.PRESENT for r in refs}, NEVER_STORED.hash: Presence.MISSING}
    assert [r[:3] for r in gcs_proxy.requests(since=before)] == [
        ("POST", "/batch/storage/v1", 200)]


def test_more_than_100_artifacts_take_one_batch_per_100(
        gcs_proxy: GcsProxy, gcs_bucket: str, tmp_path: Path) -> None:
    s = store(gcs_bucket, tmp_path / "a")
    stored = [save_artifact(s, i) for i in range(2)]
    never = [ArtifactRef(f"{n:032x}", "json", ("value.json",), 1) for n in range(148)]
    before = len(gcs_proxy.requests())
    answers = s.presence_many([stored[0], *never, stored[1]])
    assert answers == {**{r.hash: Presence.MISSING for r in never},
                       **{r.hash: Presence.PRESENT for r in stored}}
    assert len(batches(gcs_proxy, before)) == 2
    assert lists(gcs_proxy, before) == []


def test_each_artifact_is_decided_as_a_single_check_decides_it(
        gcs_proxy: GcsProxy, gcs_bucket: str, gcs_endpoint: str, tmp_path: Path) -> None:
    writer = store(gcs_bucket, tmp_path / "writer")
    present, no_data, no_manifest, corrupt = (save_artifact(writer, {"k": k}) for k in range(4))
    delete_object(writer, writer.object_name(no_data.hash, "value.json"))
    delete_object(writer, writer.object_name(no_manifest.hash, MANIFEST))
    overwrite_object(gcs_endpoint, gcs_bucket, writer.object_name(corrupt.hash, "value.json"),
                     b'{"k": "evil"}')
    me = store(gcs_bucket, tmp_path / "me")
    with pytest.raises(ArtifactCorruptError):
        load_artifact(me, corrupt)  # the download fails: its generation is remembered
    refs = [present, no_data, no_manifest, corrupt, NEVER_STORED]
    batched = me.presence_many(refs)
    assert batched == {r.hash: me.presence(r) for r in refs}
    assert [batched[r.hash] for r in refs] == [Presence.PRESENT, Presence.MISSING,
                                               Presence.MISSING, Presence.CORRUPT,
                                               Presence.MISSING]


def test_a_damaged_cached_copy_is_evicted_by_the_batched_check(
        gcs_proxy: GcsProxy, gcs_bucket: str, tmp_path: Path) -> None:
    s = store(gcs_bucket, tmp_path / "a")
    refs = [save_artifact(s, {"rows": [i]}) for i in range(3)]
    cached = tmp_path / "a" / refs[1].hash / "value.json"
    cached.write_text('{"rows": [666]}')
    again = store(gcs_bucket, tmp_path / "a")  # a later command, same cache
    assert set(again.presence_many(refs).values()) == {Presence.PRESENT}  # the bucket's is fine
    assert not cached.exists()
    assert load_artifact(again, refs[1]) == {"rows": [1]}


def test_a_folder_with_more_objects_than_a_page_is_listed_page_by_page(
        gcs_proxy: GcsProxy, gcs_bucket: str, gcs_endpoint: str, tmp_path: Path) -> None:
    s = store(gcs_bucket, tmp_path / "a")
    refs = [save_artifact(s, {"i": i}) for i in range(3)]
    for n in range(40):  # what a hostile teammate can store under an artifact's folder
        overwrite_object(gcs_endpoint, gcs_bucket, s.object_name(refs[0].hash, f"junk-{n}"), b"")
    before = len(gcs_proxy.requests())
    assert set(s.presence_many(refs).values()) == {Presence.PRESENT}
    assert len(batches(gcs_proxy, before)) == 1
    assert {refs[0].hash in urllib.parse.unquote(r[1]) for r in lists(gcs_proxy, before)} == {
        True}


def test_a_503_on_the_batch_is_retried(gcs_proxy: GcsProxy, gcs_bucket: str,
                                       tmp_path: Path) -> None:
    s = store(gcs_bucket, tmp_path / "a")
    refs = [save_artifact(s, i) for i in range(4)]
    fault = gcs_proxy.inject("POST", "/batch/", 503, times=2)
    assert set(s.presence_many(refs).values()) == {Presence.PRESENT}
    assert fault.hits == 2


@pytest.mark.parametrize("status", [400, 404, 501])
def test_a_server_without_batches_gets_one_list_per_artifact_from_then_on(
        gcs_proxy: GcsProxy, gcs_bucket: str, tmp_path: Path, status: int) -> None:
    s = store(gcs_bucket, tmp_path / "a")
    refs = [save_artifact(s, i) for i in range(4)]
    gcs_proxy.inject("POST", "/batch/", status, times=1)
    before = len(gcs_proxy.requests())
    assert presence_many(s, [*refs, NEVER_STORED])[NEVER_STORED.hash] is Presence.MISSING
    assert len(batches(gcs_proxy, before)) == 1 and len(lists(gcs_proxy, before)) == 5
    before = len(gcs_proxy.requests())
    assert set(s.presence_many(refs).values()) == {Presence.PRESENT}
    assert batches(gcs_proxy, before) == []  # remembered for the process


def test_the_local_store_answers_without_a_batch(tmp_path: Path) -> None:
    local = LocalArtifactStore(tmp_path / "store")
    refs = [save_artifact(local, i) for i in range(3)]
    assert presence_many(local, [*refs, NEVER_STORED]) == {
        **{r.hash: Presence.PRESENT for r in refs}, NEVER_STORED.hash: Presence.MISSING}


# -- a front that answers batches with broken bytes -------------------------------------------
Rewrite = Callable[[str, bytes], tuple[str, bytes]]


def _batch_front(upstream: str, rewrite: Rewrite) -> RewritingRelay:
    """Forwards everything to fake-gcs-server; a batch's answer (content type, body) passes
    through ``rewrite`` first."""
    return RewritingRelay(upstream, lambda method, path, content_type, data: (
        rewrite(content_type, data) if path.startswith("/batch/")
        else (content_type, data)))


def _boundary(content_type: str) -> bytes:
    return content_type.split("boundary=", 1)[1].strip('"').encode()


def _drop_last_part(content_type: str, data: bytes) -> tuple[str, bytes]:
    delimiter = b"--" + _boundary(content_type)
    parts = data.split(delimiter)
    return content_type, delimiter.join(parts[:-2] + parts[-1:])


REWRITES: dict[str, tuple[Rewrite, str]] = {
    "not multipart": (lambda _t, _d: ("application/json", b'{"items": []}'), "multipart/mixed"),
    "no closing boundary": (lambda t, d: (t, d[:len(d) // 2]), "closing boundary"),
    "a part missing": (_drop_last_part, "parts for"),
    "an unknown Content-ID": (lambda t, d: (t, d.replace(b"<response-", b"<response-x")),
                              "names no call"),
    "a part that is not HTTP": (lambda t, d: (t, d.replace(b"HTTP/1.1 200 OK", b"hello")),
                                "not an HTTP response"),
    "a listing outside the folder": (lambda t, d: (t, d.replace(b'"name":"team/', b'"name":"x/')),
                                     "outside"),
    "oversized": (lambda t, d: (t, d + b"\r\n" + b"x" * (4 << 20)), "larger than"),
}


@pytest.fixture
def front(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch,
          request: pytest.FixtureRequest) -> Iterator[None]:
    rewrite, _ = REWRITES[request.param]
    relay = _batch_front(gcs_endpoint, rewrite)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", relay.start())
    monkeypatch.setenv("COLLAB_GCS_RETRY_TIMEOUT", "2")
    yield
    relay.stop()


@pytest.mark.parametrize("front", list(REWRITES), indirect=True)
def test_a_malformed_batch_answer_is_a_clear_connectivity_error(
        gcs_bucket: str, front: None, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    s = store(gcs_bucket, tmp_path / "a")
    refs = [save_artifact(s, {"i": i}) for i in range(3)]
    with pytest.raises(ConnectivityError) as info:
        s.presence_many(refs)
    assert gcs_bucket in info.value.message and "malformed" in info.value.message
    assert REWRITES[request.node.callspec.params["front"]][1] in info.value.message
    assert "proxy" in (info.value.hint or "")
