"""`collab init`: make a git repository a zenml-collab repository."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from zenml_collab.config import LOCAL_DIR, TEAM_FILE
from zenml_collab.core.git import find_git_root
from zenml_collab.core.repository import Repository
from zenml_collab.errors import RepositoryNotFoundError

IGNORE_LINE = f"{LOCAL_DIR}/"


@dataclass(frozen=True)
class InitResult:
    root: Path
    created: bool
    gitignore_updated: str | None  # the file that now ignores .collab/, if one changed
    metadata: str
    artifacts: str
    schema_revision: str | None


IgnoreTarget = Literal[".gitignore", ".git/info/exclude"]


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          check=False)


def _listed(path: Path) -> bool:
    if not path.is_file():
        return False
    lines = {line.strip() for line in path.read_text(encoding="utf-8").splitlines()}
    return bool(lines & {LOCAL_DIR, IGNORE_LINE, f"/{LOCAL_DIR}", f"/{IGNORE_LINE}"})


def is_ignored(root: Path) -> bool:
    """Whether git ignores ``.collab/`` here (``.gitignore``, ``.git/info/exclude`` or global)."""
    done = _git(root, "check-ignore", "-q", "--no-index", f"{IGNORE_LINE}local.yaml")
    if done.returncode in (0, 1):
        return done.returncode == 0
    return _listed(root / ".gitignore")  # not a git work tree (or no git): read the file


def ignore_target(root: Path) -> IgnoreTarget:
    """Where ``.collab/`` gets ignored: the committed ``.gitignore`` while the team's repo is
    being created, ``.git/info/exclude`` in a clone of a team whose ``collab.yaml`` is committed.

    A member must not leave an untracked (or modified) ``.gitignore``: the first teammate to
    commit one would make every other member's `git pull` abort.
    """
    committed = _git(root, "ls-files", "--error-unmatch", "--", TEAM_FILE).returncode == 0
    has_git_dir = (root / ".git").is_dir()
    return ".git/info/exclude" if committed and has_git_dir else ".gitignore"


def ensure_ignored(root: Path, target: IgnoreTarget | None = None) -> IgnoreTarget | None:
    """Have git ignore ``.collab/``; returns the file changed (None if already ignored)."""
    if is_ignored(root):
        return None
    target = target or ignore_target(root)
    path = root / target
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    path.write_text(f"{text}# zenml-collab: member-local config and stores\n{IGNORE_LINE}\n",
                    encoding="utf-8")
    return target


def prepare_local_dir(root: Path) -> tuple[bool, IgnoreTarget | None]:
    """Create `.collab/` (0700) and ignore it; returns (created, the ignore file changed).

    The part of `collab init` that needs no store: `collab join` uses it before the team's
    stores are reachable.
    """
    local = root / LOCAL_DIR
    created = not local.is_dir()
    local.mkdir(exist_ok=True)
    local.chmod(0o700)
    return created, ensure_ignored(root)


def init_repo(path: Path) -> InitResult:
    """Create `.collab/`, ignore it, and open (creating if empty) the metadata store."""
    path = path.resolve()
    root = find_git_root(path)
    if root is None:
        raise RepositoryNotFoundError(
            f"{path} is not inside a git repository",
            "run `git init` first: zenml-collab pins every run to a git commit",
        )
    created, updated = prepare_local_dir(root)
    repo = Repository(root)
    store = repo.metadata  # opens and, for an empty store, creates the schema
    return InitResult(root, created, updated, store.description, repo.settings.artifacts.uri,
                      store.revision())
