"""Run a pipeline in-process: look up each step in the cache, execute the misses, record all.

The metadata store sees a constant number of statements per run for the cached steps (their
hits are resolved up front, :mod:`~zenml_collab.core.cache_plan`) and one per executed step
(its lookup, which also finds the run that explains the miss); every step's record joins a
batched write of at most four statements (:class:`_Recorder`). Inputs are loaded from the
artifact store only when a step actually executes, and outputs are never kept in memory after
they are stored, so peak memory stays near the largest single artifact.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zenml_collab.core import cache, cache_plan
from zenml_collab.core.artifacts.base import (
    ArtifactRef,
    ArtifactStore,
    Presence,
    load_artifact,
    save_artifact,
)
from zenml_collab.core.environment import Environment
from zenml_collab.core.git import GitInfo
from zenml_collab.core.metadata import runpath
from zenml_collab.core.metadata.records import StepRunRecord, utcnow
from zenml_collab.core.pipeline import Pipeline, StepNode
from zenml_collab.core.run import CACHED, EXECUTED, FAILED, Run, RunStatus, StepResult
from zenml_collab.core.uploads import DeferredUploads
from zenml_collab.errors import CollabError, PipelineError, SourceMissingError, StepFailedError

log = logging.getLogger("zenml_collab.runner")
SOURCE_REUSED = "the source file is not in this clone; reused the recorded snapshot"
SOURCE_INPUT = cache_plan.SOURCE_INPUT  # pseudo-input: the content a step reads from outside


@dataclass(frozen=True)
class RunContext:
    git: GitInfo
    hostname: str
    environment: Environment | None


def prepare_run(metadata: runpath.RunStore, *, pipeline_name: str, identity: str,
                environment: Environment | None,
                register: Callable[[], tuple[int, bool]]) -> tuple[int, runpath.RunStart]:
    """The pipeline's id and what its run needs before it starts: one statement when the
    pipeline is registered with ``identity``; ``register`` registers it (or raises the
    identity error) otherwise."""
    start = metadata.run_start_view(pipeline_name, environment.hash if environment else None)
    if start.pipeline_id is not None and start.identity == identity:
        return start.pipeline_id, start
    pipeline_id, _ = register()
    return pipeline_id, dataclasses.replace(start, pipeline_id=pipeline_id, identity=identity)


def run_pipeline(pipeline: Pipeline, *, pipeline_id: int, metadata: runpath.RunStore,
                 artifacts: ArtifactStore, context: RunContext,
                 on_step: Callable[[StepResult], None] | None = None,
                 resume_hint: str = "", start: runpath.RunStart | None = None) -> Run:
    """Execute ``pipeline`` (already registered as ``pipeline_id``) and return its run.

    ``start`` is :func:`prepare_run`'s answer when the caller already has it.
    """
    nodes = pipeline.steps
    run_id = uuid.uuid4().hex
    env = context.environment
    if start is None:
        start = metadata.run_start_view(pipeline.name, env.hash if env else None)
    # Hits are resolved up front in a constant number of round trips and written together
    # with the other records (DESIGN §12). The artifact checks are in flight while the run's
    # start is written.
    candidates = cache_plan.candidates(nodes, start.prior, _fingerprint)
    checks = cache_plan.PresenceChecks(artifacts, candidates)
    if env is not None and not start.environment_known:
        metadata.ensure_environment(env.hash, env.python, env.platform, env.packages_json)
    metadata.start_run(run_id=run_id, pipeline_id=pipeline_id, pipeline_name=pipeline.name,
                       git_sha=context.git.sha, git_dirty=context.git.dirty,
                       user=context.git.user, hostname=context.hostname,
                       environment_hash=env.hash if env else None)
    outputs: dict[str, dict[str, ArtifactRef]] = {}
    results: list[StepResult] = []
    # Remote stores: outputs are committed in the background, waited for before any record
    # naming them is written (DESIGN §12).
    uploads = DeferredUploads(artifacts) if cache_plan.is_remote(artifacts) else None
    recorder = _Recorder(metadata, uploads)
    try:
        hits = cache_plan.confirm(nodes, candidates, checks.result())
        for position, node in enumerate(nodes):
            hit = hits.get(node.name)
            if hit is not None:
                result = _cached(node, position, run_id, pipeline.name, hit, recorder)
            else:
                if recorder.due():
                    recorder.flush()
                result = _run_step(node, position, run_id, pipeline.name, outputs, metadata,
                                   artifacts, resume_hint, recorder)
            outputs[node.name] = dict(result.outputs)
            results.append(result)
            if on_step is not None:
                on_step(result)
        recorder.flush()
    except BaseException as exc:
        if recorder.pending:
            try:
                recorder.flush()  # the steps before the failure stay on record
            except Exception as unrecorded:  # an upload or the store failing too
                log.warning("could not record the finished steps of run %s: %s", run_id[:8],
                            getattr(unrecorded, "message", unrecorded))
        message = str(exc) if isinstance(exc, CollabError) else f"{type(exc).__name__}: {exc}"
        try:
            metadata.finish_run(run_id, FAILED, message[:2000])
        except CollabError as unrecorded:
            # The store is gone too: the original error is the one the member must see, and
            # the ending waits on disk for the next command to record (metadata/outbox.py).
            kept = metadata.defer_finish(run_id, FAILED, message[:2000])
            log.warning("could not mark run %s failed: %s%s", run_id[:8], unrecorded.message,
                        "; it will be recorded by your next command" if kept else "")
        raise
    finally:
        if uploads is not None:
            uploads.close()
    metadata.finish_run(run_id, RunStatus.COMPLETED)
    return Run(id=run_id, pipeline_name=pipeline.name, status=RunStatus.COMPLETED,
               steps=tuple(results),
               started_at=None, git_sha=context.git.sha, git_dirty=context.git.dirty,
               user=context.git.user, _reader=functools.partial(_read, artifacts))


def _read(artifacts: ArtifactStore, ref: ArtifactRef, allow_pickle: bool = False) -> Any:
    return load_artifact(artifacts, ref, allow_pickle=allow_pickle)


def _fingerprint(node: StepNode) -> str | None:
    impl = node.impl
    return None if impl.fingerprint is None else impl.fingerprint(node.params)


#: Finished steps' records wait at most this long (measured from the start of the oldest
#: step among them) for the run's next batched write; a failure or Ctrl-C writes them at once.
FLUSH_AFTER_S = 5.0


class _Recorder:
    """The run's step records, written in batches of at most four statements (DESIGN §12).

    A record joins the batch when its step finishes. The batch is written before the next
    step that executes once its oldest step started more than :data:`FLUSH_AFTER_S` ago (so
    a slow step's record is written before the next step starts), and at the end of the run.
    A step whose key was executed earlier in this run is a hit found here, without I/O.
    """

    def __init__(self, metadata: runpath.RunStore, uploads: DeferredUploads | None = None) -> None:
        self.metadata = metadata
        self.uploads = uploads
        self.pending: list[runpath.Pending] = []
        self.fresh: dict[str, dict[str, ArtifactRef]] = {}  # executed here, by cache key
        self._since: float | None = None

    def add(self, item: runpath.Pending, started: float,
            refs: dict[str, ArtifactRef] | None = None) -> None:
        self.pending.append(item)
        self._since = started if self._since is None else min(self._since, started)
        if item.cache and refs:
            self.fresh[item.record.cache_key] = dict(refs)

    def due(self) -> bool:
        return self._since is not None and time.perf_counter() - self._since > FLUSH_AFTER_S

    def flush(self) -> None:
        if self.pending:
            if self.uploads is not None:
                self.uploads.wait()  # no record names an artifact that is not stored yet
            self.metadata.record_steps(self.pending)
            self.pending.clear()
        self._since = None


def _cached(node: StepNode, position: int, run_id: str, pipeline_name: str,
            hit: cache_plan.Hit, recorder: _Recorder) -> StepResult:
    """A hit confirmed by the cache plan: no I/O, its record joins the next batched insert."""
    impl = node.impl
    t0 = time.perf_counter()
    started_at = utcnow()
    duration = (time.perf_counter() - t0) * 1000
    recorder.add(runpath.Pending(StepRunRecord(
        run_id=run_id, pipeline_name=pipeline_name, step_name=node.name,
        step_path=impl.import_path, position=position, cache_key=hit.key.key,
        code_hash=impl.code_hash, params=node.params, inputs=hit.key.input_hashes,
        outputs={k: v.to_json() for k, v in hit.outputs.items()}, status=CACHED,
        reason=cache.CACHE_HIT, started_at=started_at, duration_ms=duration)), t0)
    return StepResult(node.name, CACHED, cache.CACHE_HIT, hit.key.key, impl.code_hash,
                      dict(hit.outputs), duration)


@dataclass(frozen=True)
class Decision:
    """A step's cache decision, made before anything executes (here or in a container)."""

    key: str
    input_hashes: dict[str, str]
    input_refs: dict[str, ArtifactRef]
    hit: dict[str, ArtifactRef] | None  # the outputs to reuse when the step is cached
    reason: str  # the cached reason, or why the step must execute


def decide_step(node: StepNode, pipeline_name: str,
                upstream: dict[str, dict[str, ArtifactRef]], metadata: runpath.RunStore,
                artifacts: ArtifactStore,
                fresh: dict[str, dict[str, ArtifactRef]] | None = None) -> Decision:
    """The cache key of ``node`` and whether it is cached (DESIGN §3): one round trip.

    ``fresh``: outputs executed earlier in this run, by cache key (a hit without a lookup).
    The backend launcher decides its steps with this too: one copy of the rule.
    """
    impl = node.impl
    params = node.params
    input_refs = {i.arg: upstream[i.step][i.output] for i in node.inputs}
    input_hashes = {arg: ref.hash for arg, ref in input_refs.items()}
    reused: SourceMissingError | None = None
    if impl.fingerprint is not None:
        try:
            input_hashes[SOURCE_INPUT] = impl.fingerprint(params)
        except SourceMissingError as missing:
            # A teammate's file that is not in this clone: the snapshot their run recorded
            # (same step, same parameters) stands in for it; without one, say what is missing.
            previous = metadata.previous_step_run(pipeline_name, node.name, impl.import_path)
            recorded = previous.inputs.get(SOURCE_INPUT) if previous is not None and \
                previous.params == dict(params) else None
            if not recorded:
                raise
            input_hashes[SOURCE_INPUT], reused = recorded, missing
        except CollabError:
            raise
        except Exception as exc:
            raise StepFailedError(
                f"step {node.name!r} of pipeline {pipeline_name!r} could not fingerprint its "
                f"source: {type(exc).__name__}: {exc}",
                "check the step's parameters (e.g. the datasource path)") from exc
    key = cache.cache_key(step_path=impl.import_path, code_hash=impl.code_hash, params=params,
                          input_hashes=input_hashes, output_names=impl.output_names)
    if fresh is not None and reused is None and key in fresh:
        return Decision(key, input_hashes, input_refs, fresh[key], cache.CACHE_HIT)
    # One round trip: the key's cache entry and, for a miss, the step's previous run.
    lookup = metadata.lookup_step(cache_key=key, pipeline_name=pipeline_name,
                                  step_name=node.name, step_path=impl.import_path)
    hit = lookup.cached_outputs
    if hit is not None:
        origin = f"the cache entry of step {node.name!r} (key {key[:12]})"
        refs = {name: ArtifactRef.from_json(data, origin=origin) for name, data in hit.items()}
        presence = [artifacts.presence(ref) for ref in refs.values()]
        if all(p is Presence.PRESENT for p in presence):
            return Decision(key, input_hashes, input_refs, refs,
                            cache.CACHE_HIT if reused is None else
                            f"{cache.CACHE_HIT}: {SOURCE_REUSED} ({reused.message})")
        reason = (cache.ARTIFACT_CORRUPT if Presence.CORRUPT in presence
                  else cache.ARTIFACT_MISSING)
    if reused is not None:
        raise reused  # the recorded snapshot is gone too: nothing to run the step on
    if hit is None:
        reason = cache.explain_miss(lookup.previous, step_path=impl.import_path,
                                    code_hash=impl.code_hash, params=params,
                                    input_hashes=input_hashes)
    return Decision(key, input_hashes, input_refs, None, reason)


def _run_step(node: StepNode, position: int, run_id: str, pipeline_name: str,
              upstream: dict[str, dict[str, ArtifactRef]], metadata: runpath.RunStore,
              artifacts: ArtifactStore, resume_hint: str,
              recorder: _Recorder | None = None) -> StepResult:
    """Look ``node`` up, execute it on a miss, and record it (through ``recorder`` when
    given: its record joins the run's next batched write; at once otherwise)."""
    impl = node.impl
    params = node.params
    started_at = utcnow()
    t0 = time.perf_counter()
    decision = decide_step(node, pipeline_name, upstream, metadata, artifacts,
                           recorder.fresh if recorder is not None else None)
    key, input_hashes, input_refs = decision.key, decision.input_hashes, decision.input_refs

    def record(status: str, reason: str, outs: dict[str, ArtifactRef] | None, **kw: Any) -> StepResult:
        duration = (time.perf_counter() - t0) * 1000
        step_run = StepRunRecord(
            run_id=run_id, pipeline_name=pipeline_name, step_name=node.name,
            step_path=impl.import_path, position=position, cache_key=key,
            code_hash=impl.code_hash, params=params, inputs=input_hashes,
            outputs={k: v.to_json() for k, v in outs.items()} if outs else None,
            status=status, reason=reason, started_at=started_at, duration_ms=duration)
        if recorder is None or status == FAILED:
            metadata.record_step(step_run, **kw)
        else:
            runpath.check_record(step_run)  # a refused record fails its step, as before
            recorder.add(runpath.Pending(step_run, tuple(kw.get("new_artifacts") or ()),
                                       cache=kw.get("cache", False),
                                       replace_cache=kw.get("replace_cache", False)), t0, outs)
        return StepResult(node.name, status, reason, key, impl.code_hash, outs or {}, duration)

    if decision.hit is not None:
        return record(CACHED, decision.reason, decision.hit)
    reason = decision.reason
    log.info("step %s: executing (%s)", node.name, reason)
    store: Any = artifacts if recorder is None or recorder.uploads is None else recorder.uploads
    try:
        values = {arg: load_artifact(store, ref, allow_pickle=impl.allow_pickle)
                  for arg, ref in input_refs.items()}
        returned = impl.call(params, values)
        del values
        named = _split_outputs(node, returned)
        del returned
        refs = {}
        for name in impl.output_names:
            refs[name] = save_artifact(store, named.pop(name), allow_pickle=impl.allow_pickle)
    except CollabError as exc:
        _record_failure(record, f"failed: {exc.message}", node.name)
        raise
    except Exception as exc:
        _record_failure(record, f"failed: {type(exc).__name__}: {exc}", node.name)
        raise StepFailedError(
            f"step {node.name!r} of pipeline {pipeline_name!r} failed: {type(exc).__name__}: {exc}",
            "fix the step and run the pipeline again; the steps that succeeded will be cached"
            + (f": {resume_hint}" if resume_hint else ""),
        ) from exc
    new = [ref.to_json() for ref in refs.values()]
    return record(EXECUTED, reason, refs, new_artifacts=new, cache=True,
                  replace_cache=reason in (cache.ARTIFACT_MISSING, cache.ARTIFACT_CORRUPT))


def _split_outputs(node: StepNode, returned: Any) -> dict[str, Any]:
    names = node.impl.output_names
    if len(names) == 1:
        return {names[0]: returned}
    if isinstance(returned, dict) and set(returned) == set(names):
        return dict(returned)
    if isinstance(returned, tuple) and len(returned) == len(names):
        return dict(zip(names, returned, strict=True))
    raise PipelineError(
        f"step {node.name!r} declares outputs {list(names)} but returned "
        f"{type(returned).__name__}",
        "return a tuple in that order or a dict with exactly those keys",
    )


def _record_failure(record: Callable[..., StepResult], reason: str, step: str) -> None:
    # The store may be failing too (an outage): the step's own error, with its file:line, is
    # the one the member must see; the store's is logged.
    try:
        record(FAILED, reason, None)
    except CollabError as unrecorded:
        log.warning("could not record the failure of step %s: %s", step, unrecorded.message)
