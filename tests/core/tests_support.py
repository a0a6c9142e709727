"""Helpers for core tests that need unusual repositories."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from zenml_collab import Pipeline
from zenml_collab.testing.repos import make_git_repo


def chain(name: str, length: int) -> Pipeline:
    """A pipeline of ``length`` trivial steps, each reading the one before."""
    import collab_test_steps as steps

    p = Pipeline(name)
    p.add(steps.source, name="s0")
    for i in range(1, length):
        p.add(steps.shift, name=f"s{i}", inputs={"xs": f"s{i - 1}"}, params={"offset": i})
    return p


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
