"""The Python environment a run used: interpreter, platform, installed distributions."""

from __future__ import annotations

import functools
import platform
import sys
from dataclasses import dataclass

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


@functools.lru_cache(maxsize=1)
def capture_environment() -> Environment:
    """Captured once per process: reading every distribution's metadata costs tens of ms."""
    from importlib.metadata import distributions

    packages: dict[str, str] = {}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower().replace("_", "-")] = dist.version
    return Environment(
        python=platform.python_version(),
        platform=f"{sys.platform}-{platform.machine()}",
        packages=tuple(sorted(packages.items())),
    )
