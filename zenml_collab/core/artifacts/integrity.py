"""Integrity of artifact files on the local disk: never serve bytes that do not match their hash.

Two checks, one cheap and one exact:

- :func:`check` (for cache resolution, on every cached step): one ``stat`` per file compared
  with a *stamp* written when the files were last hashed (size, mtime, ctime, inode). A file
  edited, truncated or replaced since then fails the comparison (ctime changes on every write
  and cannot be set back, unlike mtime) and is hashed again; only a mismatch of the hash itself
  makes the artifact ``CORRUPT``.
- :func:`verify` (before any load): the full xxh3-128 hash, once per process per artifact. A
  later load in the same process re-hashes only if a file's stat changed. This is the guarantee:
  bytes that do not match the recorded hash are never handed to a materializer.

Stamps are a speed-up, not a trust anchor: bytes that rot on the medium without any write keep
their stat and pass :func:`check` (and are caught when loaded, in a new process), never the
first :func:`verify` of a process.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from zenml_collab.core.artifacts.base import ArtifactRef, Presence, verify_files
from zenml_collab.core.hashing import hash_files

Signature = tuple[tuple[str, int, int, int, int], ...]

_verified: dict[tuple[str, str], Signature] = {}
_lock = threading.Lock()


def signature(directory: Path, ref: ArtifactRef) -> Signature | None:
    """(name, size, mtime_ns, ctime_ns, inode) of each file, or None if one is missing."""
    sig = []
    for name in ref.files:
        try:
            st = os.stat(directory / name)
        except (FileNotFoundError, NotADirectoryError):
            return None
        sig.append((name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return tuple(sig)


def _read_stamp(stamp: Path, ref: ArtifactRef) -> Signature | None:
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
        if data.get("hash") != ref.hash:
            return None
        return tuple((str(n), int(s), int(m), int(c), int(i)) for n, s, m, c, i in data["files"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def write_stamp(directory: Path, ref: ArtifactRef, stamp: Path,
                sig: Signature | None = None) -> None:
    """Record in ``stamp`` that ``directory`` held ``ref``'s bytes when its files had this stat."""
    sig = sig if sig is not None else signature(directory, ref)
    if sig is None:
        return
    tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"hash": ref.hash, "files": sig}), encoding="utf-8")
        os.replace(tmp, stamp)
    except OSError:
        tmp.unlink(missing_ok=True)  # a read-only store: the stamp is only a speed-up


def forget(directory: Path, stamp: Path) -> None:
    """Drop what is known of ``directory`` (it is being replaced or removed)."""
    stamp.unlink(missing_ok=True)
    with _lock:
        for key in [k for k in _verified if k[0] == str(directory)]:
            del _verified[key]


def check(directory: Path, ref: ArtifactRef, stamp: Path) -> Presence:
    """Cheap presence check of a local copy: stat against the stamp, hash only on a change."""
    sig = signature(directory, ref)
    if sig is None:
        return Presence.MISSING
    with _lock:
        if _verified.get((str(directory), ref.hash)) == sig:
            return Presence.PRESENT
    if _read_stamp(stamp, ref) == sig:
        return Presence.PRESENT
    try:
        actual = hash_files(directory, ref.files)
    except FileNotFoundError:
        return Presence.MISSING
    if actual != ref.hash:
        return Presence.CORRUPT
    _remember(directory, ref, sig)
    write_stamp(directory, ref, stamp, sig)
    return Presence.PRESENT


def verify(directory: Path, ref: ArtifactRef, stamp: Path, where: str) -> None:
    """Full hash once per process per artifact (again if a file's stat changed since)."""
    sig = signature(directory, ref)
    with _lock:
        if sig is not None and _verified.get((str(directory), ref.hash)) == sig:
            return
    try:
        verify_files(directory, ref, where)
    except Exception:
        forget(directory, stamp)  # the next presence check hashes again: corrupt
        raise
    if sig is not None:
        _remember(directory, ref, sig)
        if _read_stamp(stamp, ref) != sig:
            write_stamp(directory, ref, stamp, sig)


def _remember(directory: Path, ref: ArtifactRef, sig: Signature) -> None:
    with _lock:
        _verified[(str(directory), ref.hash)] = sig
