"""Finding the repository root: the directory holding ``collab.yaml`` or ``.collab/``.

A module of its own so what only needs the root (datasource paths, `collab image`) does not
import :mod:`zenml_collab.core.repository`, which imports pipelines and the runner.
"""

from __future__ import annotations

from pathlib import Path

from zenml_collab.config import LOCAL_DIR, TEAM_FILE
from zenml_collab.errors import RepositoryNotFoundError


def find_root(start: Path | None = None) -> Path:
    """The nearest directory upward holding ``collab.yaml`` or ``.collab/`` (like git)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / TEAM_FILE).is_file() or (candidate / LOCAL_DIR).is_dir():
            return candidate
    raise RepositoryNotFoundError(
        f"{here} is not inside a zenml-collab repository (no {TEAM_FILE} or {LOCAL_DIR}/ "
        "here or above)",
        "run `collab init` at the root of your project's git repository",
    )
