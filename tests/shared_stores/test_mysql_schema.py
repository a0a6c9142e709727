"""The same schema and migrations on MariaDB as on SQLite; `collab db upgrade` on MySQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from shared_helpers import MysqlLogin, collab, configure_mysql, git_repo

from zenml_collab.core.metadata import models
from zenml_collab.core.metadata.store import HEAD_REVISION, MetadataStore

pytestmark = pytest.mark.mysql


def test_migrations_build_exactly_the_models_on_mariadb(mysql_url: Any) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine(mysql_url)
    try:
        store = MetadataStore(engine)
        store.check_schema()
        assert store.revision() == HEAD_REVISION
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), models.metadata)
    finally:
        engine.dispose()
    assert diffs == []


def test_a_store_behind_is_refused_until_collab_db_upgrade(
        tmp_path: Path, mysql_url: Any, mysql_login: MysqlLogin) -> None:
    engine = sa.create_engine(mysql_url)
    try:
        MetadataStore(engine).upgrade("0001")
    finally:
        engine.dispose()
    repo = git_repo(tmp_path / "repo")
    done = configure_mysql(repo, mysql_login)
    assert done.returncode == 0, done.stderr
    assert "collab db upgrade" in done.stdout  # reported, not migrated behind the user's back

    refused = collab(repo, "pipelines", "list")
    assert refused.returncode == 1
    assert "collab db upgrade" in refused.stderr and "Traceback" not in refused.stderr

    upgraded = collab(repo, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"0001 -> {HEAD_REVISION}" in upgraded.stdout
    assert collab(repo, "pipelines", "list").returncode == 0
    status = collab(repo, "db", "status")
    assert f"schema {HEAD_REVISION}" in status.stdout and "current" in status.stdout
