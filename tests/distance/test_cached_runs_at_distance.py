"""At a distance, a cached run costs the same statements and round trips whatever its length."""

from __future__ import annotations

import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import distance_steps as steps
import pytest
from distance_relays import Distance, distant_repo

from zenml_collab import Repository
from zenml_collab.errors import StepFailedError
from zenml_collab.testing.sql import count_statements

pytestmark = [pytest.mark.mysql, pytest.mark.gcs]


@dataclass(frozen=True)
class Cost:
    statements: int
    db_round_trips: int
    gcs_sequential: int
    sequential: int


def cached_run_cost(repo: Repository, distance: Distance, length: int) -> Cost:
    steps.chain(f"chain-{length}", length).run(repo)  # cold
    steps.chain(f"chain-{length}", length).run(repo)  # warm connections, as in a session
    distance.reset()
    runs = []
    counted = count_statements(repo.metadata.engine,
                               lambda: runs.append(steps.chain(f"chain-{length}", length).run(repo)))
    assert set(runs[0].statuses.values()) == {"cached"}
    return Cost(len(counted), distance.db.stats.turns, distance.gcs.stats.waves,
                distance.clock.waves)


def test_a_cached_run_costs_the_same_statements_and_round_trips_for_5_and_40_steps(
        tmp_path: Path, distance: Distance) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    five, forty = (cached_run_cost(repo, distance, n) for n in (5, 40))
    assert five.statements == forty.statements
    assert five.db_round_trips == forty.db_round_trips
    # Every check at once: one wave, two when starting 40 threads on a loaded machine takes
    # longer than a round trip here (3 ms); never one per step.
    assert five.gcs_sequential <= 2 and forty.gcs_sequential <= 2
    assert abs(five.sequential - forty.sequential) <= 1


def test_every_cached_step_is_recorded_once_with_its_reason(
        tmp_path: Path, distance: Distance) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    steps.chain("recorded", 6).run(repo)
    run = steps.chain("recorded", 6).run(repo)
    records = repo.metadata.step_runs(run.id)
    assert [(r.position, r.step_name, r.status, r.reason) for r in records] == [
        (i, f"s{i:02d}", "cached", "cache hit") for i in range(6)]
    first = steps.chain("recorded", 6).run(repo)
    assert first["s05"].outputs == run["s05"].outputs
    assert run.load("s05") == 6


def delete_object(endpoint: str, bucket: str, name: str) -> None:
    quoted = urllib.parse.quote(name, safe="")
    request = urllib.request.Request(f"{endpoint}/storage/v1/b/{bucket}/o/{quoted}",
                                     method="DELETE")
    urllib.request.urlopen(request, timeout=30).close()


def test_a_deleted_artifact_still_makes_its_step_miss_with_reason_artifact_missing(
        tmp_path: Path, distance: Distance) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    first = steps.chain("gone", 5).run(repo)
    ref = first["s02"].outputs["output"]
    data_file = next(f for f in ref.files)
    delete_object(distance.endpoint, distance.bucket, f"team/artifacts/{ref.hash[:2]}/"
                  f"{ref.hash}/{data_file}")
    run = steps.chain("gone", 5).run(repo)
    assert [(s.name, s.status, s.reason) for s in run.steps][:3] == [
        ("s00", "cached", "cache hit"), ("s01", "cached", "cache hit"),
        ("s02", "executed", "artifact missing")]
    # The re-execution stored the same content again: the steps after it are hits.
    assert run.statuses["s03"] == run.statuses["s04"] == "cached"
    recorded = {r.step_name: (r.status, r.reason) for r in repo.metadata.step_runs(run.id)}
    assert recorded["s02"] == ("executed", "artifact missing")
    assert len(recorded) == 5


def test_cached_steps_before_a_failing_step_stay_on_record(
        tmp_path: Path, distance: Distance, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    first = steps.chain("fails", 4).run(repo)
    ref = first["s03"].outputs["output"]
    for name in (*ref.files, "_manifest.json"):
        delete_object(distance.endpoint, distance.bucket,
                      f"team/artifacts/{ref.hash[:2]}/{ref.hash}/{name}")
    monkeypatch.setattr(steps, "FAIL", True)
    with pytest.raises(StepFailedError, match="boom"):
        steps.chain("fails", 4).run(repo)
    latest = repo.metadata.list_runs("fails")[0]
    assert latest.status == "failed"
    recorded = [(r.step_name, r.status) for r in repo.metadata.step_runs(latest.id)]
    assert recorded == [("s00", "cached"), ("s01", "cached"), ("s02", "cached"),
                        ("s03", "failed")]
