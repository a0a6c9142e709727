"""What the metadata store hands out: frozen records, never ORM rows or dicts."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from zenml_collab.errors import UntrustedArtifactError


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class RunStatus(enum.StrEnum):
    """A run's status. ``abandoned``: its process is gone (killed, crashed, lost its lease)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABANDONED = "abandoned"


class StepStatus(enum.StrEnum):
    """How a step of a run was satisfied."""

    EXECUTED = "executed"
    CACHED = "cached"
    FAILED = "failed"


@dataclass(frozen=True)
class PipelineRecord:
    name: str
    kind: str
    identity: str
    config_json: str
    created_at: datetime
    created_by: str | None
    git_sha: str | None


@dataclass(frozen=True)
class RunRecord:
    id: str
    pipeline_name: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    git_sha: str | None
    git_dirty: bool | None
    user: str | None
    hostname: str | None
    environment_hash: str | None
    error: str | None
    pid: int | None = None
    heartbeat_at: datetime | None = None


@dataclass(frozen=True)
class StepExecution:
    """Where an executed step ran, recorded as data beside its plain reason.

    ``backend``: ``docker`` or ``vertex``; ``image``: the digest of the image; ``job``: the
    Vertex AI custom job's resource name. In-process and cached steps record none.
    """

    backend: str
    image: str | None = None
    job: str | None = None

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in (("backend", self.backend), ("image", self.image),
                                  ("job", self.job)) if v}

    @classmethod
    def from_json(cls, text: str | None) -> StepExecution | None:
        """Parse a stored value; a teammate's malformed one reads as unknown, never an error."""
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        backend, image, job = (data.get(k) for k in ("backend", "image", "job"))
        if not isinstance(backend, str) or not all(
                v is None or (isinstance(v, str) and len(v) <= 500) for v in (backend, image, job)):
            return None
        return cls(backend, image, job)


@dataclass(frozen=True)
class StepRunRecord:
    run_id: str
    pipeline_name: str
    step_name: str
    step_path: str
    position: int
    cache_key: str
    code_hash: str
    params: dict[str, Any]
    inputs: dict[str, str]
    outputs: dict[str, Any] | None
    status: str
    reason: str
    started_at: datetime
    duration_ms: float
    execution: StepExecution | None = None

    def execution_json(self) -> str | None:
        return None if self.execution is None else json.dumps(self.execution.to_json(),
                                                               sort_keys=True)


def _run_record(row: Any, status: str | None = None) -> RunRecord:
    return RunRecord(row.id, row.pipeline_name, status or row.status, row.started_at,
                     row.finished_at, row.git_sha,
                     None if row.git_dirty is None else bool(row.git_dirty),
                     row.user, row.hostname, row.environment_hash, row.error, row.pid,
                     row.heartbeat_at)


def _json_object(text: str | None) -> dict[str, Any] | None:
    """A JSON object from a row of the shared database, or None when it is not one.

    A teammate's (or a broken client's) malformed value must not crash `runs show` or a cache
    miss explanation: it reads as unreadable, and an artifact reference inside it is still
    validated where it is used (``ArtifactRef.from_json``).
    """
    if not text:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


_UNREADABLE = {"<unreadable>": "this record's JSON is malformed"}


def _step_record(row: Any) -> StepRunRecord:
    params = _json_object(row.params_json)
    inputs = _json_object(row.inputs_json)
    return StepRunRecord(
        row.run_id, row.pipeline_name, row.step_name, row.step_path, row.position,
        row.cache_key, row.code_hash, dict(_UNREADABLE) if params is None else params,
        dict(_UNREADABLE) if inputs is None else inputs,
        _json_object(row.outputs_json), row.status, row.reason,
        row.started_at, row.duration_ms,
        StepExecution.from_json(getattr(row, "execution_json", None)),
    )


def outputs_object(text: str, cache_key: str) -> dict[str, Any]:
    """A cache entry's outputs: a row of the shared database, so checked before any use."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UntrustedArtifactError(
            f"refused the cache entry of key {cache_key[:12]} in the metadata store: its "
            "outputs are not a JSON object",
            "the entry was written by a broken or hostile client; nothing was read or written. "
            "Ask the member who recorded it which zenml-collab they use; an admin can delete "
            f"the row (cache_entries.cache_key = '{cache_key}') to let the step run again")
    return value
