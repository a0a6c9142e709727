"""Where a datasource may read from: inside the repository, or ``gs://`` (DESIGN §10).

A pipeline config is committed, so its datasource path is a teammate's choice, replayed on
every member's machine. Were absolute or ``~`` paths allowed, a committed
``path: ~/.config/gcloud/application_default_credentials.json`` would make each member's
``collab run`` snapshot their own credentials into the team bucket. So a local path must
resolve (after symlinks) inside the repository. A member who really wants a file elsewhere says
so for their own run only: ``collab run --allow-path DIR`` or ``COLLAB_ALLOW_PATHS`` (directories
separated by ``os.pathsep``); that choice is never recorded in the config.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from zenml_collab.errors import ConfigError, RepositoryNotFoundError, SourceMissingError

if TYPE_CHECKING:
    from zenml_collab.core.git import GitInfo
    from zenml_collab.core.pipeline import Pipeline

ALLOW_PATHS_ENV = "COLLAB_ALLOW_PATHS"
#: Directories of the repository that are never data: the member's own settings and secrets.
PRIVATE_DIRS = (".collab", ".git")


def allowed_roots(root: Path) -> list[Path]:
    """The repository, plus the directories this member allowed for this process."""
    extra = [Path(p).expanduser().resolve()
             for p in os.environ.get(ALLOW_PATHS_ENV, "").split(os.pathsep) if p.strip()]
    return [root.resolve(), *extra]


def _root() -> Path:
    from zenml_collab.core.root import find_root

    try:
        return find_root()
    except RepositoryNotFoundError:
        return Path.cwd()


def resolve_local_source(path: str, root: Path | None = None) -> Path:
    """The file a datasource ``path`` names, refused unless it lies in an allowed place."""
    root = root if root is not None else _root()
    if "\0" in path:
        raise ConfigError(f"datasource path {path!r} contains a NUL byte", "fix the path")
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        # Relative to the repository root, wherever in the repo the pipeline runs from, so
        # that every member's clone reads its own copy of the same committed file.
        candidate = root / candidate
    resolved = candidate.resolve()
    inside = resolved.relative_to(root.resolve()).parts if resolved.is_relative_to(
        root.resolve()) else ()
    if inside and inside[0] in PRIVATE_DIRS:
        # .collab/local.yaml holds the member's password, .git/config may hold a token in a
        # remote URL: a teammate's config must not snapshot them into the team's bucket.
        raise ConfigError(
            f"datasource path {path!r} is inside {inside[0]}/, which is private to each member "
            "(settings, credentials, git internals) and never data",
            "point the datasource at a data file in the repository or at gs://")
    for allowed in allowed_roots(root):
        if resolved == allowed or resolved.is_relative_to(allowed):
            return resolved
    raise ConfigError(
        f"datasource path {path!r} resolves to {resolved}, outside the repository {root}; "
        "a pipeline config may only read files inside the repository or gs:// objects",
        "move the file into the repository (and commit it) or upload it to gs://; to read it "
        f"for your own run only, pass `collab run --allow-path {resolved.parent}` "
        f"(or set {ALLOW_PATHS_ENV})")


def read_local_source(path: str) -> bytes:
    return _read_checked(resolve_local_source(path), path)


def local_source_head(path: str, size: int) -> tuple[Path, bytes]:
    """The checked file a datasource ``path`` names and its first ``size`` bytes, for a reader
    that takes the rest from the file itself (errors as :func:`read_local_source`'s)."""
    local = resolve_local_source(path)
    return local, _read_checked(local, path, size)


def _read_checked(local: Path, path: str, size: int = -1) -> bytes:
    try:
        with open(local, "rb") as fh:
            return fh.read(size)
    except FileNotFoundError:
        raise SourceMissingError(f"datasource file {path!r} does not exist",
                                 "paths are relative to the repository root; check the path "
                                 "(a teammate's untracked file is not in your clone: ask them "
                                 "to commit it or to use gs://)") from None
    except IsADirectoryError:
        raise ConfigError(f"datasource path {path!r} is a directory",
                          "point the datasource at a CSV file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read datasource file {path!r}: {exc.strerror}",
                          "check the file's permissions") from None


def is_repository_module(module: str) -> bool:
    """Whether ``module`` is a module or package of this repository's own code."""
    if not module or any(not part.isidentifier() for part in module.split(".")):
        return False
    base = _root().joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


UNTRACKED_HINT = "teammates cannot reproduce this: commit it or use gs://"


class UntrackedDataWarning(UserWarning):
    """A datasource reads a file git does not track (untracked or ignored)."""


def local_source_paths(pipeline: Pipeline) -> list[str]:
    """The local files the pipeline's datasources read (a fingerprinted step's ``path``)."""
    paths = []
    for node in pipeline.steps:
        path = node.params.get("path")
        if node.impl.fingerprint is not None and isinstance(path, str) \
                and path and not path.startswith("gs://"):
            paths.append(path)
    return paths


def untracked_sources(paths: list[str], root: Path) -> list[str]:
    """Those of ``paths`` that git does not track in ``root`` (untracked, ignored, outside)."""
    rel: dict[str, str] = {}
    hidden: list[str] = []
    for path in paths:
        try:
            resolved = resolve_local_source(path, root)
        except ConfigError:
            continue  # the run reports it
        if not resolved.is_file():
            continue  # missing here: the run reuses a recorded snapshot or reports it
        if resolved.is_relative_to(root.resolve()):
            rel[path] = resolved.relative_to(root.resolve()).as_posix()
        else:
            hidden.append(path)  # an allowed directory outside the repository
    if rel:
        done = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", *rel.values()],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return hidden  # not a git work tree: nothing to compare with
        tracked = set(done.stdout.split("\0"))
        hidden += [path for path, name in rel.items() if name not in tracked]
    return hidden


def check_sources_tracked(pipeline: Pipeline, root: Path, git: GitInfo) -> GitInfo:
    """Warn about datasource files teammates cannot see; such a run counts as dirty."""
    hidden = untracked_sources(local_source_paths(pipeline), root)
    if not hidden:
        return git
    warnings.warn(f"{pipeline.name!r} reads {', '.join(map(repr, hidden))}, which git does not "
                  f"track (untracked or ignored): {UNTRACKED_HINT}", UntrackedDataWarning,
                  stacklevel=4)
    return dataclasses.replace(git, dirty=True) if git.sha else git
