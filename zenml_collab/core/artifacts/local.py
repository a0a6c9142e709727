"""Artifact store in a local (or network-mounted) folder."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from zenml_collab.core.artifacts import integrity
from zenml_collab.core.artifacts.base import ArtifactRef, Presence
from zenml_collab.errors import ArtifactMissingError


class LocalArtifactStore:
    """``<root>/<hash[:2]>/<hash>/`` directories, made visible by an atomic rename.

    Every load is verified against the recorded hash (:mod:`.integrity`); a corrupt directory
    counts as absent, and the next commit of the same content replaces it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = str(root)
        self._tmp = root / ".tmp"

    def _final(self, content_hash: str) -> Path:
        return self.root / content_hash[:2] / content_hash

    def _stamp(self, content_hash: str) -> Path:
        return self.root / ".stamps" / content_hash[:2] / content_hash

    def staging_dir(self) -> Path:
        # Staging inside the store keeps the final rename on one filesystem, hence atomic.
        self._tmp.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="stage-", dir=self._tmp))

    def commit(self, staged: Path, ref: ArtifactRef) -> None:
        final = self._final(ref.hash)
        if self.presence(ref) is Presence.PRESENT:
            return
        if final.is_dir():
            # A damaged or corrupt copy (a file deleted or edited by hand): move it aside,
            # then replace it.
            integrity.forget(final, self._stamp(ref.hash))
            broken = Path(tempfile.mkdtemp(prefix="broken-", dir=self._tmp))
            os.rename(final, broken / "old")
            shutil.rmtree(broken, ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staged, final)
        except OSError as exc:
            # Another writer got there first with the same content: that copy is as good.
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
                raise
            return
        # The staged files were hashed as they were written: stamp them as verified.
        integrity.write_stamp(final, ref, self._stamp(ref.hash))

    def exists(self, ref: ArtifactRef) -> bool:
        return self.presence(ref) is Presence.PRESENT

    def presence(self, ref: ArtifactRef) -> Presence:
        return integrity.check(self._final(ref.hash), ref, self._stamp(ref.hash))

    def local_dir(self, ref: ArtifactRef) -> Path:
        final = self._final(ref.hash)
        if integrity.signature(final, ref) is None:
            raise ArtifactMissingError(
                f"artifact {ref.hash} is missing from {self.root}",
                "re-run the pipeline: the step that produced it will execute again",
            )
        integrity.verify(final, ref, self._stamp(ref.hash), str(final))
        return final

    def location(self, ref: ArtifactRef) -> str:
        return str(self._final(ref.hash))

    def delete(self, ref: ArtifactRef) -> None:
        integrity.forget(self._final(ref.hash), self._stamp(ref.hash))
        shutil.rmtree(self._final(ref.hash), ignore_errors=True)
