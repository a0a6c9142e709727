"""Fixtures shared by the core and training tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from zenml_collab.testing.repos import TmpRepo, make_git_repo

TESTS_DIR = Path(__file__).parent


@pytest.fixture
def tmp_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TmpRepo]:
    from zenml_collab.actions.init import init_repo

    root = tmp_path / "repo"
    make_git_repo(root)
    init_repo(root)
    monkeypatch.chdir(root)
    monkeypatch.setenv("COLLAB_NO_BROWSER", "1")
    monkeypatch.setenv("COLLAB_TEST_COUNTER", str(tmp_path / "counter.log"))
    monkeypatch.syspath_prepend(str(TESTS_DIR / "core"))
    # Child processes (`collab run ...`) import the same test steps.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(TESTS_DIR / "core"), os.environ.get("PYTHONPATH", "")) if p))
    yield TmpRepo(root)


@pytest.fixture
def executions(tmp_path: Path) -> Executions:
    return Executions(tmp_path / "counter.log")


class Executions:
    """Counts step bodies that really ran (each appends its name to a file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def names(self) -> list[str]:
        return self.path.read_text().split() if self.path.exists() else []

    def reset(self) -> None:
        self.path.unlink(missing_ok=True)
