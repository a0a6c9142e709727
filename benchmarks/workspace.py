"""Throw-away zenml-collab repositories for the benchmarks, and the pipelines they run.

Steps live in a module written into the repo (``bench_steps.py``) so that a whole
``collab run`` process imports them by path, exactly as a member's own steps are imported.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STEPS_MODULE = "bench_steps"
STEPS_SOURCE = '''\
"""Steps of the zenml-collab benchmarks (written by benchmarks/workspace.py)."""

from zenml_collab import step


@step
def inc(x: int = 0, k: int = 0, salt: int = 0) -> int:
    return x + 1


@step
def big(seed: int = 0, mb: int = 100, salt: int = 0):
    import numpy as np

    # Distinct content per (seed, salt): artifacts are content-addressed, equal ones dedupe.
    return np.full(mb * 131072, seed + 1000.0 * salt, dtype=np.float64)
'''

MB = 1024 * 1024


def collab_argv() -> list[str]:
    """The ``collab`` console script of this interpreter (not a version-manager shim)."""
    script = Path(sys.executable).parent / "collab"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "zenml_collab.cli.main"]


def bench_root(base: Path | None = None) -> Path:
    return Path(tempfile.mkdtemp(prefix="collab-bench-", dir=base))


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@dataclass
class Workspace:
    """A git repo with `collab init` done and the bench steps importable."""

    root: Path

    @classmethod
    def create(cls, parent: Path, name: str, *, local_yaml: str | None = None) -> Workspace:
        from zenml_collab.actions.init import init_repo

        root = parent / name
        root.mkdir(parents=True)
        _git(root, "init", "-q", "--initial-branch=main")
        _git(root, "config", "user.name", "bench")
        _git(root, "config", "user.email", "bench@example.com")
        (root / f"{STEPS_MODULE}.py").write_text(STEPS_SOURCE, encoding="utf-8")
        if local_yaml is not None:
            local = root / ".collab"
            local.mkdir(mode=0o700)
            path = local / "local.yaml"
            path.touch(mode=0o600)
            path.write_text(local_yaml, encoding="utf-8")
        init_repo(root)
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", "bench steps")
        return cls(root)

    def steps(self) -> Any:
        """The bench steps module of this repo (imported once per process)."""
        if str(self.root) not in sys.path:
            sys.path.insert(0, str(self.root))
        module = sys.modules.get(STEPS_MODULE)
        if module is None:
            module = importlib.import_module(STEPS_MODULE)
        return module

    def repository(self) -> Any:
        from zenml_collab.core.repository import Repository

        return Repository(self.root)

    def process_env(self) -> dict[str, str]:
        # `collab run` imports steps before it puts the repo root on sys.path (see the
        # report), so a whole-process run needs the root on PYTHONPATH, as tests do.
        path = os.pathsep.join(p for p in (str(self.root), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "PYTHONPATH": path}

    def commit_configs(self) -> None:
        _git(self.root, "add", "-A")
        _git(self.root, "commit", "-q", "--allow-empty", "-m", "pipeline configs")


def chain_pipeline(ws: Workspace, name: str, length: int, *, salt: int = 0) -> Any:
    """``length`` trivial steps, each taking the previous one's output."""
    from zenml_collab.core.pipeline import Pipeline

    inc = ws.steps().inc
    pipeline = Pipeline(name)
    prev: str | None = None
    for i in range(length):
        prev = pipeline.add(inc, name=f"s{i:02d}", params={"k": i, "salt": salt},
                            inputs={"x": prev} if prev else None)
    return pipeline


def big_pipeline(ws: Workspace, name: str, count: int, mb: int, *, salt: int = 0) -> Any:
    """``count`` independent steps each returning an array of ``mb`` MiB."""
    from zenml_collab.core.pipeline import Pipeline

    big = ws.steps().big
    pipeline = Pipeline(name)
    for i in range(count):
        pipeline.add(big, name=f"b{i:02d}", params={"seed": i, "mb": mb, "salt": salt})
    return pipeline


def statuses(run: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in run.steps:
        counts[result.status] = counts.get(result.status, 0) + 1
    return counts


def expect_all(run: Any, status: str) -> None:
    """Fail loudly if a benchmark did not measure what it claims to (e.g. a cache miss)."""
    counts = statuses(run)
    if set(counts) != {status}:
        raise RuntimeError(f"expected every step {status}, got {counts} in {run.summary()}")
