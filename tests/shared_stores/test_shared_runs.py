"""Pipelines on MySQL + GCS: bounded cost per cached step, faults survived, no duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest
import shared_store_steps as steps
from shared_helpers import GcsProxy, MysqlLogin, git_repo

from zenml_collab import Repository
from zenml_collab.actions.config import metadata_values, set_artifacts, set_metadata
from zenml_collab.testing.fixtures_services import MySQLServer
from zenml_collab.testing.sql import count_statements


def shared_repo(root: Path, login: MysqlLogin | None, artifacts: str | None) -> Repository:
    """A repository configured like `collab config ... set` does (in this process)."""
    git_repo(root)
    if login is None:
        set_metadata(root, metadata_values("sqlite"))
    else:
        set_metadata(root, metadata_values("mysql", host=login.host, port=login.port,
                                           username=login.user, database=login.database),
                     password=login.password)
    if artifacts:
        set_artifacts(root, artifacts)
    return Repository(root)


def cached_run_statements(repo: Repository, length: int) -> int:
    steps.chain(f"chain{length}", length).run(repo)
    run = None

    def again() -> None:
        nonlocal run
        run = steps.chain(f"chain{length}", length).run(repo)

    counted = count_statements(repo.metadata.engine, again)
    assert run is not None and set(run.statuses.values()) == {"cached"}
    return len(counted)


@pytest.mark.mysql
@pytest.mark.gcs
def test_a_cached_step_costs_the_same_statements_on_mysql_as_on_sqlite_and_one_gcs_request(
        tmp_path: Path, mysql_login: MysqlLogin, gcs_proxy: GcsProxy, gcs_bucket: str,
        steps_on_path: None) -> None:
    lite = shared_repo(tmp_path / "lite", None, None)
    shared = shared_repo(tmp_path / "shared", mysql_login, f"gs://{gcs_bucket}/team")
    counts = {name: [cached_run_statements(repo, n) for n in (3, 6)]
              for name, repo in (("sqlite", lite), ("mysql", shared))}
    assert counts["mysql"] == counts["sqlite"]
    per_step = (counts["mysql"][1] - counts["mysql"][0]) / 3
    assert per_step == 0  # hits resolved for the whole run in one query, recorded in one insert

    before = len(gcs_proxy.requests())
    run = steps.chain("chain6", 6).run(shared)
    assert set(run.statuses.values()) == {"cached"}
    assert len(gcs_proxy.requests(since=before)) <= 6  # at most one request per cached step


@pytest.mark.mysql
def test_a_database_restart_between_steps_does_not_fail_the_run(
        tmp_path: Path, mysql_login: MysqlLogin, mysql_server: MySQLServer,
        steps_on_path: None, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = shared_repo(tmp_path / "repo", mysql_login, None)
    restarts: list[int] = []

    def restart() -> None:
        mysql_server.restart()
        restarts.append(1)

    monkeypatch.setattr(steps, "HOOK", restart)
    run = steps.with_interruption("survivor").run(repo)
    assert restarts == [1]
    assert run.status == "completed"
    assert set(run.statuses.values()) == {"executed"}
    recorded = repo.metadata.step_runs(run.id)
    assert [r.step_name for r in recorded] == ["first", "middle", "last"]
    assert repo.metadata.get_run(run.id).status == "completed"  # type: ignore[union-attr]


@pytest.mark.gcs
def test_a_503_from_storage_during_a_run_is_retried(
        tmp_path: Path, gcs_proxy: GcsProxy, gcs_bucket: str, steps_on_path: None) -> None:
    repo = shared_repo(tmp_path / "repo", None, f"gs://{gcs_bucket}/team")
    fault = gcs_proxy.inject("POST", "/upload/", 503, times=3)
    run = steps.chain("flaky", 3).run(repo)
    assert fault.hits == 3
    assert run.status == "completed"
    assert run.load("s2") == [x + 1 + 2 for x in range(5)]


@pytest.mark.mysql
def test_a_database_that_stays_down_for_seconds_is_waited_for(
        tmp_path: Path, mysql_login: MysqlLogin, mysql_server: MySQLServer,
        steps_on_path: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like a proxy or Cloud SQL maintenance restart: the store is gone for ~2 s mid-run."""
    import threading
    import time

    repo = shared_repo(tmp_path / "repo", mysql_login, None)

    def outage() -> None:
        mysql_server.stop()
        threading.Thread(target=lambda: (time.sleep(2), mysql_server.start())).start()

    monkeypatch.setattr(steps, "HOOK", outage)
    run = steps.with_interruption("patient").run(repo)
    assert run.status == "completed"
    assert [r.step_name for r in repo.metadata.step_runs(run.id)] == ["first", "middle", "last"]
