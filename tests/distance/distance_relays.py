"""The distance tests' relays and repositories (a module of its own: several test folders
have a ``conftest``, so ``from conftest import ...`` is ambiguous in a mixed run)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zenml_collab import Repository
from zenml_collab.actions.config import metadata_values, set_artifacts, set_metadata
from zenml_collab.testing.latency import LatencyRelay, WaveClock


@dataclass
class Distance:
    db: LatencyRelay
    gcs: LatencyRelay
    clock: WaveClock
    url: Any  # the database's URL through the relay
    bucket: str
    endpoint: str  # fake-gcs-server itself, for changes behind the store's back

    def reset(self) -> None:
        self.db.reset()
        self.gcs.reset()
        self.clock.reset()


def distant_repo(root: Path, distance: Distance) -> Repository:
    root.mkdir(parents=True)
    for args in (["init", "-q", "--initial-branch=main"], ["config", "user.name", "m"],
                 ["config", "user.email", "m@example.com"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    url = distance.url
    set_metadata(root, metadata_values("mysql", host=url.host, port=url.port,
                                       username=url.username, database=url.database),
                 password=url.password)
    set_artifacts(root, f"gs://{distance.bucket}/team")
    return Repository(root)
