"""What git says about the code a run used: the commit, whether the tree was dirty, who ran it."""

from __future__ import annotations

import functools
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
    """HEAD's SHA and the dirty flag, from one `git status` (tracked files only: new untracked
    files are not code a step can import by accident often enough to warn about every run)."""
    status = _git(root, "status", "--porcelain=v2", "--branch", "--untracked-files=no")
    sha: str | None = None
    dirty: bool | None = None
    if status is not None:
        lines = status.splitlines()
        for line in lines:
            if line.startswith("# branch.oid "):
                oid = line.removeprefix("# branch.oid ").strip()
                sha = None if oid == "(initial)" else oid
        dirty = None if sha is None else any(not line.startswith("#") for line in lines)
    return GitInfo(sha=sha, dirty=dirty, user=git_user(root))


@functools.lru_cache(maxsize=16)
def git_user(root: Path) -> str:
    """Who runs: git's user.email, else the login name (once per process and repo)."""
    return _git(root, "config", "user.email") or getpass.getuser()


def find_git_root(start: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return None
