"""A run on the embedded store through sqlite3 alone (core/metadata/lite_store.py) writes what
the full store writes, costs a constant number of statements, and needs no SQLAlchemy."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import collab_test_steps as steps
import pytest
from tests_support import chain

from zenml_collab import Pipeline, Repository
from zenml_collab.core.metadata.lite_store import COLUMNS, LiteStore
from zenml_collab.core.metadata.store import MetadataStore
from zenml_collab.errors import PipelineError, StepFailedError
from zenml_collab.testing.repos import TmpRepo

HERE = Path(__file__).parent

# What a run writes that must be equal whichever path wrote it (ids, times, run ids, hosts and
# durations differ between any two runs).
COMPARED = {
    "pipelines": "name, kind, identity",
    "environments": "hash, python, platform, packages_json",
    "runs": "pipeline_name, status, git_dirty, user, environment_hash, "
            "substr(coalesce(error, ''), 1, 40)",
    "step_runs": "pipeline_name, step_name, step_path, position, cache_key, code_hash, "
                 "params_json, inputs_json, outputs_json IS NULL, status, reason, "
                 "execution_json",
    "cache_entries": "cache_key, step_path, outputs_json",
    "artifacts": "hash, materializer, size, files_json",
}


def _workload(repo_for: Any) -> None:
    """Cold, cached, a changed parameter, a failing step, a second pipeline, a missing
    artifact that replaces its cache entry: each run through a new Repository."""
    def diamond(factor: int) -> Pipeline:
        return steps.diamond(factor=factor)

    chain("chain", 4).run(repo_for())
    chain("chain", 4).run(repo_for())
    diamond(2).run(repo_for())
    diamond(2).run(repo_for())
    failing = Pipeline("failing")
    failing.add(steps.source, name="s0")
    failing.add(steps.explode, name="boom", inputs={"xs": "s0"})
    with pytest.raises(StepFailedError):
        failing.run(repo_for())


def _snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(db) as conn:
        return {table: sorted(conn.execute(f"SELECT {columns} FROM {table}").fetchall(),
                              key=repr)
                for table, columns in COMPARED.items()}


def _repo(root: Path, *, full: bool) -> Repository:
    repo = Repository(root)
    if full:
        assert isinstance(repo.metadata, MetadataStore)  # opening it makes every run use it
    return repo


def test_a_run_through_sqlite3_writes_what_the_full_store_writes(
        tmp_repo: TmpRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(tmp_repo.root, twin)
    kinds: list[str] = []

    def lite() -> Repository:
        repo = _repo(tmp_repo.root, full=False)
        kinds.append(type(repo._run_store()).__name__)
        return repo

    _workload(lite)
    monkeypatch.chdir(twin)
    _workload(lambda: _repo(twin, full=True))
    assert set(kinds) == {"LiteStore"}  # `collab init` created the store
    ours, theirs = (_snapshot(root / ".collab" / "metadata.db") for root in (tmp_repo.root,
                                                                             twin))
    for table in COMPARED:
        assert ours[table] == theirs[table], table
    assert ours["runs"] and ours["step_runs"] and ours["cache_entries"]


def test_the_insert_columns_are_the_tables_columns() -> None:
    import sqlalchemy as sa

    from zenml_collab.core.metadata import models as m

    for table, columns in COLUMNS.items():
        real = {c.name for c in m.metadata.tables[table].columns}
        expected = real - {"id"} if table in ("pipelines", "step_runs") else real
        if table == "runs":
            expected -= {"finished_at", "error"}  # written when the run ends
        assert set(columns) == expected, table
    assert isinstance(m.metadata, sa.MetaData)


@pytest.mark.parametrize("length", [5, 40])
def test_a_cached_run_costs_the_same_statements_whatever_its_length(tmp_repo: TmpRepo,
                                                                    length: int) -> None:
    chain("chain", length).run(Repository())
    repo = Repository()
    store = repo._run_store()
    assert isinstance(store, LiteStore)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    run = chain("chain", length).run(repo)
    store._conn.set_trace_callback(None)
    assert set(run.statuses.values()) == {"cached"}
    words = [" ".join(s.split()[:3]).upper() for s in statements]
    # The run-start SELECT, the run's INSERT, one transaction with the step runs (one
    # executemany: sqlite3 traces each row it inserts), the run's UPDATE.
    assert [w for w in words if w != "INSERT INTO STEP_RUNS"] == [
        "SELECT HEADER.P_ID, HEADER.P_IDENTITY,", "INSERT INTO RUNS", "BEGIN IMMEDIATE",
        "COMMIT", "UPDATE RUNS SET"], statements
    begin, commit = words.index("BEGIN IMMEDIATE"), words.index("COMMIT")
    assert words[begin + 1:commit] == ["INSERT INTO STEP_RUNS"] * length


def test_a_changed_definition_is_refused_through_sqlite3_too(tmp_repo: TmpRepo) -> None:
    chain("fixed", 3).run(Repository())
    changed = chain("fixed", 4)
    repo = Repository()
    assert isinstance(repo._run_store(), LiteStore)
    with pytest.raises(PipelineError, match="already exists with a different definition"):
        changed.run(repo)


CHILD = '''
import sys
from zenml_collab.cli.main import main
try:
    main(["run", sys.argv[1]])
except SystemExit as exc:
    assert not exc.code, exc.code
print("SQLALCHEMY", "sqlalchemy" in sys.modules)
'''


def test_a_cached_collab_run_on_the_embedded_store_imports_no_sqlalchemy(
        tmp_repo: TmpRepo) -> None:
    chain("quick", 3).run(Repository())
    config = tmp_repo.root / "pipelines" / "quick.yaml"
    done = subprocess.run([sys.executable, "-c", CHILD, str(config)], cwd=tmp_repo.root,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [str(HERE), os.environ.get("PYTHONPATH", "")])})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "s2: cached (cache hit)" in done.stdout
    assert "SQLALCHEMY False" in done.stdout


def test_a_driver_error_while_writing_is_the_full_stores_named_error_and_rolls_back(
        tmp_repo: TmpRepo) -> None:
    from zenml_collab.dberrors import DbStoreError

    chain("chain", 2).run(Repository())
    repo = Repository()
    store = repo._run_store()
    assert isinstance(store, LiteStore)
    # A database that refuses the step runs' insert (as a full disk or a constraint would).
    store._conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON step_runs "
                        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    with pytest.raises(DbStoreError, match="refused by the test"):
        chain("chain", 2).run(repo)
    assert not store._conn.in_transaction
    # The run is recorded as failed and none of its step runs half-written.
    run_id, status = store._conn.execute(
        "SELECT id, status FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
    assert status == "failed"
    assert store._conn.execute("SELECT count(*) FROM step_runs WHERE run_id = ?",
                               (run_id,)).fetchone() == (0,)
    repo.close()
