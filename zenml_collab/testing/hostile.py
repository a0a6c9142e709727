"""What a hostile (or broken) teammate can do to the shared stores, for trust-boundary tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zenml_collab.core.artifacts.base import ArtifactRef
from zenml_collab.core.hashing import hash_files

if TYPE_CHECKING:
    from zenml_collab.core.artifacts.base import ArtifactStore


def store_raw_artifact(store: ArtifactStore, materializer: str,
                       files: dict[str, bytes]) -> ArtifactRef:
    """Put any bytes in ``store`` under any materializer label, with a matching content hash.

    The reference comes back through :meth:`ArtifactRef.from_json`, as a reader would see it
    when it reads the record from the metadata store.
    """
    staged = store.staging_dir()
    for name, data in files.items():
        (staged / name).write_bytes(data)
    ref = ArtifactRef(hash_files(staged, list(files)), materializer, tuple(files),
                      sum(map(len, files.values())))
    store.commit(staged, ref)
    return ArtifactRef.from_json(ref.to_json(), origin="a test")
