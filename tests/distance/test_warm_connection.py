"""A command's runs share one warm database connection: no ping or session setup per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import distance_steps as steps
import pytest
from distance_relays import Distance, distant_repo

from zenml_collab.testing.sql import count_statements

pytestmark = [pytest.mark.mysql, pytest.mark.gcs]


def measured_cached_run(repo: Any, distance: Distance, name: str) -> tuple[int, int, int]:
    distance.reset()
    counted = count_statements(repo.metadata.engine, lambda: steps.chain(name, 5).run(repo))
    return len(counted), distance.db.stats.turns, distance.clock.waves


def test_a_cached_run_on_a_warm_connection_sends_only_its_statements(
        tmp_path: Path, distance: Distance) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    steps.chain("warm", 5).run(repo)
    steps.chain("warm", 5).run(repo)
    statements, db_round_trips, sequential = measured_cached_run(repo, distance, "warm")
    # One SELECT (registration, environment, previous steps with their cache entries), the
    # run's INSERT, one INSERT of every step row, the run's UPDATE; nothing else on the wire:
    # no pool ping, no autocommit switch, no reset on return.
    assert statements == 4
    assert db_round_trips == statements
    # The artifact checks are in flight while the run's INSERT is: at most one wave more.
    assert sequential <= statements + 1


def test_a_warm_connection_idle_too_long_is_pinged_once_before_reuse(
        tmp_path: Path, distance: Distance) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    steps.chain("idle", 5).run(repo)
    steps.chain("idle", 5).run(repo)
    repo.metadata.warm_idle_s = 0.0  # every reuse counts as idle
    statements, db_round_trips, _ = measured_cached_run(repo, distance, "idle")
    assert statements == db_round_trips == 4 + 1  # the ping (SELECT 1) is the only extra


def kill_sessions(distance: Distance, mysql_server: Any) -> int:
    admin = mysql_server.connect()
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT ID FROM information_schema.PROCESSLIST "
                           "WHERE DB = %s AND ID <> CONNECTION_ID()", (distance.url.database,))
            ids = [row[0] for row in cursor.fetchall()]
            for session in ids:
                cursor.execute(f"KILL {int(session)}")
        return len(ids)
    finally:
        admin.close()


def test_a_warm_connection_the_server_dropped_is_replaced_and_the_run_succeeds(
        tmp_path: Path, distance: Distance, mysql_server: Any) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    steps.chain("dropped", 5).run(repo)
    assert kill_sessions(distance, mysql_server) >= 1  # the warm one among them
    run = steps.chain("dropped", 5).run(repo)
    assert set(run.statuses.values()) == {"cached"}
    assert [r.status for r in repo.metadata.step_runs(run.id)] == ["cached"] * 5
