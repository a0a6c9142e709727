"""The metadata store: bounded statements per step, indexed lookups, schema versions."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from tests_support import chain

from zenml_collab import Repository
from zenml_collab.core.metadata.store import HEAD_REVISION, MIGRATIONS_DIR
from zenml_collab.errors import SchemaOutOfDateError
from zenml_collab.testing.sql import count_statements


@pytest.mark.parametrize("length", [3, 20])
def test_a_cached_run_costs_the_same_statements_whatever_the_pipeline_size(tmp_repo, length):
    repo = Repository()
    chain("chain", length).run(repo)
    per_run = count_statements(repo.metadata.engine, lambda: chain("chain", length).run(repo))
    # The pipeline's registration, the environment's and the previous run's steps with their
    # cache entries (one SELECT), run insert, every step-run row (one INSERT), run update.
    assert per_run == ["SELECT", "INSERT", "INSERT", "UPDATE"]


def test_statements_per_cached_step_do_not_grow_with_the_number_of_runs(tmp_repo):
    repo = Repository()
    for _ in range(30):
        chain("chain", 3).run(repo)
    per_run = count_statements(repo.metadata.engine, lambda: chain("chain", 3).run(repo))
    assert len(per_run) == 4


def test_the_cache_lookup_is_an_index_seek_not_a_scan(tmp_repo):
    repo = Repository()
    chain("chain", 3).run(repo)
    with repo.metadata.engine.connect() as conn:
        plan = conn.execute(sa.text(
            "EXPLAIN QUERY PLAN SELECT outputs_json FROM cache_entries WHERE cache_key = 'x'"
        )).all()
    detail = " ".join(str(row[-1]) for row in plan)
    assert "USING INDEX" in detail or "USING PRIMARY KEY" in detail, detail
    assert "SCAN" not in detail


def test_an_old_schema_is_refused_with_the_upgrade_command_and_upgrade_fixes_it(tmp_path):
    from tests_support import make_repo_at_revision

    root = make_repo_at_revision(tmp_path, "0001")
    with pytest.raises(SchemaOutOfDateError, match="run `collab db upgrade`"):
        Repository(root).metadata  # noqa: B018 - opening is the action under test
    from zenml_collab.testing.repos import TmpRepo

    cli = TmpRepo(root)
    refused = cli.collab("runs", "list")
    assert refused.returncode == 1
    assert "collab db upgrade" in refused.stderr and "Traceback" not in refused.stderr
    upgraded = cli.collab("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"0001 -> {HEAD_REVISION}" in upgraded.stdout
    assert Repository(root).metadata.revision() == HEAD_REVISION
    again = cli.collab("db", "upgrade")
    assert "already at schema" in again.stdout


def test_a_store_newer_than_this_version_asks_to_upgrade_the_package(tmp_repo):
    repo = Repository()
    with repo.metadata.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaOutOfDateError, match="upgrade zenml-collab"):
        Repository().metadata  # noqa: B018


def test_migrations_build_exactly_the_models(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from zenml_collab.core.metadata.models import metadata
    from zenml_collab.core.metadata.store import MetadataStore

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    MetadataStore(engine).upgrade()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_head_revision_constant_matches_the_migration_scripts():
    from alembic.script import ScriptDirectory

    assert ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head() == HEAD_REVISION


def test_a_foreign_database_is_not_taken_over(tmp_path):
    from zenml_collab.core.metadata.store import MetadataStore
    from zenml_collab.errors import MetadataStoreError

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER)"))
    with pytest.raises(MetadataStoreError, match="not a zenml-collab store"):
        MetadataStore(engine).check_schema()


def test_a_retried_step_run_insert_records_the_step_once(tmp_repo):
    from zenml_collab.core.metadata.records import StepRunRecord, utcnow

    repo = Repository()
    run = chain("chain", 2).run(repo)
    first = repo.metadata.step_runs(run.id)[0]
    duplicate = StepRunRecord(**{**first.__dict__, "started_at": utcnow()})
    repo.metadata.record_step(duplicate)  # as a retry after a lost acknowledgement would
    assert [s.position for s in repo.metadata.step_runs(run.id)] == [0, 1]


def test_mysql_error_codes_are_interpreted_only_by_the_one_classifier():
    import re
    from pathlib import Path

    import zenml_collab

    codes = re.compile(r"\b(1044|1045|1142|1205|1213|1227|1406|1698|2003|2006|2013|1146|1062)\b")
    package = Path(zenml_collab.__file__).parent
    offenders = [str(p.relative_to(package)) for p in package.rglob("*.py")
                 if p.name != "dberrors.py" and "testing" not in p.parts
                 and codes.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_driver_errors_are_classified_by_code_and_keep_it():
    import sqlite3

    import pymysql

    from zenml_collab.dberrors import DbFault, classify, db_error

    refused = db_error(pymysql.err.OperationalError(1045, "Access denied"), "the store")
    assert (refused.fault, refused.db_code, refused.exit_code) == (DbFault.LOGIN_REFUSED, 1045, 3)
    gone = db_error(pymysql.err.OperationalError(2013, "Lost connection"), "the store")
    assert gone.fault.transient and gone.exit_code == 4
    # The message text plays no part: the same words under another code mean something else.
    assert classify(pymysql.err.OperationalError(1146, "Access denied")) is DbFault.NO_TABLE
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorname = "SQLITE_BUSY"  # what sqlite3 sets on a real busy error
    assert classify(busy) is DbFault.LOCK_CONFLICT


def test_a_sqlite_value_too_big_for_the_store_is_a_clear_error_before_any_write(tmp_repo):
    from zenml_collab.core.metadata.store import MetadataStore
    from zenml_collab.errors import PipelineError

    with pytest.raises(PipelineError, match="at most 65,535"):
        MetadataStore.check_limits("p", [("s", "m.s", {"x": "y" * 70_000})])
