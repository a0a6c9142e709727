"""Helpers and fixtures of the backend tests: the offline step image and a team repository whose
steps live in a module of the repository (so they travel in the source archive). A module of its
own, not conftest.py, so test modules can import it by a unique name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zenml_collab.testing.repos import git, make_git_repo

STEPS_MODULE = "h6_steps"
STEPS = '''
import os
import time

from zenml_collab import step


@step
def numbers(n: int = 5) -> list:
    return list(range(n))


@step
def slow_a(xs: list, seconds: float = 3.0) -> dict:
    start = time.time()
    time.sleep(seconds)
    return {"start": start, "end": time.time(), "host": os.environ.get("HOSTNAME", "")}


@step
def slow_b(xs: list, seconds: float = 3.0) -> dict:
    start = time.time()
    time.sleep(seconds)
    return {"start": start, "end": time.time(), "host": os.environ.get("HOSTNAME", "")}


@step
def total(xs: list) -> int:
    return sum(xs)


@step
def boom(xs: list) -> list:
    raise ValueError("boom from inside the container")


@step
def hang(xs: list) -> list:
    time.sleep(600)
    return xs
'''


@pytest.fixture(scope="session")
def step_image(docker_client: Any) -> str:
    """zenml-collab from this working tree on the offline base image (built once a session)."""
    from zenml_collab.core.backends.image import build_image
    from zenml_collab.testing.base_image import ensure_base_image

    started = time.monotonic()
    base = ensure_base_image(docker_client)
    empty = Path(__file__).parent / "_empty_context"
    empty.mkdir(exist_ok=True)
    built = build_image(docker_client, empty, tag="collab-test/steps:dev", base=base,
                        no_index=True)
    print(f"step image {built.id[:19]} ready in {time.monotonic() - started:.1f}s")
    return built.tag


def team_repo(root: Path, *, metadata: dict[str, Any], password: str | None, artifacts: str,
              compute: dict[str, Any] | None = None) -> Path:
    """A committed git repository with the steps module and collab.yaml (+ local.yaml)."""
    from zenml_collab.config import (
        ArtifactsConfig,
        ComputeConfig,
        LocalConfig,
        MetadataConfig,
        TeamConfig,
        write_local_config,
        write_team_config,
    )

    make_git_repo(root)
    (root / f"{STEPS_MODULE}.py").write_text(STEPS)
    (root / ".gitignore").write_text(".collab/\n__pycache__/\n")
    team_meta = {k: v for k, v in metadata.items() if k in ("kind", "database", "instance")}
    write_team_config(root, TeamConfig(metadata=MetadataConfig(**team_meta),
                                       artifacts=ArtifactsConfig(uri=artifacts),
                                       compute=ComputeConfig.model_validate(compute or {})))
    write_local_config(root, LocalConfig(metadata=MetadataConfig(
        **metadata, **({"password": password} if password else {}))))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "team repo")
    return root


@pytest.fixture
def mysql_gcs_repo(tmp_path: Path, mysql_url: Any, gcs_bucket: str, step_image: str,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A repo on MariaDB + fake-gcs-server whose default backend is docker."""
    import sqlalchemy

    from zenml_collab.core.metadata.store import MetadataStore

    engine = sqlalchemy.create_engine(mysql_url)
    MetadataStore(engine).upgrade("head")
    engine.dispose()
    monkeypatch.setenv("COLLAB_STEP_IMAGE", step_image)
    root = team_repo(tmp_path / "repo",
                     metadata={"kind": "mysql", "host": mysql_url.host, "port": mysql_url.port,
                               "username": mysql_url.username, "database": mysql_url.database},
                     password=mysql_url.password, artifacts=f"gs://{gcs_bucket}/team",
                     compute={"backend": "docker", "max_parallel": 4})
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(root)
    yield root


def containers_created(docker_client: Any, since: float) -> int:
    """Step containers created since ``since`` (docker's event log; they are removed after)."""
    from zenml_collab.core.backends.docker import LABEL

    events = docker_client.events(since=int(since) - 1, until=int(time.time()) + 1, decode=True,
                                  filters={"event": "create", "type": "container", "label": LABEL})
    return sum(1 for e in events if e.get("timeNano", 0) >= since * 1e9)
