"""The guide's two-member workflow on shared stores: MariaDB + fake-gcs-server, two clones,
two processes, configured only through `collab config`."""

from __future__ import annotations

import json
import shutil
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml
from shared_helpers import GcsProxy, MysqlLogin, collab, configure_mysql, git, run

from zenml_collab.config import file_mode
from zenml_collab.core.training.pipeline import WIRING

pytestmark = [pytest.mark.mysql, pytest.mark.gcs, pytest.mark.slow]

# Every log line of the members' processes goes to stderr, so the test can search it.
LOGGING = "import logging; logging.basicConfig(level=logging.DEBUG)\n"

MEMBER_A = LOGGING + '''
import json
from zenml_collab import *
p = TrainingPipeline(name="Pipeline A")
p.add_datasource(CSVDatasource(name="Pima", path="data/diabetes.csv"))
p.add_split(RandomSplit(split_map={"train": 0.7, "eval": 0.3}, seed=1))
p.add_preprocesser(StandardPreprocesser(
    features=["pregnancies", "glucose", "blood_pressure", "bmi", "age", "clinic"],
    labels=["has_diabetes"]))
p.add_trainer(SklearnTrainer(model="LogisticRegression", max_iter=500))
p.add_evaluator(Evaluator(metrics=["accuracy", "f1", "roc_auc"], slices=[["clinic"]]))
r = p.run()
print("RESULT " + json.dumps({s.name: [s.status, {k: v.hash for k, v in s.outputs.items()}]
                              for s in r.steps}))
'''

MEMBER_B = LOGGING + '''
import json
from zenml_collab import *
repo = Repository()
a = repo.get_pipeline_by_name("Pipeline A")
b = a.copy(new_name="Pipeline B")
b.add_trainer(SklearnTrainer(model="RandomForestClassifier", n_estimators=50, random_state=0))
r = b.run()
print("RESULT " + json.dumps({s.name: [s.status, {k: v.hash for k, v in s.outputs.items()}]
                              for s in r.steps}))
'''


def result_of(done: object) -> dict[str, list]:
    stdout = done.stdout  # type: ignore[attr-defined]
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def clone(origin: Path, path: Path, user: str) -> Path:
    git(origin.parent, "clone", "-q", str(origin), str(path))
    git(path, "config", "user.name", user)
    git(path, "config", "user.email", f"{user}@example.com")
    return path


def test_member_b_reuses_member_a_steps_through_the_shared_stores(
        tmp_path: Path, mysql_login: MysqlLogin, gcs_bucket: str, gcs_proxy: GcsProxy,
        gcs_endpoint: str) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "--initial-branch=main", str(origin))

    # Member A configures the team's stores, commits the team file and the data, runs.
    a = clone(origin, tmp_path / "alice", "alice")
    outputs = [configure_mysql(a, mysql_login),
               collab(a, "config", "artifacts", "set", f"gs://{gcs_bucket}/team")]
    assert all(o.returncode == 0 for o in outputs), [o.stderr for o in outputs]
    (a / "data").mkdir()
    with resources.as_file(resources.files("zenml_collab.data") / "diabetes.csv") as csv:
        shutil.copy(csv, a / "data" / "diabetes.csv")
    (a / "a.py").write_text(MEMBER_A)
    git(a, "add", "collab.yaml", ".gitignore", "data", "a.py")
    git(a, "commit", "-q", "-m", "team stores, data and pipeline A")
    ran_a = run([sys.executable, "a.py"], a)
    outputs.append(ran_a)
    assert ran_a.returncode == 0, ran_a.stderr[-3000:]
    statuses_a = result_of(ran_a)
    assert {s for s, _ in statuses_a.values()} == {"executed"}
    git(a, "add", "pipelines")
    git(a, "commit", "-q", "-m", "pipeline A config")
    git(a, "push", "-q", "origin", "main")

    # Member B clones, sets only its own connection details, and runs a copy with a new trainer.
    b = clone(origin, tmp_path / "bob", "bob")
    assert yaml.safe_load((b / "collab.yaml").read_text())["artifacts"]["uri"] == (
        f"gs://{gcs_bucket}/team")
    set_b = configure_mysql(b, mysql_login)
    outputs.append(set_b)
    assert set_b.returncode == 0, set_b.stderr
    cache_b = b / ".collab" / "cache"
    assert not cache_b.exists() or not any(cache_b.iterdir())
    (b / "b.py").write_text(MEMBER_B)
    before = len(gcs_proxy.requests())
    ran_b = run([sys.executable, "b.py"], b)
    outputs.append(ran_b)
    assert ran_b.returncode == 0, ran_b.stderr[-3000:]
    statuses_b = result_of(ran_b)
    assert {name: s for name, (s, _) in statuses_b.items()} == {
        "datasource": "cached", "split": "cached", "preprocesser": "cached",
        "trainer": "executed", "evaluator": "executed"}

    # B's upstream outputs are A's very artifacts; no upstream step body ran in B's process:
    # B's cache holds exactly what its executed steps loaded (read from the bucket) and wrote,
    # and so never the datasource's output (only the datasource's own execution writes it).
    for name in ("datasource", "split", "preprocesser"):
        assert statuses_b[name][1] == statuses_a[name][1]
    cached = {p.name for p in cache_b.iterdir() if not p.name.startswith(".")}
    outs = {n: o for n, (_, o) in statuses_b.items()}
    executed = [n for n, (s, _) in statuses_b.items() if s == "executed"]
    loaded = {outs[src.partition(".")[0]][src.partition(".")[2] or "output"]
              for n in executed for src in WIRING[n].values()}
    written = {h for n in executed for h in outs[n].values()}
    assert cached == loaded | written
    assert not set(outs["datasource"].values()) & cached
    downloads = [r for r in gcs_proxy.requests(since=before)
                 if r[0] == "GET" and "alt=media" in r[1]]
    prepared = outs["preprocesser"]["features"]
    assert any(prepared in r[1] for r in downloads)

    # The password is in no tracked file, no commit, no output or log line; local.yaml is 0600.
    assert file_mode(b / ".collab/local.yaml") == 0o600
    assert file_mode(a / ".collab/local.yaml") == 0o600
    texts = [o.stdout + o.stderr for o in outputs]
    texts.append(git(a, "log", "-p", "--all"))
    for member in (a, b):
        texts += [(member / f).read_text(errors="replace")
                  for f in git(member, "ls-files").split()]
    assert not [t[:200] for t in texts if mysql_login.password in t]
