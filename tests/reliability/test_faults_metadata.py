"""Fault matrix, metadata side: bounded writes, fresh stores under concurrency, outages, killed
runs, store identity. Each test breaks one thing against the real services (SQLite files,
the MariaDB of scripts/test, real `collab` processes) and checks what the member sees and
what is left in the store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from reliability.matrix import fault
from zenml_collab.errors import CollabError

STEPS = '''
import os, pathlib, time
from zenml_collab import step

HOOK = None

@step
def numbers(n: int = 3) -> list:
    return list(range(n))

@step
def echo(payload: str = "") -> str:
    return payload

@step
def slow(xs: list) -> int:
    if pathlib.Path("SLOW").exists():
        pathlib.Path("STARTED").write_text(str(os.getpid()))
        time.sleep(120)
    return len(xs)

@step
def stop_db(xs: list) -> int:
    from zenml_collab.testing.services import STATE_ENV, MySQLControl
    if pathlib.Path("STOP").exists():
        MySQLControl(pathlib.Path(os.environ[STATE_ENV])).stop()
    return len(xs)

@step
def explode(xs: list) -> int:
    if HOOK is not None:
        HOOK()
    raise ValueError("boom from the step")
'''


def _main(root: Path, *args: str, env: dict[str, str] | None = None,
          timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from zenml_collab.cli.main import main; main()",
                           *args], cwd=root, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLLAB_NO_BROWSER": "1", **(env or {})})


def _pipeline(name: str, *steps: tuple[str, dict[str, Any]]) -> Any:
    import fault_steps

    from zenml_collab import Pipeline

    p = Pipeline(name)
    previous = None
    for step_name, params in steps:
        p.add(getattr(fault_steps, step_name), name=step_name, params=params,
              inputs={"xs": previous} if previous else None)
        previous = step_name
    return p


def _config_file(root: Path, pipeline: Any) -> str:
    """Write ``pipelines/<name>.yaml`` as a first run would (no store touched); its path."""
    from zenml_collab import Repository
    from zenml_collab.core.pipeline_config import config_path

    Repository(root)._write_config(pipeline.to_config())
    return str(config_path(root, pipeline.name).relative_to(root))


@pytest.fixture
def repo(tmp_repo: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A collab repo (SQLite store) with the fault steps importable, here and in children."""
    tmp_repo.gen({"fault_steps.py": STEPS})
    monkeypatch.syspath_prepend(str(tmp_repo.root))
    sys.modules.pop("fault_steps", None)
    return tmp_repo


def _use_mysql(root: Path, url: Any) -> None:
    from zenml_collab.actions.config import metadata_values, set_metadata

    set_metadata(root, metadata_values("mysql", host=url.host, port=url.port,
                                       username=url.username, database=url.database),
                 password=url.password)


def _count(engine: Any, sql: str) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar() or 0)


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def any_store(request: pytest.FixtureRequest, repo: Any) -> Any:
    if request.param == "mysql":
        _use_mysql(repo.root, request.getfixturevalue("mysql_url"))
    return repo


@fault("metadata.bounded-writes", fault="a 70 kB parameter or a 201-character pipeline name "
       "(SQLite and MySQL)", sees="error naming the value, its size and the limit; hint to pass "
       "large values as data", exit_code=1, kept="nothing written: no pipeline, run or step row")
def test_oversized_names_and_parameters_are_refused_before_any_write(any_store: Any) -> None:
    from zenml_collab import Repository

    with pytest.raises(CollabError) as too_big:
        _pipeline("big-params", ("echo", {"payload": "x" * 70_000})).run()
    assert too_big.value.exit_code == 1
    assert "70,0" in too_big.value.message and "65,535" in too_big.value.message
    with pytest.raises(CollabError) as too_long:
        _pipeline("p" * 201, ("numbers", {})).run()
    assert too_long.value.exit_code == 1 and "201" in too_long.value.message
    engine = Repository().metadata.engine
    for table in ("pipelines", "runs", "step_runs", "cache_entries"):
        assert _count(engine, f"SELECT COUNT(*) FROM {table}") == 0, table


@pytest.mark.mysql
def test_a_mysql_session_is_strict_so_nothing_is_ever_truncated(repo: Any, mysql_url: Any) -> None:
    import sqlalchemy as sa

    from zenml_collab import Repository
    from zenml_collab.dberrors import DbError, DbFault

    _use_mysql(repo.root, mysql_url)
    store = Repository().metadata
    with store.engine.connect() as conn:
        assert "STRICT_ALL_TABLES" in conn.execute(sa.text("SELECT @@SESSION.sql_mode")).scalar()
    # Past the store's own limits (which a caller could skip), the server still refuses.
    with pytest.raises(DbError) as refused:
        store._tx(lambda conn: conn.execute(sa.text(
            "INSERT INTO environments (hash, python, platform, packages_json, created_at) "
            "VALUES ('h', :p, 'x', '{}', '2024-01-01')"), {"p": "3" * 65}))
    assert refused.value.fault is DbFault.TOO_LONG and refused.value.exit_code == 1
    assert _count(store.engine, "SELECT COUNT(*) FROM environments") == 0


@fault("metadata.fresh-sqlite-race", fault="six `collab run` at once on an empty shared SQLite "
       "store", sees="all six runs succeed", exit_code=0,
       kept="one schema, created once under a lock file; six completed runs")
def test_six_first_runs_at_once_on_an_empty_sqlite_store_all_succeed(repo: Any) -> None:
    config = _config_file(repo.root, _pipeline("race", ("numbers", {})))
    for leftover in (repo.root / ".collab").glob("metadata.db*"):
        leftover.unlink()  # `collab init` created the store: start from an empty one
    procs = [subprocess.Popen(
        [sys.executable, "-c", "from zenml_collab.cli.main import main; main()", "run",
         config], cwd=repo.root, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [(p.returncode, out[1]) for p in procs
               for out in [p.communicate(timeout=180)]]
    assert [code for code, _ in results] == [0] * 6, results
    from zenml_collab import Repository

    runs = Repository().metadata.list_runs("race")
    assert len(runs) == 6 and {r.status for r in runs} == {"completed"}


@pytest.mark.mysql
@fault("metadata.restart-at-start", fault="the database restarts (~2 s) as a command opens it",
       sees="nothing: the first connection waits like the hot path", exit_code=0,
       kept="the run, completed")
def test_a_database_restart_at_the_first_connection_is_invisible(
        repo: Any, mysql_url: Any, mysql_server: Any) -> None:
    from zenml_collab import Repository

    _use_mysql(repo.root, mysql_url)
    mysql_server.stop()
    back = threading.Thread(target=lambda: (time.sleep(2), mysql_server.start()))
    back.start()
    try:
        run = _pipeline("restart", ("numbers", {})).run(Repository(repo.root))
    finally:
        back.join()
    assert run.status == "completed"


@pytest.mark.mysql
@fault("metadata.long-outage", fault="the database goes away mid-run and stays away",
       sees="error: cannot reach the metadata store (after the retry window), no traceback",
       exit_code=4, kept="the run's ending waits in .collab/outbox; the member's next command "
       "records it `failed` with the error")
def test_a_long_outage_fails_cleanly_and_the_run_is_not_left_running(
        repo: Any, mysql_url: Any, mysql_server: Any) -> None:
    if not mysql_server.state_file:
        pytest.skip("needs scripts/test's state file to stop MariaDB from a step")
    _use_mysql(repo.root, mysql_url)
    config = _config_file(repo.root, _pipeline("outage", ("numbers", {}), ("stop_db", {})))
    (repo.root / "STOP").write_text("")
    try:
        done = _main(repo.root, "run", config, env={"COLLAB_DB_RETRY_SECONDS": "3"})
    finally:
        mysql_server.start()
    assert done.returncode == 4, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert "metadata store" in done.stderr
    assert list((repo.root / ".collab" / "outbox").glob("*.json"))  # kept for later
    listed = _main(repo.root, "runs", "list", "outage")
    assert listed.returncode == 0, listed.stderr
    assert "running" not in listed.stdout and "failed" in listed.stdout
    assert not list((repo.root / ".collab" / "outbox").glob("*.json"))  # delivered once


@fault("metadata.kill-9", fault="`kill -9` of a `collab run` mid-step; killed saves left "
       "stage-* directories", sees="`runs list` shows the run `abandoned`; `runs gc` marks it and "
       "removes stale temporary directories, reporting bytes freed", exit_code=0,
       kept="completed runs, cache and artifacts; temporary directories younger than --older-than")
def test_a_killed_run_shows_abandoned_and_gc_cleans_up(repo: Any) -> None:
    config = _config_file(repo.root, _pipeline("killed", ("numbers", {}), ("slow", {})))
    (repo.root / "SLOW").write_text("")
    proc = subprocess.Popen([sys.executable, "-c", "from zenml_collab.cli.main import main; "
                             "main()", "run", config], cwd=repo.root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (repo.root / "STARTED").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    tmp = repo.root / ".collab" / "artifacts" / ".tmp"
    old, young = tmp / "stage-old", tmp / "stage-young"
    for d in (old, young):
        d.mkdir(parents=True, exist_ok=True)
        (d / "part").write_bytes(b"\0" * 300_000)
    hours_ago = time.time() - 7200
    for path in (old / "part", old):
        os.utime(path, (hours_ago, hours_ago))

    listed = _main(repo.root, "runs", "list", "killed")
    assert "abandoned" in listed.stdout and "running" not in listed.stdout
    gc = _main(repo.root, "runs", "gc")
    assert gc.returncode == 0, gc.stderr
    assert "1 abandoned marked" in gc.stdout and "300.0 kB freed" in gc.stdout
    assert not old.exists() and young.exists()
    from zenml_collab import Repository

    (record,) = Repository().metadata.list_runs("killed")
    assert record.status == "abandoned" and record.pid == proc.pid


@fault("metadata.lease-expired", fault="a run on another machine stops renewing its lease "
       "(laptop closed, machine lost) for more than 5 minutes",
       sees="`runs list` on any machine shows it `abandoned`; `runs gc` marks it", exit_code=0,
       kept="its step records; a run whose lease is fresh stays `running`")
def test_a_run_on_another_machine_whose_lease_expired_shows_abandoned(repo: Any) -> None:
    from zenml_collab import Repository
    from zenml_collab.core.metadata.liveness import LEASE_S
    from zenml_collab.core.metadata.records import utcnow

    lost = _pipeline("lost", ("numbers", {})).run()
    alive = _pipeline("alive", ("numbers", {})).run()
    with Repository() as repository:
        _leave_running(repository.metadata, {
            lost.id: utcnow() - timedelta(seconds=LEASE_S + 60),
            alive.id: utcnow() - timedelta(seconds=5)})
    listed = _main(repo.root, "runs", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {name: next(line for line in listed.stdout.splitlines() if f" {name} " in line)
            for name in ("lost", "alive")}
    assert "abandoned" in rows["lost"] and "running" in rows["alive"], listed.stdout
    gc = _main(repo.root, "runs", "gc")
    assert gc.returncode == 0 and "1 abandoned marked" in gc.stdout, gc.stdout
    with Repository() as repository:
        records = {r.pipeline_name: r for r in repository.metadata.list_runs()}
        assert len(repository.metadata.step_runs(lost.id)) == 1
    assert records["lost"].status == "abandoned" and "lease" in (records["lost"].error or "")
    assert records["alive"].status == "running"


def _leave_running(store: Any, heartbeats: dict[str, Any]) -> None:
    """Mark runs ``running`` on a teammate's machine, last renewed at the given times."""
    import sqlalchemy as sa

    from zenml_collab.core.metadata import models as m

    with store.engine.begin() as conn:
        for run_id, beat in heartbeats.items():
            conn.execute(sa.update(m.runs).where(m.runs.c.id == run_id).values(
                status="running", hostname="teammates-laptop", pid=os.getpid(),
                heartbeat_at=beat, finished_at=None))


def test_a_running_run_renews_its_lease(repo: Any) -> None:
    import sqlalchemy as sa

    from zenml_collab import Repository
    from zenml_collab.core.metadata import models as m
    from zenml_collab.core.metadata.liveness import Heartbeat

    run = _pipeline("renewing", ("numbers", {})).run()
    with Repository() as repository:
        store = repository.metadata
        before = store.get_run(run.id)
        assert before is not None
        with store.engine.begin() as conn:
            conn.execute(sa.update(m.runs).where(m.runs.c.id == run.id).values(
                status="running"))
        beat = Heartbeat(lambda: store._beat(run.id), interval=0.05)
        time.sleep(0.3)
        beat.stop()
        after = store.get_run(run.id)
    assert after is not None and after.heartbeat_at is not None
    assert before.heartbeat_at is not None and after.heartbeat_at > before.heartbeat_at


@pytest.mark.mysql
@fault("metadata.failure-record-fails", fault="a step raises while the store is down, so "
       "recording the failure fails too", sees="the step's own error (ValueError, with its "
       "file:line); the store error is logged", exit_code=1,
       kept="nothing recorded for the step; the run is seen as abandoned later")
def test_a_failing_failure_record_never_hides_the_steps_own_error(
        repo: Any, mysql_url: Any, mysql_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import fault_steps

    from zenml_collab import Repository
    from zenml_collab.errors import StepFailedError

    _use_mysql(repo.root, mysql_url)
    monkeypatch.setenv("COLLAB_DB_RETRY_SECONDS", "1")
    monkeypatch.setattr(fault_steps, "HOOK", mysql_server.stop)
    repository = Repository(repo.root)
    try:
        with pytest.raises(StepFailedError) as failed:
            _pipeline("hidden", ("numbers", {}), ("explode", {})).run(repository)
    finally:
        mysql_server.start()
    assert "ValueError: boom from the step" in failed.value.message
    assert isinstance(failed.value.__cause__, ValueError)


@fault("metadata.run-prefix-wildcards", fault="`collab runs show ''`, `%` or `______`",
       sees="no single run matches (never an arbitrary run)", exit_code=1, kept="-")
def test_empty_or_wildcard_run_ids_match_no_run(repo: Any) -> None:
    run = _pipeline("one", ("numbers", {})).run()
    for pattern in ("", "%", "______", "_%", run.id[:4] + "%"):
        shown = _main(repo.root, "runs", "show", pattern)
        assert shown.returncode == 1, (pattern, shown.stdout)
        assert "no single run matches" in shown.stderr
    assert _main(repo.root, "runs", "show", run.id[:8]).returncode == 0


@pytest.mark.mysql
@fault("metadata.wrong-database", fault="collab.yaml names the team store, but the metadata "
       "port/database reaches another MySQL database (empty, or another store)",
       sees="error naming the likely cause (another MySQL on the port, wrong database) and the "
       "fix", exit_code=4, kept="the other database untouched: never initialised")
def test_a_database_that_is_not_the_team_store_is_refused_and_never_initialised(
        repo: Any, mysql_url: Any, mysql_server: Any) -> None:
    import sqlalchemy as sa

    from zenml_collab.config import load_local_config, load_team_config, write_local_config

    _use_mysql(repo.root, mysql_url)
    store_id = load_team_config(repo.root).metadata.store_id
    assert store_id and len(store_id) == 32
    other = f"{mysql_url.database}_other"
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{other}`")
        local = load_local_config(repo.root)
        assert local.metadata is not None
        write_local_config(repo.root, local.model_copy(update={
            "metadata": local.metadata.model_copy(update={"database": other})}))
        for command in (("pipelines", "list"), ("db", "status"), ("db", "upgrade")):
            done = _main(repo.root, *command)
            assert done.returncode == 4, (command, done.stderr)
            assert "not the team's store" in done.stderr and "another MySQL" in done.stderr
        engine = sa.create_engine(mysql_url.set(database=other))
        try:
            with engine.connect() as c:
                assert sa.inspect(c).get_table_names() == []
            # Another zenml-collab store (its own id) is refused the same way.
            from zenml_collab.core.metadata.store import MetadataStore

            MetadataStore(engine).check_schema()
        finally:
            engine.dispose()
        done = _main(repo.root, "pipelines", "list")
        assert done.returncode == 4 and "another zenml-collab store" in done.stderr
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{other}`")
        conn.close()
