"""The artifact store contract and the save/load path every store shares.

An artifact is a directory of files written by one materializer, addressed by the content hash
of those files. Stores make an artifact visible only once it is complete (local: a directory
rename; GCS: the manifest object is written last), and writing the same artifact twice, even at
the same moment from two machines, is harmless.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from zenml_collab.core.artifacts.materializers import materializer_for, materializer_named
from zenml_collab.core.hashing import hash_files, hash_named_bytes
from zenml_collab.errors import MaterializerError

MANIFEST = "_manifest.json"


@dataclass(frozen=True)
class ArtifactRef:
    """What the metadata store records about one stored artifact."""

    hash: str
    materializer: str
    files: tuple[str, ...]
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"hash": self.hash, "materializer": self.materializer, "files": list(self.files),
                "size": self.size}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArtifactRef:
        return cls(hash=data["hash"], materializer=data["materializer"],
                   files=tuple(data["files"]), size=int(data["size"]))


class ArtifactStore(Protocol):
    uri: str

    def staging_dir(self) -> Path:
        """A fresh, empty directory to write a new artifact into."""

    def commit(self, staged: Path, ref: ArtifactRef) -> None:
        """Make the staged artifact visible under ``ref.hash``; a no-op if already there."""

    def exists(self, ref: ArtifactRef) -> bool:
        """Cheap check that the artifact is still stored (one stat or one request)."""

    def local_dir(self, ref: ArtifactRef) -> Path:
        """A local directory holding the artifact's files (downloaded and verified if remote)."""

    def location(self, ref: ArtifactRef) -> str:
        """Where the artifact lives, for humans (a path or a gs:// URI)."""


def save_artifact(store: ArtifactStore, value: Any, *, allow_pickle: bool = False) -> ArtifactRef:
    """Materialize ``value`` into ``store`` and return its reference."""
    materializer = materializer_for(value, allow_pickle=allow_pickle)
    encode = getattr(materializer, "encode", None)
    blobs: dict[str, bytes] | None = encode(value) if encode is not None else None
    if blobs is not None:
        # Small values are hashed in memory: an output the store already holds (a teammate's,
        # or an unchanged re-execution) then costs no file writes at all.
        ref = ArtifactRef(hash_named_bytes(blobs), materializer.name, tuple(blobs),
                          sum(len(b) for b in blobs.values()))
        if store.exists(ref):
            return ref
    staged = store.staging_dir()
    try:
        if blobs is not None:
            files = list(blobs)
            for name, data in blobs.items():
                (staged / name).write_bytes(data)
        else:
            files = materializer.save(value, staged)
        content_hash = hash_files(staged, files)
        size = sum((staged / name).stat().st_size for name in files)
        ref = ArtifactRef(content_hash, materializer.name, tuple(files), size)
        (staged / MANIFEST).write_text(json.dumps(ref.to_json()), encoding="utf-8")
        store.commit(staged, ref)
        return ref
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)


def load_artifact(store: ArtifactStore, ref: ArtifactRef, *, allow_pickle: bool = False) -> Any:
    """Load an artifact. A pickled one only with ``allow_pickle``: unpickling runs code, and
    the store is shared, so the reader opts in as the writer did."""
    if ref.materializer == "pickle" and not allow_pickle:
        raise MaterializerError(
            f"artifact {ref.hash[:12]} is a pickle; loading it would run code from the store",
            "opt in where you load it: @step(allow_pickle=True) for a step input, or "
            "run.load(step, allow_pickle=True)")
    return materializer_named(ref.materializer).load(store.local_dir(ref))
