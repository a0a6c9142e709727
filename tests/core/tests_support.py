"""Helpers for core tests that need unusual repositories."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from zenml_collab.testing.repos import make_git_repo


def make_repo_at_revision(tmp_path: Path, revision: str) -> Path:
    """A collab repo whose metadata store was migrated only up to ``revision``."""
    from zenml_collab.core.metadata.store import MetadataStore

    root = tmp_path / "old-repo"
    make_git_repo(root)
    (root / ".collab").mkdir()
    engine = sa.create_engine(f"sqlite:///{root / '.collab' / 'metadata.db'}")
    MetadataStore(engine).upgrade(revision)
    engine.dispose()
    return root
