"""Where a step ran is recorded as data (``step_runs.execution_json``, migration 0005), beside
its plain reason; `collab runs show` prints it. No container needed: the worker's half
(:func:`execute_task`) runs in this process against the real stores."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from zenml_collab import Pipeline, Repository
from zenml_collab.core.metadata.records import StepExecution, StepRunRecord, utcnow
from zenml_collab.core.metadata.store import MetadataStore


def _alembic(engine: sa.Engine, action: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from zenml_collab.core.metadata.store import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)


def _record(store: MetadataStore, execution: StepExecution | None) -> str:
    pipeline_id, _ = store.register_pipeline(name="p", kind="pipeline", identity="i" * 64,
                                             config_json="{}", created_by="ana", git_sha=None)
    run_id = uuid.uuid4().hex
    store.start_run(run_id=run_id, pipeline_id=pipeline_id, pipeline_name="p", git_sha=None,
                    git_dirty=False, user="ana", hostname="h", environment_hash=None)
    store.record_step(StepRunRecord(
        run_id=run_id, pipeline_name="p", step_name="s", step_path="m.s", position=0,
        cache_key="a" * 64, code_hash="b" * 64, params={}, inputs={}, outputs=None,
        status="executed", reason="no previous run", started_at=utcnow(), duration_ms=1.0,
        execution=execution))
    return run_id


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mysql)])
def engine(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    else:
        engine = sa.create_engine(request.getfixturevalue("mysql_url"))
    yield engine
    engine.dispose()


def test_execution_round_trips_and_migration_0005_keeps_older_step_runs_readable(
        engine: sa.Engine) -> None:
    store = MetadataStore(engine)
    store.upgrade("head")
    where = StepExecution("vertex", "sha256:" + "c" * 64,
                          "projects/p/locations/us-central1/customJobs/42")
    run_id = _record(store, where)
    assert store.step_runs(run_id)[0].execution == where
    _alembic(engine, "downgrade", "0004")  # the column goes, the row stays
    with engine.connect() as conn:
        assert "execution_json" not in {c["name"] for c in sa.inspect(conn)
                                        .get_columns("step_runs")}
    store.upgrade("head")
    (older,) = store.step_runs(run_id)
    assert older.execution is None and older.reason == "no previous run"


@pytest.mark.parametrize("stored", ["not json", "[1]", '{"backend": 3}',
                                    '{"backend": "docker", "image": "x", "job": 7}'])
def test_a_malformed_execution_from_a_teammate_reads_as_unknown(stored: str) -> None:
    assert StepExecution.from_json(stored) is None


def test_the_worker_records_the_backend_image_and_job_name_and_runs_show_prints_them(
        tmp_repo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import collab_test_steps as steps

    from zenml_collab.core import cache
    from zenml_collab.core.backends.execute import execute_task
    from zenml_collab.core.backends.task import JOB_PARENT_ENV, StepTask
    from zenml_collab.core.step import resolve_impl

    p = Pipeline("where")
    p.add(steps.source)
    run = p.run(Repository())
    source = run["source"].outputs["output"]
    impl, _ = resolve_impl(steps.scale)
    key = cache.cache_key(step_path=impl.import_path, code_hash=impl.code_hash, params={},
                          input_hashes={"xs": source.hash}, output_names=impl.output_names)
    task = StepTask(run_id=run.id, pipeline_name="where", step_name="scale",
                    step_path=impl.import_path, position=1, cache_key=key,
                    code_hash=impl.code_hash, params={}, inputs={"xs": source.to_json()},
                    input_hashes={"xs": source.hash}, output_names=impl.output_names,
                    reason="no previous run", backend="vertex", image="sha256:" + "d" * 64)
    monkeypatch.setenv("CLOUD_ML_JOB_ID", "4242")
    monkeypatch.setenv(JOB_PARENT_ENV, "projects/team/locations/europe-west4")
    repo = Repository()
    execute_task(task, repo.metadata, repo.artifacts)

    scale = repo.get_run(run.id)["scale"]
    assert scale.reason == "no previous run"
    assert scale.execution == StepExecution(
        "vertex", "sha256:" + "d" * 64, "projects/team/locations/europe-west4/customJobs/4242")
    assert repo.get_run(run.id)["source"].execution is None

    shown = tmp_repo.collab("runs", "show", run.id[:12], env={"COLUMNS": "300"})
    assert shown.returncode == 0, shown.stderr
    line = next(ln for ln in shown.stdout.splitlines() if "scale" in ln)
    assert "vertex job projects/team/locations/europe-west4/customJobs/4242" in line
    assert "image sha256:dddd" in line and "no previous run" in line
