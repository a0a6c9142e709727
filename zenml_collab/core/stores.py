"""Open the stores a set of settings points at."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zenml_collab.config import LOCAL_DIR, MetadataConfig
from zenml_collab.errors import ConfigError

if TYPE_CHECKING:
    from zenml_collab.core.artifacts.base import ArtifactStore
    from zenml_collab.core.metadata.lite_store import LiteStore
    from zenml_collab.core.metadata.store import MetadataStore


def open_artifact_store(uri: str, root: Path, *, credentials_file: str | None = None
                        ) -> ArtifactStore:
    """``gs://bucket/prefix`` or a folder (relative to the repo root)."""
    if uri.startswith("gs://"):
        from zenml_collab.core.artifacts.gcs import GcsArtifactStore

        return GcsArtifactStore.from_uri(uri, cache_dir=root / LOCAL_DIR / "cache",
                                         credentials_file=credentials_file)
    if "://" in uri:
        raise ConfigError(f"unsupported artifact store {uri!r}",
                          "use gs://bucket/prefix or a local folder path")
    from zenml_collab.core.artifacts.local import LocalArtifactStore

    path = Path(uri).expanduser()
    return LocalArtifactStore(path if path.is_absolute() else root / path)


def describe_metadata(cfg: MetadataConfig, root: Path) -> str:
    if cfg.kind == "sqlite":
        return f"sqlite:{cfg.sqlite_file(root)}"
    if cfg.kind == "mysql":
        return f"mysql://{cfg.username}@{cfg.host}:{cfg.port or 3306}/{cfg.database}"
    return f"cloudsql://{cfg.instance}/{cfg.database} (user {cfg.username})"


def open_lite_metadata(cfg: MetadataConfig, root: Path) -> LiteStore | None:
    """The driver-only store (reads of the views, a run's statements) of an embedded store
    that is current and of the expected identity (no SQLAlchemy import); ``None`` for any
    other store, or any doubt, so the caller opens the full store (which initialises,
    migrates or explains)."""
    if cfg.kind != "sqlite":
        return None
    outbox = root / LOCAL_DIR / "outbox"
    if outbox.is_dir() and any(p.suffix == ".json" for p in outbox.iterdir()):
        return None  # run endings wait for delivery: the full store delivers them on open
    from zenml_collab.core.metadata.lite_store import open_lite_store

    store = open_lite_store(cfg.sqlite_file(root), expected_store_id=cfg.store_id)
    if store is not None:
        store.outbox_dir = outbox
    return store


def open_metadata_store(cfg: MetadataConfig, root: Path, *, credentials_file: str | None = None
                        ) -> MetadataStore:
    from zenml_collab.core.metadata.engine import create_engine_for
    from zenml_collab.core.metadata.store import MetadataStore

    return MetadataStore(create_engine_for(cfg, root, credentials_file=credentials_file),
                         description=describe_metadata(cfg, root))
