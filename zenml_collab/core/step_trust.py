"""Which modules a step import path from a committed config may name (DESIGN §10).

``pipelines/*.yaml`` is a teammate's file, and importing a module runs its top level: a config
naming ``this:s``, ``antigravity:x`` or some installed package's side-effecting module would run
it on every member's machine. So before importing, the *top-level* package is located without
running anything (``importlib.util.find_spec`` of a top-level name executes no code) and must
live in a place this member chose to run code from:

- the repository (its own modules, including packages installed from it in editable mode);
- zenml-collab itself (its standard steps);
- a directory on this member's ``PYTHONPATH``;
- a top-level name this member lists in ``COLLAB_TRUSTED_STEP_MODULES`` (comma-separated), for
  a team's steps installed as a package.

A module already imported in this process is fine too: importing it again runs nothing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

TRUSTED_MODULES_ENV = "COLLAB_TRUSTED_STEP_MODULES"


def _trusted_roots() -> list[Path]:
    from zenml_collab.core.root import find_root
    from zenml_collab.errors import RepositoryNotFoundError

    try:
        repo = find_root()
    except RepositoryNotFoundError:
        repo = Path.cwd()
    package = Path(__file__).resolve().parents[1]  # zenml_collab/
    extra = [Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p.strip()]
    return [p.resolve() for p in (repo, package, *extra)]


def _location(top: str) -> Path | None:
    """Where the top-level module ``top`` would be loaded from (None: nowhere, or built in)."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    if spec.origin and spec.origin not in ("built-in", "frozen"):
        return Path(spec.origin).resolve()
    return None


def untrusted_reason(module_name: str) -> str | None:
    """Why importing ``module_name`` is refused, or None if it may be imported."""
    if module_name in sys.modules:
        return None
    top = module_name.split(".", 1)[0]
    allowed = {m.strip() for m in os.environ.get(TRUSTED_MODULES_ENV, "").split(",") if m.strip()}
    if top in allowed:
        return None
    where = _location(top)
    if where is None:
        return None  # nothing to run: the import fails and says so
    if any(where == root or where.is_relative_to(root) for root in _trusted_roots()):
        return None
    return f"module {top!r} lives in {where.parent}, outside the repository"
