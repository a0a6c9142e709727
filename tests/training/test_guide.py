"""The collaboration guide, as two members in two processes and two clones of one repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from zenml_collab import Repository
from zenml_collab.config import ArtifactsConfig, MetadataConfig, TeamConfig, write_team_config
from zenml_collab.testing.repos import git, make_git_repo

EXAMPLES = resources.files("zenml_collab.examples")
DATA = resources.files("zenml_collab.data") / "diabetes.csv"


def run_member(clone: Path, script: str) -> subprocess.CompletedProcess[str]:
    shutil.copyfile(str(EXAMPLES / script), clone / script)
    result = subprocess.run([sys.executable, script], cwd=clone, capture_output=True, text=True,
                            env={**os.environ, "COLLAB_NO_BROWSER": "1", "COLUMNS": "160"},
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.fixture
def team(tmp_path: Path) -> dict[str, Path]:
    """origin.git + a shared store folder + alice's clone with config and data pushed."""
    from zenml_collab.actions.init import init_repo

    origin, store = tmp_path / "origin.git", tmp_path / "store"
    store.mkdir()
    git(tmp_path, "init", "-q", "--bare", "--initial-branch=main", str(origin))
    alice = tmp_path / "alice"
    make_git_repo(alice, "alice")
    git(alice, "remote", "add", "origin", str(origin))
    write_team_config(alice, TeamConfig(
        metadata=MetadataConfig(kind="sqlite", path=str(store / "metadata.db")),
        artifacts=ArtifactsConfig(uri=str(store / "artifacts"))))
    (alice / "data").mkdir()
    shutil.copyfile(str(DATA), alice / "data" / "diabetes.csv")
    init_repo(alice)
    git(alice, "add", "-A")
    git(alice, "commit", "-q", "-m", "team setup")
    git(alice, "push", "-q", "origin", "main")
    return {"origin": origin, "store": store, "alice": alice, "tmp": tmp_path}


def clone(team: dict[str, Path], member: str) -> Path:
    from zenml_collab.actions.init import init_repo

    path = team["tmp"] / member
    git(team["tmp"], "clone", "-q", str(team["origin"]), member)
    git(path, "config", "user.email", f"{member}@example.com")
    init_repo(path)
    return path


def test_member_b_reuses_member_a_upstream_steps_and_leaves_pipeline_a_unchanged(team):
    alice = team["alice"]
    run_member(alice, "member_a.py")
    git(alice, "add", "pipelines")
    git(alice, "commit", "-q", "-m", "Pipeline A")
    git(alice, "push", "-q", "origin", "main")
    config_a = (alice / "pipelines" / "pipeline-a.yaml").read_bytes()
    runs_a = [(r.id, r.status, r.statuses) for r in Repository(alice).get_pipeline_runs("Pipeline A")]

    bob = clone(team, "bob")
    out = run_member(bob, "member_b.py").stdout
    assert "Schema" in out and "Evaluation" in out  # the views printed their tables

    run_b = Repository(bob).latest_run("Pipeline B")
    assert run_b.statuses == {"datasource": "cached", "split": "cached",
                              "preprocesser": "cached", "trainer": "executed",
                              "evaluator": "executed"}
    assert run_b["trainer"].reason.startswith("params changed: ")
    # Pipeline A: same committed config, same runs, nothing added by bob.
    assert (bob / "pipelines" / "pipeline-a.yaml").read_bytes() == config_a
    assert [(r.id, r.status, r.statuses)
            for r in Repository(bob).get_pipeline_runs("Pipeline A")] == runs_a
    assert git(bob, "status", "--porcelain", "pipelines/pipeline-a.yaml") == ""
    # Alice sees bob's pipeline through the shared store without pulling.
    assert Repository(alice).latest_run("Pipeline B").id == run_b.id


def test_bob_models_differ_and_both_evaluations_are_readable(team):
    run_member(team["alice"], "member_a.py")
    git(team["alice"], "add", "pipelines")
    git(team["alice"], "commit", "-q", "-m", "Pipeline A")
    git(team["alice"], "push", "-q", "origin", "main")
    bob = clone(team, "bob")
    run_member(bob, "member_b.py")
    repo = Repository(bob)
    eval_a = repo.get_pipeline_by_name("Pipeline A").evaluate(show=False)
    eval_b = repo.get_pipeline_by_name("Pipeline B").evaluate(show=False)
    assert eval_a.overall.count == eval_b.overall.count  # the same cached eval split
    assert eval_a.overall.metrics != eval_b.overall.metrics
    assert 0.5 < eval_b.overall.metrics["accuracy"] <= 1.0
