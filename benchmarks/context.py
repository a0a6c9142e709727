"""What every section gets: the size preset, the scratch directory and a way to report."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sizes:
    """Repeats and sizes of one preset (default, ``--quick`` or ``--tiny`` for the smoke test)."""

    repeat_process: int = 7
    repeat_inproc: int = 15
    repeat_cold: int = 5
    chain_length: int = 20
    big_count: int = 10
    big_mb: int = 100
    repeat_big_cold: int = 3
    repeat_big_cached: int = 7
    hash_mb: int = 1024
    lookup_levels: tuple[int, ...] = (10, 1_000, 100_000)
    lookup_samples: int = 300
    zenml_repeat_cold: int = 3
    zenml_repeat_cached: int = 5
    zenml_repeat_big: int = 2


PRESETS = {
    "default": Sizes(),
    "quick": Sizes(repeat_process=3, repeat_inproc=5, repeat_cold=3, repeat_big_cold=2,
                   repeat_big_cached=3, big_count=4, hash_mb=256, lookup_levels=(10, 1_000, 10_000),
                   lookup_samples=100, zenml_repeat_cold=2, zenml_repeat_cached=3,
                   zenml_repeat_big=1),
    # The smoke test: every code path, seconds in total. Figures mean nothing at this size.
    "tiny": Sizes(repeat_process=1, repeat_inproc=2, repeat_cold=1, chain_length=3, big_count=2,
                  big_mb=1, repeat_big_cold=1, repeat_big_cached=1, hash_mb=8,
                  lookup_levels=(10, 100), lookup_samples=10, zenml_repeat_cold=1,
                  zenml_repeat_cached=1, zenml_repeat_big=1),
}


@dataclass
class Context:
    sizes: Sizes
    preset: str
    workdir: Path
    repo_dir: Path
    vs_zenml: bool = False
    notes: list[str] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)

    def say(self, message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        """A finding worth keeping in the results (a workaround the benchmark needed, ...)."""
        if message not in self.notes:
            self.notes.append(message)
            self.say(f"note: {message}")
