"""Data teammates cannot see: an untracked datasource file warns and makes the run dirty; a
teammate whose clone lacks the file reuses the recorded snapshot; another file makes a new one.

Two clones of one repository (a bare remote), sharing one SQLite store and one artifact folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from zenml_collab.testing.repos import git, make_git_repo

RUN = """\
from zenml_collab import CSVDatasource, Pipeline
p = Pipeline("data")
p.add(CSVDatasource(name="diabetes", path="data/x.csv"))
p.run()
"""
LATEST = ("from zenml_collab import Repository; import json; r = Repository().latest_run('data');"
          "print(json.dumps({'dirty': r.git_dirty, 'steps': [[s.status, s.reason] "
          "for s in r.steps]}))")


def _python(root: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "COLLAB_NO_BROWSER": "1"}, timeout=300)


def _collab(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _python(root, f"from zenml_collab.cli.main import main; main({list(args)!r})")


def _team(tmp_path: Path) -> tuple[Path, Path]:
    shared = tmp_path / "shared"
    shared.mkdir()
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "--initial-branch=main", str(origin))
    alice = tmp_path / "alice"
    make_git_repo(alice, "alice")
    (alice / "collab.yaml").write_text(
        f"metadata:\n  kind: sqlite\n  path: {shared / 'metadata.db'}\n"
        f"artifacts:\n  uri: {shared / 'artifacts'}\n")
    (alice / ".gitignore").write_text(".collab/\n")
    git(alice, "add", "-A")
    git(alice, "commit", "-q", "-m", "team")
    git(alice, "remote", "add", "origin", str(origin))
    git(alice, "push", "-q", "origin", "main")
    return alice, origin


def _latest(root: Path) -> dict[str, object]:
    done = _python(root, LATEST)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_an_untracked_datasource_warns_and_the_run_counts_as_dirty(tmp_path: Path) -> None:
    alice, _ = _team(tmp_path)
    (alice / "data").mkdir()
    (alice / "data" / "x.csv").write_text("a,b\n1,2\n3,4\n")
    done = _python(alice, RUN)
    assert done.returncode == 0, done.stderr
    assert "teammates cannot reproduce this: commit it or use gs://" in done.stderr
    assert _latest(alice)["dirty"] is True
    git(alice, "add", "data/x.csv")
    git(alice, "commit", "-q", "-m", "data")
    again = _python(alice, RUN)
    assert again.returncode == 0 and "cannot reproduce" not in again.stderr, again.stderr
    assert _latest(alice)["dirty"] is False


def test_a_teammate_without_the_file_reuses_the_recorded_snapshot_and_another_file_is_new(
    tmp_path: Path,
) -> None:
    alice, origin = _team(tmp_path)
    (alice / "data").mkdir()
    (alice / "data" / "x.csv").write_text("a,b\n1,2\n3,4\n")
    assert _python(alice, RUN).returncode == 0
    git(alice, "add", "pipelines")
    git(alice, "commit", "-q", "-m", "pipeline")
    git(alice, "push", "-q", "origin", "main")

    git(tmp_path, "clone", "-q", str(origin), "bob")
    bob = tmp_path / "bob"
    assert not (bob / "data" / "x.csv").exists()
    reused = _collab(bob, "run", "pipelines/data.yaml")
    assert reused.returncode == 0, reused.stderr
    assert "Traceback" not in reused.stderr
    [[status, reason]] = _latest(bob)["steps"]  # type: ignore[misc]
    assert status == "cached" and "reused the recorded snapshot" in reason

    (bob / "data").mkdir()
    (bob / "data" / "x.csv").write_text("a,b\n5,6\n")
    fresh = _collab(bob, "run", "pipelines/data.yaml")
    assert fresh.returncode == 0, fresh.stderr
    [[status, reason]] = _latest(bob)["steps"]  # type: ignore[misc]
    assert status == "executed" and reason.startswith("input changed")
