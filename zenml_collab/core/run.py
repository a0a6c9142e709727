"""Results of a pipeline run, as immutable values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from zenml_collab.core.artifacts.base import ArtifactRef
from zenml_collab.core.metadata.records import RunStatus, StepExecution, StepStatus
from zenml_collab.errors import PipelineError

__all__ = ["CACHED", "EXECUTED", "FAILED", "Run", "RunStatus", "StepResult", "StepStatus"]

# The step statuses under their historical names (StrEnum members: equal to the strings).
EXECUTED = StepStatus.EXECUTED
CACHED = StepStatus.CACHED
FAILED = StepStatus.FAILED


@dataclass(frozen=True)
class StepResult:
    name: str
    status: str  # a StepStatus
    reason: str
    cache_key: str
    code_hash: str
    outputs: Mapping[str, ArtifactRef]
    duration_ms: float
    execution: StepExecution | None = None  # where it ran, when not in this process


@dataclass(frozen=True)
class Run:
    id: str
    pipeline_name: str
    status: str  # a RunStatus: running | completed | failed | abandoned
    steps: tuple[StepResult, ...]
    started_at: datetime | None = None
    git_sha: str | None = None
    git_dirty: bool | None = None
    user: str | None = None
    _reader: Callable[[ArtifactRef, bool], Any] | None = field(default=None, repr=False,
                                                               compare=False)

    def __getitem__(self, step_name: str) -> StepResult:
        for result in self.steps:
            if result.name == step_name:
                return result
        raise PipelineError(f"run {self.id[:8]} has no step {step_name!r}",
                            f"its steps are: {', '.join(s.name for s in self.steps)}")

    @property
    def statuses(self) -> dict[str, str]:
        return {s.name: s.status for s in self.steps}

    def load(self, step_name: str, output: str | None = None, *,
             allow_pickle: bool = False) -> Any:
        """Load a step's output value from the artifact store (a pickle only if allowed)."""
        result = self[step_name]
        # The default output ("output") first: recorded outputs come back in key order.
        name = output or ("output" if "output" in result.outputs
                          else next(iter(result.outputs), ""))
        if name not in result.outputs:
            raise PipelineError(f"step {step_name!r} has no output {name!r}",
                                f"its outputs are: {', '.join(result.outputs) or 'none'}")
        if self._reader is None:
            raise PipelineError("this run is not attached to a repository",
                                "get it with Repository().get_pipeline_runs(name)")
        return self._reader(result.outputs[name], allow_pickle)

    def summary(self) -> str:
        counts: dict[str, int] = {EXECUTED: 0, CACHED: 0, FAILED: 0}
        for s in self.steps:
            counts[s.status] = counts.get(s.status, 0) + 1
        return (f"run {self.id[:8]} of {self.pipeline_name!r}: {self.status}; "
                f"{counts[EXECUTED]} executed, {counts[CACHED]} cached"
                + (f", {counts[FAILED]} failed" if counts[FAILED] else ""))
