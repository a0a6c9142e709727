"""The artifact store contract and the save/load path every store shares.

An artifact is a directory of files written by one materializer, addressed by the content hash
of those files. Stores make an artifact visible only once it is complete (local: a directory
rename; GCS: the manifest object is written last), and writing the same artifact twice, even at
the same moment from two machines, is harmless.

Trust boundary (DESIGN §10): an :class:`ArtifactRef` is read from the shared metadata store, so
:meth:`ArtifactRef.from_json` validates it before any of its names becomes a path: the hash
must be a content hash, the materializer one of the fixed registry, every file one that
materializer writes. Every load verifies the bytes against the recorded hash first; a store
answers :class:`Presence` so a corrupt artifact counts as missing and is rebuilt.
"""

from __future__ import annotations

import enum
import json
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from zenml_collab.core.artifacts.materializers import (
    RUNS_CODE_ON_LOAD,
    materializer_for,
    materializer_named,
)
from zenml_collab.core.hashing import hash_files, hash_named_bytes
from zenml_collab.errors import (
    ArtifactCorruptError,
    CollabError,
    MaterializerError,
    UntrustedArtifactError,
)

MANIFEST = "_manifest.json"
# xxh3-128 as lowercase hex (core/hashing.py): the only shape a content hash, and so a path
# component of the store, can have.
_CONTENT_HASH = re.compile(r"^[0-9a-f]{32}$")
_MAX_FILES = 16


class Presence(enum.Enum):
    """What a store can say about a recorded artifact without reading it whole."""

    PRESENT = "present"
    MISSING = "missing"
    CORRUPT = "corrupt"


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
    def from_json(cls, data: Any, *, origin: str = "the metadata store") -> ArtifactRef:
        """Validate a reference read from a shared store (``origin`` names who recorded it).

        Nothing here touches the disk: a hostile record is refused before any name becomes a
        path and before any deserialiser runs.
        """
        def refuse(what: str) -> UntrustedArtifactError:
            return UntrustedArtifactError(
                f"refused an artifact recorded by {origin}: {what}",
                "the record is malformed or was written by a hostile or broken client; nothing "
                "was read or written. Re-run the step that produced it (its cache entry is "
                "replaced), and ask the member who recorded it which zenml-collab they use")

        if not isinstance(data, dict):
            raise refuse(f"expected an object, got {type(data).__name__}")
        content_hash, name, files, size = (data.get("hash"), data.get("materializer"),
                                           data.get("files"), data.get("size"))
        if not isinstance(content_hash, str) or not _CONTENT_HASH.match(content_hash):
            raise refuse(f"content hash {str(content_hash)[:80]!r} is not 32 hex digits")
        if not isinstance(name, str):
            raise refuse("no materializer name")
        if (not isinstance(files, list) or not 0 < len(files) <= _MAX_FILES
                or not all(isinstance(f, str) for f in files)):
            raise refuse(f"artifact {content_hash[:12]} has no valid list of files")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise refuse(f"artifact {content_hash[:12]} has an invalid size {size!r}")
        try:
            materializer = materializer_named(name, tuple(files))
        except MaterializerError as exc:
            raise refuse(f"artifact {content_hash[:12]}: {exc.message}") from None
        for file in files:
            if file not in materializer.files:
                raise refuse(
                    f"artifact {content_hash[:12]} names the file {file[:120]!r}, which the "
                    f"{name!r} materializer never writes (it writes "
                    f"{', '.join(sorted(materializer.files))})")
        if len(set(files)) != len(files):
            raise refuse(f"artifact {content_hash[:12]} lists a file twice")
        return cls(hash=content_hash, materializer=name, files=tuple(files), size=size)


class ArtifactStore(Protocol):
    uri: str

    def staging_dir(self) -> Path:
        """A fresh, empty directory to write a new artifact into."""

    def commit(self, staged: Path, ref: ArtifactRef) -> None:
        """Make the staged artifact visible under ``ref.hash``; a no-op if already there."""

    def exists(self, ref: ArtifactRef) -> bool:
        """Cheap check that the artifact is still stored (one stat or one request)."""

    def presence(self, ref: ArtifactRef) -> Presence:
        """Like :meth:`exists`, telling a corrupt artifact from a missing one (as cheaply)."""

    def local_dir(self, ref: ArtifactRef) -> Path:
        """A local directory holding the artifact's files, verified against ``ref.hash``.

        Raises :class:`ArtifactCorruptError` when the bytes do not match: never served.
        """

    def location(self, ref: ArtifactRef) -> str:
        """Where the artifact lives, for humans (a path or a gs:// URI)."""


def presence_many(store: ArtifactStore, refs: Iterable[ArtifactRef]) -> dict[str, Presence]:
    """What ``store`` says of each of ``refs`` (by hash), in as few requests as it can.

    A store with its own ``presence_many`` (GCS: one batch request for up to 100 artifacts)
    answers for all at once; any other is asked about each ref in turn, with ``presence``, or
    ``exists`` if it cannot tell corrupt from missing.
    """
    own = getattr(store, "presence_many", None)
    if own is not None:
        return dict(own(refs))
    one = getattr(store, "presence", None)
    answers: dict[str, Presence] = {}
    for ref in refs:
        if ref.hash not in answers:
            answers[ref.hash] = (one(ref) if one is not None
                                 else Presence.PRESENT if store.exists(ref) else Presence.MISSING)
    return answers


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
    """Load an artifact, verified against its content hash.

    A pickled one (or a model stored with joblib by an older version) only with
    ``allow_pickle``: unpickling runs code, and the store is shared, so the reader opts in as
    the writer did.
    """
    materializer = materializer_named(ref.materializer, ref.files)
    if materializer in RUNS_CODE_ON_LOAD and not allow_pickle:
        legacy = materializer.name != "pickle"
        raise MaterializerError(
            f"artifact {ref.hash[:12]} is a "
            + ("scikit-learn model stored with joblib by an older zenml-collab" if legacy
               else "pickle")
            + "; loading it would run code from the shared store",
            "opt in where you load it if you trust its author: @step(allow_pickle=True) for a "
            "step input, or run.load(step, allow_pickle=True)"
            + ("; or re-run the step that produced it, which stores it with skops (no opt-in "
               "needed)" if legacy else ""))
    directory = store.local_dir(ref)
    try:
        return materializer.load(directory)
    except CollabError:
        raise
    except Exception as exc:
        # The bytes matched the recorded hash, so they are what the writer stored: a value
        # labelled with the wrong materializer (e.g. a pickle recorded as JSON), or a damaged
        # file from a broken writer. Never a traceback, never a fallback to another loader.
        raise MaterializerError(
            f"artifact {ref.hash[:12]} could not be read as {ref.materializer!r}: "
            f"{type(exc).__name__}: {str(exc)[:200]}",
            "the artifact was written by a broken or hostile client; re-run the step that "
            "produced it") from None


def verify_files(directory: Path, ref: ArtifactRef, where: str) -> None:
    """Raise :class:`ArtifactCorruptError` unless ``directory`` holds exactly ``ref``'s bytes."""
    try:
        actual = hash_files(directory, ref.files)
    except FileNotFoundError:
        actual = "<a file is missing>"
    if actual != ref.hash:
        raise ArtifactCorruptError(
            f"artifact {ref.hash} in {where} does not match its recorded content hash "
            f"(got {actual}); it was not used",
            "run the pipeline again: the step that produced it executes and replaces it "
            "(reason `artifact corrupt`)")
