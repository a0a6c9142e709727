"""The Python environment a run used: interpreter, platform, installed distributions."""

from __future__ import annotations

import functools
import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from zenml_collab.core.hashing import canonical_json, sha256_json


@dataclass(frozen=True)
class Environment:
    python: str
    platform: str
    packages: tuple[tuple[str, str], ...]

    @functools.cached_property
    def hash(self) -> str:
        return sha256_json([self.python, self.platform, self.packages])

    @property
    def packages_json(self) -> str:
        return canonical_json(dict(self.packages))


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_packages() -> dict[str, str]:
    """Name -> version of every installed distribution, as pip sees them.

    Names and versions come from the ``name-version.dist-info`` directory names (PEP 376/427
    guarantee both), which is ~100x faster than parsing every METADATA file; only the rare
    entry whose directory name has no version (old egg-info) falls back to its metadata.
    """
    from importlib.metadata import PathDistribution

    packages: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for item in names:
            stem, dot, suffix = item.rpartition(".")
            if not dot or suffix not in ("dist-info", "egg-info"):
                continue
            name, _, version = stem.partition("-")
            if not version:
                dist = PathDistribution(Path(entry or ".") / item)
                name, version = dist.metadata["Name"] or name, dist.version
            # The first entry on sys.path wins, as it does for imports.
            packages.setdefault(_normalise(name), version.partition("-")[0])
    return packages


@functools.lru_cache(maxsize=1)
def capture_environment() -> Environment:
    """Captured once per process."""
    packages = installed_packages()
    return Environment(
        python=platform.python_version(),
        platform=f"{sys.platform}-{platform.machine()}",
        packages=tuple(sorted(packages.items())),
    )
