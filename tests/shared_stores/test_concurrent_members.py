"""Several members run the same pipeline at the same moment on MySQL + GCS."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest
import sqlalchemy as sa
from shared_helpers import GcsProxy, MysqlLogin, collab, configure_mysql, git, git_repo, list_objects

pytestmark = [pytest.mark.mysql, pytest.mark.gcs, pytest.mark.slow]

# Each process imports everything, then waits for the start signal so all run together.
MEMBER = '''
import json, os, sys, time
from pathlib import Path
from zenml_collab import *
p = TrainingPipeline(name="Pipeline A")
p.add_datasource(CSVDatasource(name="Pima", path="data/diabetes.csv"))
p.add_split(RandomSplit(split_map={"train": 0.7, "eval": 0.3}, seed=1))
p.add_preprocesser(StandardPreprocesser(features=["glucose", "bmi", "age"],
                                        labels=["has_diabetes"]))
p.add_trainer(SklearnTrainer(model="LogisticRegression", max_iter=500))
p.add_evaluator(Evaluator(metrics=["accuracy"]))
go = Path(sys.argv[1])
deadline = time.monotonic() + 120
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
r = p.run()
print("RESULT " + json.dumps(r.statuses))
'''
PROCESSES_PER_CLONE = 2
CLONES = 2


def test_members_running_the_same_pipeline_at_once_all_succeed_without_duplicates(
        tmp_path: Path, mysql_login: MysqlLogin, mysql_url: object, gcs_bucket: str,
        gcs_proxy: GcsProxy, gcs_endpoint: str) -> None:
    seed = git_repo(tmp_path / "seed")
    assert configure_mysql(seed, mysql_login).returncode == 0  # creates the schema once
    assert collab(seed, "config", "artifacts", "set", f"gs://{gcs_bucket}/team").returncode == 0
    (seed / "data").mkdir()
    with resources.as_file(resources.files("zenml_collab.data") / "diabetes.csv") as csv:
        shutil.copy(csv, seed / "data" / "diabetes.csv")
    (seed / "member.py").write_text(MEMBER)
    git(seed, "add", "collab.yaml", ".gitignore", "data", "member.py")
    git(seed, "commit", "-q", "-m", "team setup")

    go = tmp_path / "go"
    procs = []
    for i in range(CLONES):
        clone = tmp_path / f"member{i}"
        git(tmp_path, "clone", "-q", str(seed), str(clone))
        assert configure_mysql(clone, mysql_login).returncode == 0
        for _ in range(PROCESSES_PER_CLONE):  # two processes share one clone's local cache
            procs.append(subprocess.Popen(
                [sys.executable, "member.py", str(go)], cwd=clone, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True))
    time.sleep(3)  # let every process finish importing
    go.touch()
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), [e[-2000:] for _, e in results]
    statuses = [json.loads(next(line for line in out.splitlines()
                                if line.startswith("RESULT "))[7:]) for out, _ in results]
    assert all(set(s.values()) <= {"executed", "cached"} and len(s) == 5 for s in statuses)

    engine = sa.create_engine(mysql_url)  # type: ignore[arg-type]
    try:
        with engine.connect() as conn:
            keys = conn.execute(sa.text("SELECT cache_key, COUNT(*) FROM cache_entries "
                                        "GROUP BY cache_key")).all()
            runs = conn.execute(sa.text("SELECT status, COUNT(*) FROM runs GROUP BY status")).all()
            step_runs = conn.execute(sa.text("SELECT COUNT(*) FROM step_runs")).scalar()
            artifact_hashes = {r[0] for r in conn.execute(sa.text("SELECT hash FROM artifacts"))}
            pipelines = conn.execute(sa.text("SELECT COUNT(*) FROM pipelines")).scalar()
    finally:
        engine.dispose()
    assert len(keys) == 5 and all(n == 1 for _, n in keys)
    assert dict(runs) == {"completed": len(procs)}
    assert step_runs == 5 * len(procs)
    assert pipelines == 1

    objects = [o["name"] for o in list_objects(gcs_endpoint, gcs_bucket)]
    stored = Counter(name.split("/")[3] for name in objects if name.startswith("team/artifacts/"))
    assert set(stored) == artifact_hashes  # every recorded artifact, and nothing else
    assert len(objects) == len(set(objects))
    for content_hash in stored:
        manifests = [n for n in objects if content_hash in n and n.endswith("_manifest.json")]
        assert len(manifests) == 1
