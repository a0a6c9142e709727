"""`collab init`: make a git repository a zenml-collab repository."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zenml_collab.config import LOCAL_DIR
from zenml_collab.core.git import find_git_root
from zenml_collab.core.repository import Repository
from zenml_collab.errors import RepositoryNotFoundError

IGNORE_LINE = f"{LOCAL_DIR}/"


@dataclass(frozen=True)
class InitResult:
    root: Path
    created: bool
    gitignore_updated: bool
    metadata: str
    artifacts: str
    schema_revision: str | None


def is_ignored(root: Path) -> bool:
    path = root / ".gitignore"
    if not path.exists():
        return False
    lines = {line.strip() for line in path.read_text(encoding="utf-8").splitlines()}
    return bool(lines & {LOCAL_DIR, IGNORE_LINE, f"/{LOCAL_DIR}", f"/{IGNORE_LINE}"})


def ensure_ignored(root: Path) -> bool:
    """Add `.collab/` to .gitignore; returns whether the file changed."""
    if is_ignored(root):
        return False
    path = root / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    path.write_text(f"{text}# zenml-collab: member-local config and stores\n{IGNORE_LINE}\n",
                    encoding="utf-8")
    return True


def prepare_local_dir(root: Path) -> tuple[bool, bool]:
    """Create `.collab/` (0700) and ignore it; returns (created, gitignore_updated).

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
