"""What travels to a container: one step to execute, as a small JSON value.

The launcher decides the cache locally; only a miss becomes a :class:`StepTask`. The task
names the step by import path and code hash, its parameters, its inputs as artifact
references, and the source archive the worker imports the step from. It carries no data
and no secret.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from zenml_collab.errors import CollabError

TASK_FORMAT = 1
MAX_TASK_BYTES = 64 * 1024  # a command-line argument; inputs travel by reference
#: Set by the vertex backend in the job's environment (``projects/P/locations/R``); with the
#: ``CLOUD_ML_JOB_ID`` Vertex AI sets, it names the job a step ran in (recorded with it).
JOB_PARENT_ENV = "COLLAB_VERTEX_JOB_PARENT"


class WorkerError(CollabError):
    """The worker could not run its task (bad task, code mismatch, missing source)."""


@dataclass(frozen=True)
class StepTask:
    run_id: str
    pipeline_name: str
    step_name: str
    step_path: str
    position: int
    cache_key: str
    code_hash: str
    params: dict[str, Any]
    inputs: dict[str, dict[str, Any]]  # argument -> ArtifactRef JSON
    input_hashes: dict[str, str]  # as recorded (includes the <source> pseudo-input)
    output_names: tuple[str, ...]
    reason: str  # why the launcher found no cache hit (recorded by the worker)
    backend: str
    source: dict[str, Any] = field(default_factory=dict)  # SourceArchive JSON ({} = none)
    image: str | None = None  # digest of the image the step runs in, recorded
    format: int = TASK_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    def to_arg(self) -> str:
        """URL-safe base64 of the JSON: survives any shell, docker and Vertex quoting."""
        data = base64.urlsafe_b64encode(self.to_json().encode()).decode()
        if len(data) > MAX_TASK_BYTES:
            raise WorkerError(f"step {self.step_name!r}: its task is {len(data)} bytes",
                              "parameters should be small JSON values; pass data as inputs")
        return data

    @classmethod
    def from_arg(cls, arg: str) -> StepTask:
        if len(arg) > MAX_TASK_BYTES:
            raise WorkerError("the task argument is too large", "it must come from the launcher")
        try:
            data = json.loads(base64.urlsafe_b64decode(arg.encode()))
            if data.get("format") != TASK_FORMAT:
                raise ValueError(f"task format {data.get('format')!r}, expected {TASK_FORMAT}")
            data["output_names"] = tuple(data["output_names"])
            return cls(**data)
        except (ValueError, TypeError, KeyError) as exc:
            raise WorkerError(f"invalid task: {exc}",
                              "the launcher and the image must run the same zenml-collab "
                              "version: rebuild the image with `collab image build`") from None
