"""What git says about the code a run used: the commit, whether the tree was dirty, who ran it."""

from __future__ import annotations

import getpass
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitInfo:
    sha: str | None
    dirty: bool | None
    user: str


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(root: Path) -> GitInfo:
    """HEAD's SHA and the dirty flag (tracked files only: new untracked files are not code
    a step can import by accident often enough to warn about on every run)."""
    sha = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no") if sha else None
    user = _git(root, "config", "user.email") or getpass.getuser()
    return GitInfo(sha=sha or None, dirty=None if status is None else bool(status), user=user)


def find_git_root(start: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return None
