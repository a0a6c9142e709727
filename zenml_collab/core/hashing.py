"""Hashes: SHA-256 for cache keys, xxh3-128 for artifact content.

Cache keys are SHA-256 of canonical JSON: tiny inputs, and the key is an identity shared by a
team, so a cryptographic hash costs nothing and rules out accidental collisions.

Artifact content is hashed with xxh3-128 (xxhash): it runs at memory speed (> 10 GB/s on one
core here, see benchmarks/) where SHA-256 manages ~1 GB/s, and a content address is not a
security boundary: anyone who can write the bucket can write any object anyway. 128 bits keep
accidental collisions out of reach for any realistic number of artifacts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CONTENT_HASH_ALGORITHM = "xxh3-128"
_CHUNK = 8 * 1024 * 1024


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)


def sha256_json(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def content_hasher() -> Any:
    import xxhash

    return xxhash.xxh3_128()


def hash_files(root: Path, names: Iterable[str]) -> str:
    """Content hash of the named files under ``root`` (name, size and bytes of each, in order)."""
    hasher = content_hasher()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    for name in sorted(names):
        path = root / name
        hasher.update(f"{name}\0{path.stat().st_size}\0".encode())
        with open(path, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                hasher.update(view[:n])
    return str(hasher.hexdigest())


def hash_named_bytes(files: dict[str, bytes]) -> str:
    """What :func:`hash_files` returns for files holding these bytes, without writing them."""
    hasher = content_hasher()
    for name in sorted(files):
        hasher.update(f"{name}\0{len(files[name])}\0".encode())
        hasher.update(files[name])
    return str(hasher.hexdigest())


def hash_bytes(data: bytes) -> str:
    hasher = content_hasher()
    hasher.update(data)
    return str(hasher.hexdigest())
