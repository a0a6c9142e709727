"""Steps on Vertex AI (the fake, which runs each job's container on the test dockerd)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from backend_helpers import STEPS_MODULE, containers_created, team_repo

from zenml_collab import Pipeline, Repository
from zenml_collab.errors import PermissionDeniedError, StepFailedError
from zenml_collab.testing.fake_gcp import FakeGCP
from zenml_collab.testing.repos import git

pytestmark = [pytest.mark.docker, pytest.mark.mysql, pytest.mark.gcs, pytest.mark.slow]
PROJECT = "team-proj"
REGION = "us-central1"
RUNNER = f"collab-runner@{PROJECT}.iam.gserviceaccount.com"
MEMBER = f"ana@{PROJECT}.iam.gserviceaccount.com"


@dataclass
class Team:
    fake: FakeGCP
    root: Path
    key: Path
    make_clone: Any


@pytest.fixture
def team(fake_gcp: FakeGCP, tmp_path: Path, mysql_url: Any, gcs_bucket: str, gcs_endpoint: str,
         step_image: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    """Project with a member allowed to launch jobs as the runner account; stores on MariaDB
    and fake-gcs-server; trainer-style steps on vertex by default."""
    import sqlalchemy

    from zenml_collab.core.metadata.store import MetadataStore

    engine = sqlalchemy.create_engine(mysql_url)
    MetadataStore(engine).upgrade("head")
    engine.dispose()
    fake = fake_gcp
    fake.add_project(PROJECT)
    key = fake.add_member(MEMBER, roles=["roles/aiplatform.user"], project=PROJECT)
    fake.add_member(RUNNER, project=PROJECT)
    fake.vertex.grant_on_service_account(RUNNER, "roles/iam.serviceAccountUser",
                                         f"serviceAccount:{MEMBER}")
    fake.vertex.container_env = {"STORAGE_EMULATOR_HOST": gcs_endpoint}
    for name, value in fake.env.items():
        if name != "STORAGE_EMULATOR_HOST":
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    monkeypatch.setenv("COLLAB_VERTEX_ALLOW_DIRECT_DB", "1")
    monkeypatch.setenv("COLLAB_VERTEX_POLL_MAX", "0.5")
    monkeypatch.setenv("COLLAB_STEP_IMAGE", step_image)
    compute = {"backend": "vertex",
               "vertex": {"project": PROJECT, "region": REGION, "service_account": RUNNER}}
    metadata = {"kind": "mysql", "host": mysql_url.host, "port": mysql_url.port,
                "username": mysql_url.username, "database": mysql_url.database}

    def make_clone(name: str) -> Path:
        root = team_repo(tmp_path / name, metadata=metadata, password=mysql_url.password,
                         artifacts=f"gs://{gcs_bucket}/team", compute=compute)
        data = Path(__file__).parents[2] / "zenml_collab" / "data" / "diabetes.csv"
        (root / "data").mkdir()
        shutil.copy(data, root / "data" / "diabetes.csv")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "data")
        return root

    root = make_clone("ana")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(root)
    yield Team(fake, root, key, make_clone)


def creates(fake: FakeGCP) -> int:
    return sum(1 for r in fake.requests
               if r.method_id == "aiplatform.projects.locations.customJobs.create")


def guide_pipeline(name: str) -> Any:
    from zenml_collab import (
        CSVDatasource,
        Evaluator,
        RandomSplit,
        SklearnTrainer,
        StandardPreprocesser,
        TrainingPipeline,
    )

    p = TrainingPipeline(name=name)
    p.add_datasource(CSVDatasource(name="Pima", path="data/diabetes.csv"), backend="local")
    p.add_split(RandomSplit(split_map={"train": 0.7, "eval": 0.3}, seed=42), backend="local")
    p.add_preprocesser(StandardPreprocesser(
        features=["pregnancies", "glucose", "blood_pressure", "bmi", "age"],
        labels=["has_diabetes"]), backend="docker")
    p.add_trainer(SklearnTrainer(model="LogisticRegression", max_iter=1000), backend="vertex")
    p.add_evaluator(Evaluator(metrics=["accuracy"]), backend="local")
    return p


def test_guide_pipeline_with_trainer_on_vertex_and_preprocesser_on_docker_then_a_teammates_rerun_launches_nothing(  # noqa: E501
        team: Team, docker_client: Any) -> None:
    t0 = time.time()
    run = guide_pipeline("Pipeline V").run(Repository(team.root))
    assert set(run.statuses.values()) == {"executed"}
    jobs = team.fake.vertex.created()
    assert len(jobs) == 1 and jobs[0].state == "JOB_STATE_SUCCEEDED"
    recorded = Repository(team.root).get_run(run.id)
    trainer = recorded["trainer"].execution
    assert trainer is not None and trainer.backend == "vertex"
    # The job's own name uses the project number; the recorded one its id (both resolve).
    assert trainer.job == f"projects/{PROJECT}/locations/{REGION}/customJobs/" \
        + jobs[0].name.rsplit("/", 1)[-1]
    assert (trainer.image or "").startswith("sha256:")  # the digest, not the tag
    assert recorded["trainer"].reason == "no previous run"
    preprocesser = recorded["preprocesser"].execution
    assert preprocesser is not None and preprocesser.backend == "docker"
    assert recorded["evaluator"].execution is None
    assert run.load("evaluator")  # the evaluator read the model the job stored

    bob = team.make_clone("bob")
    before, t1 = creates(team.fake), time.time()
    again = Repository(bob).pipeline_from_config("Pipeline V").run(Repository(bob))
    assert set(again.statuses.values()) == {"cached"}
    assert all(step.execution is None for step in again.steps)  # nothing ran anywhere
    assert creates(team.fake) == before == 1  # no customJobs.create
    assert containers_created(docker_client, t1) == 0
    assert containers_created(docker_client, t0) == 1  # the preprocesser's, in the first run


def _one_step(name: str, step_name: str) -> Pipeline:
    import importlib

    s = importlib.import_module(STEPS_MODULE)
    p = Pipeline(name)
    p.add(s.numbers, backend="local")
    p.add(getattr(s, step_name), inputs={"xs": "numbers"})
    return p


def test_a_job_failing_in_its_container_fails_the_step_with_its_message_and_the_job_name(
        team: Team) -> None:
    with pytest.raises(StepFailedError) as info:
        _one_step("fails on vertex", "boom").run(Repository(team.root))
    job = team.fake.vertex.created()[0]
    assert job.state == "JOB_STATE_FAILED"
    assert job.name in info.value.message
    assert "boom from inside the container" in info.value.message
    assert Repository(team.root).get_pipeline_runs("fails on vertex")[0].status == "failed"


def test_a_preempted_job_is_restarted_and_its_step_recorded_once(team: Team) -> None:
    team.fake.vertex.inject("preempt")
    run = _one_step("preempted", "total").run(Repository(team.root))
    assert run.load("total") == 10
    job = team.fake.vertex.created()[0]
    assert len(job.container_ids) == 2 and job.state == "JOB_STATE_SUCCEEDED"
    assert [s.name for s in Repository(team.root).get_run(run.id).steps] == ["numbers", "total"]


@pytest.mark.parametrize("missing", ["create", "actAs"])
def test_a_missing_vertex_permission_exits_3_naming_the_role_before_any_job(
        team: Team, missing: str) -> None:
    with team.fake.world.lock:
        if missing == "create":
            team.fake.world.projects[PROJECT].policy.bindings.pop("roles/aiplatform.user")
        else:
            team.fake.vertex.sa_policies.clear()
    with pytest.raises(PermissionDeniedError) as info:
        _one_step(f"denied {missing}", "total").run(Repository(team.root))
    assert info.value.exit_code == 3
    role = "roles/aiplatform.user" if missing == "create" else "roles/iam.serviceAccountUser"
    assert role in str(info.value) and "gcloud" in (info.value.hint or "")
    assert creates(team.fake) == 0


SCRIPT = f"""
import importlib
from zenml_collab import Pipeline, Repository
s = importlib.import_module("{STEPS_MODULE}")
p = Pipeline("interrupted")
p.add(s.numbers, backend="local")
p.add(s.hang, inputs={{"xs": "numbers"}})
p.run(Repository())
"""


def test_sigint_during_a_vertex_job_cancels_it_and_marks_the_run_failed(team: Team) -> None:
    team.fake.vertex.inject("hang")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=team.root,
                            env={**os.environ, "PYTHONPATH": str(team.root)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        jobs = team.fake.vertex.created()
        if jobs and jobs[0].state == "JOB_STATE_RUNNING":
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"the job never ran: {proc.communicate()[1][-2000:]}")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    job = team.fake.vertex.created()[0]
    for _ in range(100):
        if job.state == "JOB_STATE_CANCELLED":
            break
        time.sleep(0.1)
    assert job.state == "JOB_STATE_CANCELLED", err[-1500:]
    run = Repository(team.root).get_pipeline_runs("interrupted")[0]
    assert run.status == "failed"
