"""What a run reads and writes, as plain values: shared by the full store (SQLAlchemy, any
dialect) and the embedded store's driver-only path (:mod:`.lite_store`).

Nothing here imports SQLAlchemy: a cached ``collab run`` on the embedded store must not pay
for it (DESIGN §12).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from zenml_collab.core.metadata import limits
from zenml_collab.core.metadata.records import StepRunRecord


@dataclass(frozen=True)
class PriorStep:
    """A step of the previous completed run, and what the cache holds for its key now."""

    step_name: str
    step_path: str
    cache_key: str
    cached_outputs: dict[str, Any] | None  # None: the key has no cache entry (any more)


@dataclass(frozen=True)
class RunStart:
    """What a run needs to know before it starts, read in one statement."""

    pipeline_id: int | None  # None: not registered yet
    identity: str | None
    environment_known: bool
    prior: dict[str, PriorStep]


def prior_view(rows: Iterable[Any]) -> dict[str, PriorStep]:
    """The previous run's steps from the rows of the run-start statement."""
    view: dict[str, PriorStep] = {}
    for row in rows:
        try:
            outputs = json.loads(row.outputs_json) if row.outputs_json else None
        except ValueError:
            outputs = None  # unreadable: the step takes the per-step path, which reports it
        view[row.step_name] = PriorStep(row.step_name, row.step_path, row.cache_key,
                                        outputs if isinstance(outputs, dict) else None)
    return view


def run_start(rows: Sequence[Any], environment_hash: str | None) -> RunStart:
    """The run-start statement's rows (a header row, outer-joined with the prior steps)."""
    first = rows[0]
    return RunStart(
        pipeline_id=None if first.p_id is None else int(first.p_id),
        identity=first.p_identity,
        environment_known=environment_hash is not None and first.env_hash is not None,
        prior=prior_view([row for row in rows if row.step_name is not None]))


def step_run_row(record: StepRunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id, "pipeline_name": record.pipeline_name,
        "step_name": record.step_name, "step_path": record.step_path,
        "position": record.position, "cache_key": record.cache_key,
        "code_hash": record.code_hash, "params_json": json.dumps(record.params, sort_keys=True),
        "inputs_json": json.dumps(record.inputs, sort_keys=True),
        "outputs_json": json.dumps(record.outputs, sort_keys=True) if record.outputs else None,
        "status": record.status, "reason": record.reason[:500],
        "started_at": record.started_at, "duration_ms": record.duration_ms,
        "execution_json": record.execution_json()}


@dataclass(frozen=True)
class Pending:
    """A step run waiting for the run's next batched write, with what an execution adds."""

    record: StepRunRecord
    new_artifacts: tuple[dict[str, Any], ...] = ()
    cache: bool = False  # record its outputs as the cache entry of its key
    replace_cache: bool = False  # the key's entry points at artifacts that are gone


@dataclass(frozen=True)
class PendingRows:
    """The rows of a batched write, in the order they are written."""

    artifacts: list[dict[str, Any]]
    stale_keys: list[str]  # cache entries to remove (their artifacts are gone)
    cache_entries: list[dict[str, Any]]
    step_runs: list[dict[str, Any]]


def pending_rows(pending: list[Pending], now: datetime) -> PendingRows:
    artifacts = {a["hash"]: {"hash": a["hash"], "materializer": a["materializer"],
                             "size": a["size"], "files_json": json.dumps(a["files"]),
                             "created_at": now}
                 for p in pending for a in p.new_artifacts}
    entries = {p.record.cache_key: {
        "cache_key": p.record.cache_key, "step_path": p.record.step_path,
        "outputs_json": json.dumps(p.record.outputs, sort_keys=True),
        "run_id": p.record.run_id, "created_at": now}
        for p in pending if p.cache and p.record.outputs}
    return PendingRows(list(artifacts.values()),
                       sorted({p.record.cache_key for p in pending if p.replace_cache}),
                       list(entries.values()), [step_run_row(p.record) for p in pending])


def check_record(record: StepRunRecord) -> None:
    """The size limits :meth:`MetadataStore.record_step` checks, before anything is queued."""
    limits.check_name("step", record.step_name)
    limits.check_name("step import path", record.step_path, limits.STEP_PATH_MAX)
    limits.check_json(f"the parameters of step {record.step_name!r}",
                      json.dumps(record.params, sort_keys=True))
    limits.check_json(f"the inputs of step {record.step_name!r}",
                      json.dumps(record.inputs, sort_keys=True))
    if record.outputs:
        limits.check_json(f"the outputs of step {record.step_name!r}",
                          json.dumps(record.outputs, sort_keys=True))


def check_limits(pipeline_name: str,
                 steps: Iterable[tuple[str, str, Mapping[str, Any]]]) -> None:
    """Raise a clear error for a name or parameters the store cannot keep.

    ``steps`` are (name, import path, parameters). Called before anything is written.
    """
    limits.check_name("pipeline", pipeline_name)
    for step_name, step_path, params in steps:
        limits.check_name("step", step_name)
        limits.check_name("step import path", step_path, limits.STEP_PATH_MAX)
        limits.check_json(f"the parameters of step {step_name!r}",
                          json.dumps(params, sort_keys=True, default=str))


@dataclass(frozen=True)
class StepLookup:
    """What the cache holds for a step's key, and its latest earlier run (to explain a miss)."""

    cached_outputs: dict[str, Any] | None
    previous: StepRunRecord | None


class RunStore(Protocol):
    """What running a pipeline needs of the metadata store: the full store answers it for
    every kind, the embedded store's driver-only path (:class:`~.lite_store.LiteStore`) for
    a current SQLite store."""

    def run_session(self) -> AbstractContextManager[None]: ...

    def check_limits(self, pipeline_name: str,
                     steps: Iterable[tuple[str, str, Mapping[str, Any]]]) -> None: ...

    def run_start_view(self, pipeline_name: str, environment_hash: str | None) -> RunStart: ...

    def register_pipeline(self, *, name: str, kind: str, identity: str, config_json: str,
                          created_by: str | None, git_sha: str | None) -> tuple[int, bool]: ...

    def ensure_environment(self, env_hash: str, python: str, platform: str,
                           packages_json: str) -> None: ...

    def start_run(self, *, run_id: str, pipeline_id: int, pipeline_name: str,
                  git_sha: str | None, git_dirty: bool | None, user: str, hostname: str,
                  environment_hash: str | None) -> None: ...

    def finish_run(self, run_id: str, status: str, error: str | None = None) -> None: ...

    def defer_finish(self, run_id: str, status: str, error: str | None = None) -> bool: ...

    def lookup_step(self, *, cache_key: str, pipeline_name: str, step_name: str,
                    step_path: str) -> StepLookup: ...

    def record_steps(self, pending: list[Pending]) -> None: ...

    def record_step(self, record: StepRunRecord, *,
                    new_artifacts: list[dict[str, Any]] | None = None, cache: bool = False,
                    replace_cache: bool = False) -> None: ...

    def previous_step_run(self, pipeline_name: str, step_name: str,
                          step_path: str) -> StepRunRecord | None: ...


__all__ = ["Pending", "PendingRows", "PriorStep", "RunStart", "RunStore", "StepLookup",
           "check_limits", "check_record", "pending_rows", "prior_view", "run_start",
           "step_run_row"]
