"""Artifact uploads off the run's critical path (DESIGN §12).

On a remote store an executed step's outputs cost several sequential requests (a presence
check, the files, then the manifest that makes them visible): at 50 ms from GCS that is most
of a trivial step's time. :class:`DeferredUploads` wraps the store for the runner's saves and
input loads: a save hashes and stages locally as before, then its commit (the store's own,
unchanged: presence check, create-only uploads, manifest last) runs on a thread pool while the
run goes on. A later step reading that artifact reads the staged bytes (hard links, verified
against the hash like any local copy), so a chain never waits for an upload.

The runner waits for every pending commit before it writes a record that names the artifact
(:meth:`DeferredUploads.wait`), so a cache entry never points at an artifact that is not
stored yet, and a failed upload fails the run with the store's own error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from zenml_collab.core.artifacts.base import ArtifactRef, ArtifactStore, verify_files

log = logging.getLogger("zenml_collab.uploads")

#: Commits in flight at once (each uploads its files in parallel itself).
UPLOAD_WORKERS = 8


class DeferredUploads:
    """``store`` for saving and loading within one run, its commits in the background.

    Only the runner's ``save_artifact`` and input loads go through it. :meth:`exists` answers
    from this run's pending commits only: for anything else it says "no" without a request,
    and the background commit, which checks the store itself before uploading, decides (an
    artifact a teammate already stored is not uploaded again).
    """

    def __init__(self, store: ArtifactStore, workers: int = UPLOAD_WORKERS) -> None:
        self._store = store
        self.uri = store.uri
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collab-upload")
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Future[None], Path]] = {}
        self._verified: set[str] = set()

    # -- the store interface the savers and loaders use -------------------------------------
    def staging_dir(self) -> Path:
        return self._store.staging_dir()

    def exists(self, ref: ArtifactRef) -> bool:
        with self._lock:
            return ref.hash in self._pending

    def commit(self, staged: Path, ref: ArtifactRef) -> None:
        """Schedule the store's commit of ``staged``; keep a readable copy for this run."""
        with self._lock:
            if ref.hash in self._pending:
                return  # the same content, already on its way (the caller removes staged)
            holding = staged.with_name(staged.name + ".deferred")
            os.rename(staged, holding)  # save_artifact removes ``staged`` when we return
            readable = staged.with_name(staged.name + ".read")
            readable.mkdir()
            for name in ref.files:
                try:
                    os.link(holding / name, readable / name)
                except OSError:  # a filesystem without hard links
                    shutil.copy2(holding / name, readable / name)
            future = self._pool.submit(self._commit, holding, ref)
            self._pending[ref.hash] = (future, readable)

    def local_dir(self, ref: ArtifactRef) -> Path:
        with self._lock:
            pending = self._pending.get(ref.hash)
        if pending is None:
            return self._store.local_dir(ref)
        readable = pending[1]
        if ref.hash not in self._verified:  # served only if the bytes match, as everywhere
            verify_files(readable, ref, f"the staged copy {readable}")
            self._verified.add(ref.hash)
        return readable

    def presence(self, ref: ArtifactRef) -> Any:
        return self._store.presence(ref)

    def location(self, ref: ArtifactRef) -> str:
        return self._store.location(ref)

    # -- the runner's side ------------------------------------------------------------------
    def wait(self) -> None:
        """Return when every scheduled commit is done; raise the first commit's error."""
        with self._lock:
            futures = [future for future, _ in self._pending.values()]
        for future in futures:
            future.result()

    def close(self) -> None:
        """Wait for the commits (their errors are the caller's to have seen through
        :meth:`wait`) and remove the readable copies."""
        self._pool.shutdown(wait=True)
        with self._lock:
            pending, self._pending = self._pending, {}
        for _, readable in pending.values():
            shutil.rmtree(readable, ignore_errors=True)

    def _commit(self, holding: Path, ref: ArtifactRef) -> None:
        try:
            self._store.commit(holding, ref)
        finally:
            with contextlib.suppress(OSError):
                if holding.exists():
                    shutil.rmtree(holding)
