"""Execute one step from a :class:`StepTask` and record it, as the in-process runner does.

This is the worker's half of a remote step: same materializers, same integrity checks (inputs
are verified against their hashes when loaded), same metadata rows (a step run, its new
artifacts, its cache entry). The launcher never records an executed remote step itself.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from zenml_collab.core import cache
from zenml_collab.core.artifacts.base import ArtifactRef, ArtifactStore, load_artifact, save_artifact
from zenml_collab.core.backends.task import JOB_PARENT_ENV, StepTask, WorkerError
from zenml_collab.core.metadata.records import StepExecution, StepRunRecord, utcnow
from zenml_collab.core.metadata.store import MetadataStore
from zenml_collab.core.pipeline import import_step
from zenml_collab.core.run import EXECUTED, FAILED
from zenml_collab.core.step import StepImpl, resolve_impl
from zenml_collab.errors import CollabError, PipelineError, StepFailedError

log = logging.getLogger("zenml_collab.worker")


def execution_of(task: StepTask) -> StepExecution:
    """Where the step runs (backend, image digest, job name), recorded as data with it."""
    job_id = os.environ.get("CLOUD_ML_JOB_ID")
    parent = os.environ.get(JOB_PARENT_ENV)
    job = (f"{parent}/customJobs/{job_id}" if parent else job_id) if job_id else None
    return StepExecution(backend=task.backend, image=task.image, job=job)


def step_impl(task: StepTask) -> StepImpl:
    obj = import_step(task.step_path)
    impl, _ = resolve_impl(obj)
    if impl.code_hash != task.code_hash:
        raise WorkerError(
            f"step {task.step_name!r}: the code in the source archive ({impl.code_hash[:12]}) is "
            f"not the code the launcher hashed ({task.code_hash[:12]})",
            "the source archive must match the launcher's tree; run the pipeline again")
    return impl


def split_outputs(step_name: str, names: tuple[str, ...], returned: Any) -> dict[str, Any]:
    if len(names) == 1:
        return {names[0]: returned}
    if isinstance(returned, dict) and set(returned) == set(names):
        return dict(returned)
    if isinstance(returned, tuple) and len(returned) == len(names):
        return dict(zip(names, returned, strict=True))
    raise PipelineError(
        f"step {step_name!r} declares outputs {list(names)} but returned {type(returned).__name__}",
        "return a tuple in that order or a dict with exactly those keys")


def execute_task(task: StepTask, metadata: MetadataStore,
                 artifacts: ArtifactStore) -> dict[str, ArtifactRef]:
    """Run ``task``'s step, store its outputs and record it; return the output references."""
    started_at = utcnow()
    t0 = time.perf_counter()
    execution = execution_of(task)

    def record(status: str, reason: str, outs: dict[str, ArtifactRef] | None, **kw: Any) -> None:
        metadata.record_step(StepRunRecord(
            run_id=task.run_id, pipeline_name=task.pipeline_name, step_name=task.step_name,
            step_path=task.step_path, position=task.position, cache_key=task.cache_key,
            code_hash=task.code_hash, params=task.params, inputs=task.input_hashes,
            outputs={k: v.to_json() for k, v in outs.items()} if outs else None,
            status=status, reason=reason, started_at=started_at,
            duration_ms=(time.perf_counter() - t0) * 1000, execution=execution), **kw)

    try:
        impl = step_impl(task)
        values = {arg: load_artifact(artifacts, ArtifactRef.from_json(ref),
                                     allow_pickle=impl.allow_pickle)
                  for arg, ref in task.inputs.items()}
        returned = impl.call(task.params, values)
        del values
        named = split_outputs(task.step_name, task.output_names, returned)
        del returned
        refs = {name: save_artifact(artifacts, named.pop(name), allow_pickle=impl.allow_pickle)
                for name in task.output_names}
    except CollabError as exc:
        record(FAILED, f"failed: {exc.message}", None)
        raise
    except Exception as exc:
        record(FAILED, f"failed: {type(exc).__name__}: {exc}", None)
        raise StepFailedError(
            f"step {task.step_name!r} of pipeline {task.pipeline_name!r} failed: "
            f"{type(exc).__name__}: {exc}",
            "fix the step and run the pipeline again; the steps that succeeded will be cached",
        ) from exc
    record(EXECUTED, task.reason, refs,
           new_artifacts=[r.to_json() for r in refs.values()], cache=True,
           replace_cache=task.reason in (cache.ARTIFACT_MISSING, cache.ARTIFACT_CORRUPT))
    return refs
