"""At a distance, an executed step costs one database round trip; records are batched."""

from __future__ import annotations

from pathlib import Path

import distance_steps as steps
import pytest
from distance_relays import Distance, distant_repo

from zenml_collab import Pipeline, Repository
from zenml_collab.core import runner
from zenml_collab.errors import StepFailedError
from zenml_collab.testing.sql import count_statements

pytestmark = [pytest.mark.mysql, pytest.mark.gcs]


def cold_run_cost(repo: Repository, distance: Distance, length: int, salt: int) -> tuple[int, int]:
    distance.reset()
    runs = []
    counted = count_statements(repo.metadata.engine, lambda: runs.append(
        steps.chain(f"cold-{salt}", length, salt=salt).run(repo)))
    assert set(runs[0].statuses.values()) == {"executed"}
    return len(counted), distance.db.stats.turns


def test_an_executed_step_costs_one_statement_and_one_database_round_trip(
        tmp_path: Path, distance: Distance) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    steps.chain("warm-up", 2, salt=99).run(repo)  # the connection and the environment
    five = cold_run_cost(repo, distance, 5, salt=1)
    ten = cold_run_cost(repo, distance, 10, salt=2)
    # Per executed step: its lookup (cache entry and previous run in one SELECT); its
    # artifacts, cache entry and step run join the run's batched write.
    assert (ten[0] - five[0], ten[1] - five[1]) == (5, 5)


def selects_of_a_new_pipeline(repo: Repository, name: str,
                              keys: list[int]) -> tuple[int, object]:
    pipeline = Pipeline(name)
    for i, k in enumerate(keys):
        pipeline.add(steps.inc, name="ab"[i], params={"k": k})
    runs = []
    counted = count_statements(repo.metadata.engine, lambda: runs.append(pipeline.run(repo)))
    return len([s for s in counted if s == "SELECT"]), runs[0]


def test_a_key_executed_earlier_in_the_run_is_a_hit_without_a_lookup(
        tmp_path: Path, distance: Distance) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    solo, _ = selects_of_a_new_pipeline(repo, "solo", [4243])
    twins, run = selects_of_a_new_pipeline(repo, "twins", [4242, 4242])  # b's key is a's
    assert [(s.name, s.status) for s in run.steps] == [  # type: ignore[attr-defined]
        ("a", "executed"), ("b", "cached")]
    assert run.steps[1].reason == "cache hit"  # type: ignore[attr-defined]
    assert twins == solo  # no lookup for b
    recorded = [(r.step_name, r.status)
                for r in repo.metadata.step_runs(run.id)]  # type: ignore[attr-defined]
    assert recorded == [("a", "executed"), ("b", "cached")]


def test_executed_steps_before_a_failing_step_stay_on_record_and_are_cached_next_time(
        tmp_path: Path, distance: Distance, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    monkeypatch.setattr(steps, "FAIL_AT", 5002)
    with pytest.raises(StepFailedError, match="boom"):
        steps.chain("halfway", 4, salt=5).run(repo)
    failed = repo.metadata.list_runs("halfway")[0]
    assert failed.status == "failed"
    assert [(r.step_name, r.status) for r in repo.metadata.step_runs(failed.id)] == [
        ("s00", "executed"), ("s01", "executed"), ("s02", "failed")]
    monkeypatch.setattr(steps, "FAIL_AT", None)
    run = steps.chain("halfway", 4, salt=5).run(repo)
    assert [run.statuses[f"s{i:02d}"] for i in range(4)] == [
        "cached", "cached", "executed", "executed"]


def recorded_when_each_step_ran(repo: Repository, name: str,
                                monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    seen: list[list[str]] = []

    def observe(_k: int) -> None:
        running = repo.metadata.list_runs(name)[0]
        seen.append([r.step_name for r in repo.metadata.step_runs(running.id)])

    monkeypatch.setattr(steps, "OBSERVE", observe)
    steps.chain(name, 3, salt=len(name)).run(repo)
    monkeypatch.setattr(steps, "OBSERVE", None)
    return seen


def test_finished_steps_are_written_once_the_oldest_has_waited_flush_after_s(
        tmp_path: Path, distance: Distance, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    # Fast steps: their records wait for one batched write at the end of the run.
    assert recorded_when_each_step_ran(repo, "batched", monkeypatch) == [[], [], []]
    # Slow steps (here: any step): each record is written before the next step starts.
    monkeypatch.setattr(runner, "FLUSH_AFTER_S", 0.0)
    assert recorded_when_each_step_ran(repo, "written-each", monkeypatch) == [
        [], ["s00"], ["s00", "s01"]]


def test_every_output_of_a_cold_run_is_stored_when_its_record_is_written(
        tmp_path: Path, distance: Distance) -> None:
    repo = distant_repo(tmp_path / "repo", distance)
    run = steps.chain("uploaded", 6, salt=7).run(repo)  # uploads run in the background
    for record in repo.metadata.step_runs(run.id):
        assert record.status == "executed"
        ref = run[record.step_name].outputs["output"]
        assert repo.artifacts.presence(ref).value == "present"
    assert run.load("s05") == 6


def test_a_failed_upload_fails_the_run_with_the_stores_error_and_records_no_step(
        tmp_path: Path, distance: Distance) -> None:
    from zenml_collab.errors import CollabError

    repo = distant_repo(tmp_path / "repo", distance)
    config = repo.root / "collab.yaml"  # a bucket deleted after the member configured it
    config.write_text(config.read_text().replace(distance.bucket,
                                                 "no-such-bucket-for-collab-tests"))
    repo = Repository(repo.root)
    with pytest.raises(CollabError, match="no-such-bucket-for-collab-tests"):
        steps.chain("nowhere", 3, salt=8).run(repo)
    failed = repo.metadata.list_runs("nowhere")[0]
    assert failed.status == "failed"
    assert repo.metadata.step_runs(failed.id) == []  # no record names an unstored artifact
