"""Throw-away git repositories for tests, built from a dict of files (like DVC's tmp_dir.gen)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


class TmpRepo:
    """A git repo with `collab init` done; ``gen`` writes files like DVC's tmp_dir.gen."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def gen(self, files: dict[str, str | bytes]) -> None:
        for name, content in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

    def commit(self, message: str = "commit") -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.root, "rev-parse", "HEAD")

    def collab(self, *args: str, input: str | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real `collab` console entry point in a fresh process."""
        return subprocess.run(
            [sys.executable, "-c", "from zenml_collab.cli.main import main; main()", *args],
            cwd=self.root, capture_output=True, text=True, input=input,
            env={**os.environ, "COLLAB_NO_BROWSER": "1", **(env or {})}, timeout=300)

    def python(self, code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code], cwd=self.root, capture_output=True,
                              text=True, env={**os.environ, "COLLAB_NO_BROWSER": "1",
                                              **(env or {})}, timeout=300)


def make_git_repo(path: Path, user: str = "tester") -> None:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "--initial-branch=main")
    git(path, "config", "user.name", user)
    git(path, "config", "user.email", f"{user}@example.com")
