"""`collab quickstart`: the collaboration guide, played by two members on one machine.

Two clones of one git repository share one team store (SQLite + a folder, standing in for
Cloud SQL + a bucket). Member A runs Pipeline A twice (the second run is all cache hits) and
pushes; member B pulls, inspects A's data and model, copies the pipeline with another trainer
and runs it: the steps before the trainer are served from the team's stores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from zenml_collab.actions.init import init_repo
from zenml_collab.config import ArtifactsConfig, MetadataConfig, TeamConfig, write_team_config
from zenml_collab.core.repository import Repository
from zenml_collab.core.run import Run
from zenml_collab.errors import CollabError, ConfigError


@dataclass(frozen=True)
class MemberRun:
    member: str
    script: str
    run: Run


@dataclass(frozen=True)
class QuickstartResult:
    base: Path
    store: Path
    clones: dict[str, Path]
    runs: tuple[MemberRun, ...]


def _git(cwd: Path, *args: str) -> None:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CollabError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip()}",
                          "check that git is installed and working (`git --version`)")


def _copy_packaged(package: str, name: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files(package) / name) as src:
        shutil.copyfile(src, dest)


def _clone(origin: Path, base: Path, member: str, email: str) -> Path:
    path = base / member
    _git(base, "clone", "--quiet", str(origin), member)
    _git(path, "config", "user.name", member.capitalize())
    _git(path, "config", "user.email", email)
    return path


def _run_member(clone: Path, script: str, member: str, log: Path) -> None:
    env = {**os.environ, "COLLAB_NO_BROWSER": "1", "PYTHONWARNINGS": "ignore"}
    with open(log, "a", encoding="utf-8") as out:
        done = subprocess.run([sys.executable, script], cwd=clone, env=env, stdout=out,
                              stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-5:]
        raise CollabError(f"member {member}'s script {script} failed:\n  " + "\n  ".join(tail),
                          f"the full output is in {log}")


def run_quickstart(directory: Path | None = None,
                   on_event: Callable[[str], None] = lambda _: None) -> QuickstartResult:
    if directory is not None:
        directory = directory.resolve()
        try:
            if directory.exists() and any(directory.iterdir()):
                raise ConfigError(f"{directory} is not empty",
                                  "pass --dir with a new or empty directory, or omit it")
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot use {directory}: {exc.strerror}",
                              "pass --dir with a writable new or empty directory") from None
    base = directory or Path(tempfile.mkdtemp(prefix="collab-quickstart-"))
    if shutil.which("git") is None:
        raise CollabError("git is not installed", "install git (e.g. apt-get install git)")
    origin, store = base / "origin.git", base / "team-store"
    store.mkdir()
    _git(base, "init", "--quiet", "--bare", "--initial-branch=main", str(origin))

    on_event(f"member A (alice) creates the team repo in {base / 'alice'}")
    alice = _clone(origin, base, "alice", "alice@example.com")
    _git(alice, "checkout", "--quiet", "-B", "main")
    write_team_config(alice, TeamConfig(
        metadata=MetadataConfig(kind="sqlite", path=str(store / "metadata.db")),
        artifacts=ArtifactsConfig(uri=str(store / "artifacts"))))
    _copy_packaged("zenml_collab.data", "diabetes.csv", alice / "data" / "diabetes.csv")
    _copy_packaged("zenml_collab.examples", "member_a.py", alice / "member_a.py")
    init_repo(alice)
    _git(alice, "add", "-A")
    _git(alice, "commit", "--quiet", "-m", "Team repo: config, data, member A's pipeline")
    _git(alice, "push", "--quiet", "origin", "main")

    log = base / "quickstart.log"
    runs: list[MemberRun] = []
    for attempt in ("runs Pipeline A", "re-runs Pipeline A unchanged"):
        on_event(f"alice {attempt}")
        _run_member(alice, "member_a.py", "alice", log)
        runs.append(MemberRun("alice", "member_a.py", Repository(alice).latest_run("Pipeline A")))
    _git(alice, "add", "pipelines")
    _git(alice, "commit", "--quiet", "-m", "Pipeline A")
    _git(alice, "push", "--quiet", "origin", "main")

    on_event(f"member B (bob) clones the repo into {base / 'bob'}, inspects Pipeline A, "
             "copies it with another trainer and runs it")
    bob = _clone(origin, base, "bob", "bob@example.com")
    init_repo(bob)
    _copy_packaged("zenml_collab.examples", "member_b.py", bob / "member_b.py")
    _run_member(bob, "member_b.py", "bob", log)
    runs.append(MemberRun("bob", "member_b.py", Repository(bob).latest_run("Pipeline B")))
    return QuickstartResult(base, store, {"alice": alice, "bob": bob}, tuple(runs))
