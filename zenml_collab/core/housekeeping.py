"""Cleaning up after processes that died: stale staging and download directories.

A save stages its files in ``<store>/.tmp/stage-*`` and a download lands in
``<cache>/.tmp/download-*`` before an atomic rename; a process killed in between leaves the
directory behind (hundreds of MB for a model). Only directories untouched for longer than a
safe age are removed, so a slow save in another process is never pulled from under it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from zenml_collab.errors import ConfigError

DEFAULT_MIN_AGE_S = 3600.0
PREFIXES = ("stage-", "download-")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class TmpCleanup:
    removed: tuple[Path, ...]
    bytes_freed: int
    kept: int  # staging directories still young enough to belong to a live process


def parse_duration(text: str) -> float:
    """Seconds in ``90s``, ``30m``, ``1h``, ``2d`` (a bare number is seconds).

    >>> parse_duration("1h")
    3600.0
    """
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ConfigError(f"cannot read the duration {text!r}", "write it like 90s, 30m, 1h or 2d")
    return float(match[1]) * _UNIT[match[2]]


def _tree(path: Path) -> tuple[int, float]:
    """(bytes, newest modification time) of everything under ``path`` (symlinks not followed)."""
    size, newest = 0, path.lstat().st_mtime
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            newest = max(newest, st.st_mtime)
            if name in filenames:
                size += st.st_size
    return size, newest


def remove_stale_tmp(dirs: Iterable[Path], *, min_age_s: float = DEFAULT_MIN_AGE_S,
                     now: float | None = None, dry_run: bool = False) -> TmpCleanup:
    """Remove ``stage-*``/``download-*`` directories in ``dirs`` untouched for ``min_age_s``."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    freed = kept = 0
    for tmp in dict.fromkeys(Path(d) for d in dirs):
        if not tmp.is_dir():
            continue
        for entry in sorted(tmp.iterdir()):
            if not entry.name.startswith(PREFIXES) or entry.is_symlink() or not entry.is_dir():
                continue
            size, newest = _tree(entry)
            if now - newest < min_age_s:
                kept += 1
                continue
            if not dry_run:
                shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
            freed += size
    return TmpCleanup(tuple(removed), freed, kept)
