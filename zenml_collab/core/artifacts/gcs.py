"""Artifact store in a Google Cloud Storage bucket, with a local read-through cache.

Layout: ``gs://<bucket>/<prefix>/artifacts/<hash[:2]>/<hash>/<file>`` plus ``_manifest.json``
next to the files. The manifest is uploaded last, so an artifact is visible (``exists``) only
once every file is there. Every upload is create-only (``if_generation_match=0``): two members
writing the same content-addressed artifact at the same moment both succeed, one copy is kept,
and the loser's 412 means "already there".

Reads go through a local cache keyed by content hash (``<cache_dir>/<hash>/``): a download
lands in a temporary directory, is verified against the recorded hash, and only then renamed
into place, so the cache never holds a partial or corrupt artifact and a cache hit costs no
request at all. Artifacts this process uploads are moved into the cache too (write-through).

The client honours ``STORAGE_EMULATOR_HOST`` (fake-gcs-server in tests) and otherwise uses
Application Default Credentials. ``COLLAB_GCS_RETRY_TIMEOUT`` (seconds, default 60) bounds
how long 429/5xx responses and dropped connections are retried with exponential backoff.
Google libraries are imported inside functions so ``import zenml_collab`` stays light.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from zenml_collab.core.artifacts import gcs_batch, integrity
from zenml_collab.core.artifacts.base import MANIFEST, ArtifactRef, Presence
from zenml_collab.core.artifacts.gcs_common import (  # noqa: F401  (re-exported)
    DEFAULT_RETRY_TIMEOUT,
    REQUIRED_ROLE,
    _bucket_not_found,
    _retry,
    gcs_errors,
    object_fingerprint,
    parse_gcs_uri,
    read_object,
    storage_client,
)
from zenml_collab.core.hashing import hash_files
from zenml_collab.errors import (
    ArtifactCorruptError,
    ArtifactError,
    ArtifactMissingError,
)

log = logging.getLogger("zenml_collab.artifacts.gcs")
T = TypeVar("T")
U = TypeVar("U")

_MAX_WORKERS = 8
# Files at least this large are downloaded as parallel ranged reads.
CHUNKED_DOWNLOAD_THRESHOLD = 128 * 1024 * 1024
_CHUNK_SIZE = 32 * 1024 * 1024
def _too_large(limit: int, what: str) -> ArtifactCorruptError:
    return ArtifactCorruptError(
        f"{what} is larger than its artifact's recorded size ({limit} bytes); the download "
        "was stopped and nothing was used",
        "the stored objects were changed or damaged: run the pipeline again, the step that "
        "produced it executes and replaces them (reason `artifact corrupt`)")


class _Bounded:
    """A file that refuses to grow past the artifact's recorded size: an object replaced in
    the shared bucket by a huge one cannot fill the member's disk before the hash check."""

    def __init__(self, fh: Any, limit: int, content_hash: str) -> None:
        self._fh, self._limit, self._hash, self._written = fh, limit, content_hash, 0

    def write(self, data: bytes) -> int:
        self._written += len(data)
        if self._written > self._limit:
            raise _too_large(self._limit, f"a file of artifact {self._hash}")
        return int(self._fh.write(data))

    def __getattr__(self, name: str) -> Any:  # seek/tell/flush for the library's retries
        return getattr(self._fh, name)


# -- the store --------------------------------------------------------------------------------
class GcsArtifactStore:
    """Content-addressed artifacts in ``gs://bucket/prefix`` (see the module docstring)."""

    def __init__(self, bucket: str, prefix: str, cache_dir: Path, *, client: Any | None = None,
                 credentials_file: str | None = None, max_workers: int = _MAX_WORKERS,
                 chunked_download_threshold: int = CHUNKED_DOWNLOAD_THRESHOLD,
                 chunk_size: int = _CHUNK_SIZE) -> None:
        self.bucket_name = bucket
        self._credentials_file = credentials_file
        self.prefix = prefix.strip("/")
        self.uri = f"gs://{bucket}/{self.prefix}" if self.prefix else f"gs://{bucket}"
        self.cache_dir = cache_dir
        self.max_workers = max_workers
        self.chunked_download_threshold = chunked_download_threshold
        self.chunk_size = chunk_size
        self._client = client

    @classmethod
    def from_uri(cls, uri: str, *, cache_dir: Path, client: Any | None = None,
                 credentials_file: str | None = None) -> GcsArtifactStore:
        """``GcsArtifactStore.from_uri("gs://bucket/prefix", cache_dir=Path(".collab/cache"))``.

        ``credentials_file`` (the one `collab join` recorded) is used when the environment
        names none (GOOGLE_APPLICATION_CREDENTIALS wins, as everywhere).
        """
        bucket, prefix = parse_gcs_uri(uri)
        return cls(bucket, prefix, cache_dir, client=client, credentials_file=credentials_file)

    # -- plumbing -------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = storage_client(self._credentials_file)
        return self._client

    @property
    def _bucket(self) -> Any:
        # client.bucket() makes no request, unlike get_bucket().
        return self.client.bucket(self.bucket_name)

    def object_name(self, content_hash: str, file: str) -> str:
        """The object name of ``file`` of the artifact ``content_hash``."""
        base = f"artifacts/{content_hash[:2]}/{content_hash}/{file}"
        return f"{self.prefix}/{base}" if self.prefix else base

    def _parallel(self, work: Callable[[U], T], items: list[U]) -> list[T]:
        if len(items) <= 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items)),
                                thread_name_prefix="collab-gcs") as pool:
            return list(pool.map(work, items))

    def _tmp_root(self) -> Path:
        # Temporary directories live inside the cache so the final rename stays atomic.
        tmp = self.cache_dir / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp

    def _cached(self, content_hash: str) -> Path:
        return self.cache_dir / content_hash

    def _stamp(self, content_hash: str) -> Path:
        return self.cache_dir / ".stamps" / content_hash

    # -- the ArtifactStore protocol ---------------------------------------------------------
    def staging_dir(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="stage-", dir=self._tmp_root()))

    def commit(self, staged: Path, ref: ArtifactRef) -> None:
        """Upload the files create-only, then the manifest; a no-op if already stored.

        A copy known to be corrupt is overwritten, each object only if it is still the
        generation that failed verification (a teammate's repair in between wins).
        """
        presence = self.presence(ref)
        if presence is not Presence.PRESENT:
            bad = self._corrupt_generations(ref) if presence is Presence.CORRUPT else {}
            self._parallel(lambda name: self._upload(staged / name, ref.hash, name,
                                                     bad.get(name, 0)), list(ref.files))
            manifest = staged / MANIFEST
            if not manifest.exists():
                manifest.write_text(json.dumps(ref.to_json()), encoding="utf-8")
            # last: the artifact is now visible
            self._upload(manifest, ref.hash, MANIFEST, bad.get(MANIFEST, 0))
            self._corrupt_marker(ref.hash).unlink(missing_ok=True)
        self._adopt(staged, ref)

    def _upload(self, path: Path, content_hash: str, name: str, generation: int = 0) -> None:
        from google.api_core import exceptions as gexc

        blob = self._bucket.blob(self.object_name(content_hash, name))
        with gcs_errors(self.bucket_name, f"writing {blob.name}"):
            try:
                # if_generation_match=0: create only. The library retries such a conditional
                # upload safely; a 412 (here or on a retry) means the object is already there.
                # A non-zero generation replaces exactly the copy found corrupt.
                blob.upload_from_filename(str(path), if_generation_match=generation,
                                          retry=_retry(),
                                          content_type="application/octet-stream")
            except gexc.PreconditionFailed:
                log.debug("%s already stored", blob.name)
            except gexc.NotFound:
                raise _bucket_not_found(self.bucket_name) from None

    def _adopt(self, staged: Path, ref: ArtifactRef) -> None:
        """Move a committed staging directory into the local cache (write-through)."""
        final = self._cached(ref.hash)
        if final.is_dir():
            if integrity.check(final, ref, self._stamp(ref.hash)) is Presence.PRESENT:
                return
            self._evict(final)
        try:
            os.rename(staged, final)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            return
        integrity.write_stamp(final, ref, self._stamp(ref.hash))

    def _evict(self, cached: Path) -> None:
        """Remove a damaged cached copy (the bucket's copy is the truth)."""
        integrity.forget(cached, self._stamp(cached.name))
        aside = Path(tempfile.mkdtemp(prefix="evict-", dir=self._tmp_root()))
        with contextlib.suppress(OSError):  # a concurrent reader evicted it first
            os.rename(cached, aside / "old")
        shutil.rmtree(aside, ignore_errors=True)

    def _list(self, ref: ArtifactRef) -> dict[str, int]:
        prefix = self.object_name(ref.hash, "")
        with gcs_errors(self.bucket_name, f"checking {prefix}"):
            return {blob.name.removeprefix(prefix): int(blob.generation or 0)
                    for blob in self.client.list_blobs(self.bucket_name, prefix=prefix,
                                                       retry=_retry())}

    def exists(self, ref: ArtifactRef) -> bool:
        return self.presence(ref) is Presence.PRESENT

    def presence(self, ref: ArtifactRef) -> Presence:
        """One list request: are the manifest (written last) and every data file there?

        Checking the files too matters: a lifecycle rule or a hand clean-up can remove a data
        object and keep the manifest, and the artifact must then count as missing (and be
        re-uploaded by the next execution) rather than stay a cache hit that cannot load.
        Objects this machine found corrupt (their generation is remembered) count as corrupt
        until someone replaces them; a damaged local cached copy is evicted, not reported.
        """
        return self._decide(ref, self._list(ref))

    def presence_many(self, refs: Iterable[ArtifactRef]) -> dict[str, Presence]:
        """:meth:`presence` of each ref (by hash), in one batch request per 100 artifacts.

        The listings travel together (:mod:`.gcs_batch`); a folder the batch could not answer
        (a second page, a retryable error, a server without batches) is listed the ordinary
        way. Each artifact is then decided exactly as :meth:`presence` decides it.
        """
        unique = list({ref.hash: ref for ref in refs}.values())
        if len(unique) <= 1:  # one request either way
            return {ref.hash: self.presence(ref) for ref in unique}
        listed = gcs_batch.list_prefixes(
            self.client, self.bucket_name, [self.object_name(r.hash, "") for r in unique],
            max_workers=self.max_workers)
        generations = {r.hash: listed[self.object_name(r.hash, "")] for r in unique}
        again = [r for r in unique if generations[r.hash] is None]
        generations.update(zip((r.hash for r in again), self._parallel(self._list, again),
                               strict=True))
        return {r.hash: self._decide(r, generations[r.hash] or {}) for r in unique}

    def _decide(self, ref: ArtifactRef, generations: dict[str, int]) -> Presence:
        """What the listing of ``ref``'s folder (file name -> generation) says about it."""
        if MANIFEST not in generations or not all(n in generations for n in ref.files):
            return Presence.MISSING
        bad = self._corrupt_generations(ref)
        if bad:
            if any(generations.get(name) == gen for name, gen in bad.items()):
                return Presence.CORRUPT
            self._corrupt_marker(ref.hash).unlink(missing_ok=True)  # replaced since
        cached = self._cached(ref.hash)
        if (cached.is_dir()
                and integrity.check(cached, ref, self._stamp(ref.hash)) is Presence.CORRUPT):
            self._evict(cached)
        return Presence.PRESENT

    def _corrupt_marker(self, content_hash: str) -> Path:
        return self.cache_dir / ".corrupt" / f"{content_hash}.json"

    def _corrupt_generations(self, ref: ArtifactRef) -> dict[str, int]:
        try:
            data = json.loads(self._corrupt_marker(ref.hash).read_text(encoding="utf-8"))
            return {str(k): int(v) for k, v in data.items()}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def _mark_corrupt(self, ref: ArtifactRef, generations: dict[str, int]) -> None:
        marker = self._corrupt_marker(ref.hash)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(generations), encoding="utf-8")

    def local_dir(self, ref: ArtifactRef) -> Path:
        """The cached copy, or a verified download of it; a cache hit makes no request.

        A cached copy is verified against the recorded hash (once per process); a damaged
        one is evicted and downloaded again. A download that does not match is deleted, the
        objects' generations are remembered as corrupt (so the next run re-executes the step
        and overwrites them) and :class:`ArtifactCorruptError` is raised.
        """
        final = self._cached(ref.hash)
        if final.is_dir() and integrity.signature(final, ref) is not None:
            try:
                integrity.verify(final, ref, self._stamp(ref.hash), f"the local cache {final}")
                return final
            except ArtifactCorruptError:
                log.warning("cached copy of artifact %s was damaged; downloading it again",
                            ref.hash[:12])
                self._evict(final)
        tmp = Path(tempfile.mkdtemp(prefix="download-", dir=self._tmp_root()))
        try:
            try:
                generations = dict(zip(ref.files, self._parallel(
                    lambda name: self._download(ref, name, tmp / name), list(ref.files)),
                    strict=True))
            except ArtifactCorruptError:  # an object larger than recorded: stopped early
                self._mark_corrupt(ref, {n: g for n, g in self._list(ref).items()
                                         if n in ref.files})
                raise
            actual = hash_files(tmp, ref.files)
            if actual != ref.hash:
                if not all(generations.values()):  # no generation header: ask the listing
                    generations = {n: g for n, g in self._list(ref).items() if n in ref.files}
                self._mark_corrupt(ref, generations)
                raise ArtifactCorruptError(
                    f"artifact {ref.hash} downloaded from {self.location(ref)} does not match "
                    f"its recorded content hash (got {actual}); it was not used",
                    "the stored objects were changed or damaged: run the pipeline again, the "
                    "step that produced it executes and replaces them (reason `artifact "
                    "corrupt`)",
                )
            try:
                os.rename(tmp, final)
            except OSError as exc:
                # A concurrent reader of the same artifact won the rename: same content.
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            else:
                integrity.write_stamp(final, ref, self._stamp(ref.hash))
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final

    def _download(self, ref: ArtifactRef, name: str, dest: Path) -> int:
        """Download one file of ``ref``; returns the object's generation."""
        from google.api_core import exceptions as gexc

        if "/" in name or name in ("", ".", ".."):  # ArtifactRef.from_json refuses these too
            raise ArtifactError(f"refused the artifact file name {name!r}", None)
        blob = self._bucket.blob(self.object_name(ref.hash, name))
        with gcs_errors(self.bucket_name, f"reading {blob.name}"):
            try:
                if ref.size >= self.chunked_download_threshold:
                    self._download_chunked(blob, dest, ref.size)
                else:
                    with open(dest, "wb") as fh:
                        blob.download_to_file(_Bounded(fh, ref.size, ref.hash), retry=_retry())
            except gexc.NotFound:
                raise ArtifactMissingError(
                    f"artifact {ref.hash} is missing from {self.uri} (no {blob.name})",
                    "re-run the pipeline: the step that produced it will execute again",
                ) from None
        return int(blob.generation or 0)

    def _download_chunked(self, blob: Any, dest: Path, limit: int) -> None:
        from google.cloud.storage import transfer_manager

        blob.reload(retry=_retry())  # the size decides the ranges
        if blob.size > limit:
            raise _too_large(limit, blob.name)
        if blob.size < self.chunked_download_threshold:
            blob.download_to_filename(str(dest), retry=_retry())
            return
        transfer_manager.download_chunks_concurrently(
            blob, str(dest), chunk_size=self.chunk_size, worker_type=transfer_manager.THREAD,
            max_workers=self.max_workers, download_kwargs={"retry": _retry()})

    def location(self, ref: ArtifactRef) -> str:
        prefix = self.object_name(ref.hash, "").rstrip("/")
        return f"gs://{self.bucket_name}/{prefix}/"

    def check_access(self, *, timeout: float = 15.0) -> None:
        """Fail clearly if the bucket is missing, unreachable or not readable (one request)."""
        from google.api_core import exceptions as gexc

        with gcs_errors(self.bucket_name, "listing objects"):
            try:
                blobs = self.client.list_blobs(self.bucket_name, prefix=self.prefix or None,
                                               max_results=1, retry=_retry(timeout))
                list(blobs)
            except gexc.NotFound:
                raise _bucket_not_found(self.bucket_name) from None
