"""The run's code as content-addressed archives in the artifact store.

Two artifacts (bytes, so the store's integrity checks apply): the tree of the commit
(``git archive HEAD``: identical bytes for everyone at that commit, so stored once per commit)
and, when the working tree is dirty, an *overlay*: the full content of every tracked file that
differs from HEAD and of every untracked, non-ignored file, plus the list of deleted files.
That overlay is the recorded dirty diff; the worker applies it over the commit tree without
needing git. Images carry dependencies only, so a code change never rebuilds an image.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zenml_collab.core.artifacts.base import ArtifactRef, ArtifactStore, load_artifact, save_artifact
from zenml_collab.core.backends.task import WorkerError
from zenml_collab.errors import CollabError

MAX_OVERLAY_BYTES = 100 * 1024 * 1024
DELETED = ".collab-deleted.json"
_SKIP_DIRS = (".git", ".collab")


@dataclass(frozen=True)
class SourceArchive:
    commit: str | None
    tree: ArtifactRef | None
    overlay: ArtifactRef | None

    def to_json(self) -> dict[str, Any]:
        return {"commit": self.commit,
                "tree": self.tree.to_json() if self.tree else None,
                "overlay": self.overlay.to_json() if self.overlay else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourceArchive:
        return cls(data.get("commit"),
                   ArtifactRef.from_json(data["tree"]) if data.get("tree") else None,
                   ArtifactRef.from_json(data["overlay"]) if data.get("overlay") else None)


def _git(root: Path, *args: str) -> bytes:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        raise CollabError(f"git {args[0]} failed in {root}: {done.stderr.decode()[-300:].strip()}",
                          "the code of a run on another backend is read from git")
    return done.stdout


def _tar(root: Path, names: list[str], deleted: list[str]) -> bytes:
    """A deterministic tar (sorted, mtime 0) of ``names`` under ``root``."""
    buffer = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in sorted(set(names)):
            path = root / name
            if not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes()
            total += len(data)
            if total > MAX_OVERLAY_BYTES:
                raise CollabError(
                    f"uncommitted files in {root} exceed {MAX_OVERLAY_BYTES >> 20} MiB",
                    "commit your code, and keep data in a datasource or the artifact store "
                    "(or add large files to .gitignore)")
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
        if deleted:
            data = json.dumps(sorted(deleted)).encode()
            info = tarfile.TarInfo(DELETED)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def pack_source(root: Path, artifacts: ArtifactStore) -> SourceArchive:
    """Store the code of the repository at ``root`` (commit tree + dirty overlay)."""
    if not (root / ".git").exists():
        every = [str(p.relative_to(root)) for p in root.rglob("*")
                 if p.is_file() and p.relative_to(root).parts[0] not in _SKIP_DIRS]
        return SourceArchive(None, None, save_artifact(artifacts, _tar(root, every, [])))
    probe = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root,
                           capture_output=True, text=True, timeout=30, check=False)
    head = probe.stdout.strip() if probe.returncode == 0 else None
    tree = save_artifact(artifacts, _git(root, "archive", "--format=tar", "HEAD")) if head else None
    changed = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all").split(b"\0")
    names: list[str] = []
    deleted: list[str] = []
    entries = iter(changed)
    for entry in entries:
        if len(entry) < 4:
            continue
        status, name = entry[:2].decode(), entry[3:].decode("utf-8", "surrogateescape")
        if status[0] in "RC":
            next(entries, None)  # the rename's source path follows
        if "D" in status:
            deleted.append(name)
        elif not name.startswith(_SKIP_DIRS):
            names.append(name)
    overlay = save_artifact(artifacts, _tar(root, names, deleted)) if names or deleted else None
    return SourceArchive(head, tree, overlay)


def unpack_source(archive: SourceArchive, artifacts: ArtifactStore, dest: Path) -> None:
    """Recreate the run's code under ``dest`` (tree, then overlay); paths are checked."""
    dest.mkdir(parents=True, exist_ok=True)
    for ref in (archive.tree, archive.overlay):
        if ref is None:
            continue
        data = load_artifact(artifacts, ref)
        if not isinstance(data, bytes):
            raise WorkerError("the source archive is not a byte artifact", "re-run the pipeline")
        try:
            # Plain tar only (what pack_source writes): no decompression to bomb or fail.
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                # "data" refuses absolute paths, "..", links out of dest and device files.
                tar.extractall(dest, filter="data")
        except (tarfile.TarError, EOFError, OSError) as exc:
            # Not a tar, truncated, a member "data" refuses, or one the file system refuses
            # (a name too long, a file where a directory goes, a link loop).
            raise WorkerError(
                f"the source archive {ref.hash[:12]} cannot be unpacked: {exc}",
                "it was not written by `collab run` (a broken or hostile client): re-run the "
                "pipeline from a clean checkout; nothing of it was executed") from None
    marker = dest / DELETED
    if marker.exists():
        for name in _deleted_names(marker):
            target = (dest / name).resolve()
            if target.is_relative_to(dest.resolve()) and target.is_file():
                target.unlink()
        marker.unlink()


def _deleted_names(marker: Path) -> list[str]:
    """The overlay's list of files deleted since the commit (a JSON list of paths)."""
    try:
        names = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        names = exc
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise WorkerError("the source archive's list of deleted files is malformed",
                          "re-run the pipeline from a clean checkout; nothing was executed")
    return names
