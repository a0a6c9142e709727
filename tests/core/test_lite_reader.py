"""The driver-only reader of the embedded store: the same answers as the full store, one
statement to open, no SQLAlchemy import, and the full store whenever there is any doubt."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests_support import chain

from zenml_collab import Repository
from zenml_collab.core.metadata import lite
from zenml_collab.core.metadata.lite import LiteReader, open_lite
from zenml_collab.core.metadata.schema import HEAD_REVISION
from zenml_collab.core.metadata.store import MetadataStore
from zenml_collab.testing.repos import TmpRepo

HERE = Path(__file__).parent


def _db(root: Path) -> Path:
    return root / ".collab" / "metadata.db"


def test_the_lite_reader_reads_the_revision_this_version_writes() -> None:
    assert lite.HEAD_REVISION == HEAD_REVISION


def test_the_lite_reader_answers_exactly_what_the_full_store_answers(tmp_repo: TmpRepo) -> None:
    repo = Repository()
    chain("chain", 4).run(repo)
    chain("chain", 4).run(repo)
    full = repo.metadata
    run = full.latest_run("chain")
    assert run is not None
    key = full.step_runs(run.id)[2].cache_key
    # What a hostile or broken teammate may leave: a malformed execution, params that are no
    # JSON object, and a run still marked running whose process is gone (read as abandoned).
    with full.engine.begin() as conn:
        conn.execute(sa.text("UPDATE step_runs SET execution_json = '{\"backend\": \"docker\", "
                             "\"image\": \"sha256:ab\"}' WHERE position = 1"))
        conn.execute(sa.text("UPDATE step_runs SET params_json = '[1' WHERE position = 3"))
        conn.execute(sa.text("UPDATE runs SET status = 'running', pid = 999999999 "
                             "WHERE id = :id"), {"id": run.id})
    reader = open_lite(_db(tmp_repo.root), expected_store_id=None)
    assert isinstance(reader, LiteReader)
    try:
        assert reader.get_pipeline("chain") == full.get_pipeline("chain")
        assert reader.get_pipeline("nope") is None
        for status in ("completed", "running"):
            assert reader.latest_run("chain", status) == full.latest_run("chain", status)
        abandoned = reader.latest_run("chain", "running")
        assert abandoned is not None and abandoned.status == "abandoned"
        assert reader.step_runs(run.id) == full.step_runs(run.id)
        assert reader.step_runs(run.id)[1].execution is not None
        assert reader.step_runs("0" * 32) == []
        assert reader.cached_outputs(key) == full.cached_outputs(key)
        assert reader.cached_outputs("f" * 64) is None
    finally:
        reader.close()


def test_opening_costs_one_statement(tmp_repo: TmpRepo) -> None:
    chain("chain", 2).run(Repository())
    statements: list[str] = []
    reader = open_lite(_db(tmp_repo.root), expected_store_id=None)
    assert reader is not None
    reader._conn.set_trace_callback(statements.append)
    reader.latest_run("chain")
    reader.close()
    assert len(statements) == 1  # the view's own read; opening was one statement before it


def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "metadata.db"
    assert open_lite(path, expected_store_id=None) is None
    assert not path.exists()


@pytest.mark.parametrize("case", ["empty", "foreign", "older", "newer", "other store"])
def test_any_store_but_a_current_one_of_the_expected_identity_gets_the_full_store(
        tmp_repo: TmpRepo, tmp_path: Path, case: str) -> None:
    path = tmp_path / "metadata.db"
    if case == "empty":
        sqlite3.connect(path).close()
    elif case == "foreign":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE things (id INTEGER)")
    elif case == "older":
        engine = sa.create_engine(f"sqlite:///{path}")
        MetadataStore(engine).upgrade("0003")
        engine.dispose()
    else:
        engine = sa.create_engine(f"sqlite:///{path}")
        MetadataStore(engine).upgrade("head")
        engine.dispose()
        if case == "newer":
            with sqlite3.connect(path) as conn:
                conn.execute("UPDATE alembic_version SET version_num = '9999'")
    expected = "a" * 32 if case == "other store" else None
    assert open_lite(path, expected_store_id=expected) is None


def test_a_run_ending_waiting_in_the_outbox_opens_the_full_store_which_delivers_it(
        tmp_repo: TmpRepo) -> None:
    from zenml_collab.core.metadata.lite import LiteReader as Lite

    repo = Repository()
    chain("chain", 2).run(repo)
    assert isinstance(Repository().reader, Lite)
    outbox = tmp_repo.root / ".collab" / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    (outbox / "deadbeef.json").write_text(json.dumps(
        {"run_id": "0" * 32, "status": "failed", "error": "x"}), encoding="utf-8")
    assert isinstance(Repository().reader, MetadataStore)


VIEW_CHILD = '''
import sys
from zenml_collab import Repository
repo = Repository()
run = repo.latest_run("chain")
print("STEPS", len(run.steps), "SQLALCHEMY", "sqlalchemy" in sys.modules)
'''


def test_reading_a_run_in_a_fresh_process_imports_no_sqlalchemy(tmp_repo: TmpRepo) -> None:
    chain("chain", 3).run(Repository())
    done = subprocess.run([sys.executable, "-c", VIEW_CHILD], cwd=tmp_repo.root,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [str(HERE), os.environ.get("PYTHONPATH", "")])})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "STEPS 3 SQLALCHEMY False" in done.stdout


def test_a_driver_error_after_opening_is_the_full_stores_named_error(tmp_repo: TmpRepo) -> None:
    from zenml_collab.dberrors import DbStoreError

    run = chain("chain", 2).run(Repository())
    reader = open_lite(_db(tmp_repo.root), expected_store_id=None)
    assert reader is not None
    # What a newer client's migration looks like halfway: a table renamed, revision unchanged.
    with sqlite3.connect(_db(tmp_repo.root)) as conn:
        conn.execute("ALTER TABLE step_runs RENAME TO step_runs_old")
    try:
        with pytest.raises(DbStoreError, match="no such table: step_runs"):
            reader.step_runs(run.id)
    finally:
        reader.close()


def test_opening_the_full_store_closes_the_lite_connection(tmp_repo: TmpRepo) -> None:
    chain("chain", 2).run(Repository())
    repo = Repository()
    lite_reader = repo.reader
    assert isinstance(lite_reader, LiteReader)
    assert isinstance(repo.metadata, MetadataStore)
    assert repo.reader is repo.metadata
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        lite_reader._conn.execute("SELECT 1")
    repo.close()
