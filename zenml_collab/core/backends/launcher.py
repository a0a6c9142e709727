"""Drive a pipeline's DAG across backends: the cache is decided here, only misses travel.

The launcher walks the DAG as inputs become known. For each ready step it computes the cache
key and looks it up locally, exactly as the in-process runner does; a hit is recorded as
``cached`` and never starts a container or a job. A miss on the ``local`` backend executes in
this process (the in-process runner's own code); a miss on ``docker`` or ``vertex`` becomes a
:class:`StepTask` that the backend runs, and the worker inside records the step. Steps whose
inputs are ready run at once, up to ``max_parallel``. On Ctrl-C every running container or
job is cancelled and the run is marked failed.

Why the backend is not in the cache key: a step's outputs are a function of its code,
parameters and inputs, not of the machine it ran on (the image carries the same dependencies).
Putting the backend in the key would make a teammate re-execute a trainer just because they
chose a GPU job where the author ran in-process, the opposite of sharing a cache.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from zenml_collab.core import cache
from zenml_collab.core.artifacts.base import ArtifactRef, ArtifactStore
from zenml_collab.core.backends.base import Backend
from zenml_collab.core.backends.task import StepTask
from zenml_collab.core.metadata.records import StepRunRecord, utcnow
from zenml_collab.core.metadata.store import MetadataStore
from zenml_collab.core.pipeline import Pipeline, StepNode
from zenml_collab.core.run import CACHED, FAILED, Run, StepResult
from zenml_collab.core.runner import SOURCE_INPUT, RunContext, _read, _run_step
from zenml_collab.errors import CollabError, StepFailedError

log = logging.getLogger("zenml_collab.launcher")
LOCAL = "local"


@dataclass(frozen=True)
class Resolved:
    """A step's cache decision, made locally before anything is launched."""

    key: str
    input_hashes: dict[str, str]
    input_refs: dict[str, ArtifactRef]
    hit: dict[str, ArtifactRef] | None
    reason: str


def resolve(node: StepNode, pipeline_name: str, upstream: dict[str, dict[str, ArtifactRef]],
            metadata: MetadataStore, artifacts: ArtifactStore) -> Resolved:
    """The cache key of ``node`` and whether the store holds its outputs (the runner's rule)."""
    impl = node.impl
    params = node.params
    input_refs = {i.arg: upstream[i.step][i.output] for i in node.inputs}
    input_hashes = {arg: ref.hash for arg, ref in input_refs.items()}
    if impl.fingerprint is not None:
        try:
            input_hashes[SOURCE_INPUT] = impl.fingerprint(params)
        except CollabError:
            raise
        except Exception as exc:
            raise StepFailedError(
                f"step {node.name!r} of pipeline {pipeline_name!r} could not fingerprint its "
                f"source: {type(exc).__name__}: {exc}",
                "check the step's parameters (e.g. the datasource path)") from exc
    key = cache.cache_key(step_path=impl.import_path, code_hash=impl.code_hash, params=params,
                          input_hashes=input_hashes, output_names=impl.output_names)
    found = metadata.cached_outputs(key)
    if found is not None:
        origin = f"the cache entry of step {node.name!r} (key {key[:12]})"
        refs = {name: ArtifactRef.from_json(data, origin=origin) for name, data in found.items()}
        if all(artifacts.exists(ref) for ref in refs.values()):
            return Resolved(key, input_hashes, input_refs, refs, cache.CACHE_HIT)
        return Resolved(key, input_hashes, input_refs, None, cache.ARTIFACT_MISSING)
    previous = metadata.previous_step_run(pipeline_name, node.name, impl.import_path)
    reason = cache.explain_miss(previous, step_path=impl.import_path, code_hash=impl.code_hash,
                                params=params, input_hashes=input_hashes)
    return Resolved(key, input_hashes, input_refs, None, reason)


class Launcher:
    """One run of one pipeline across backends (see the module docstring)."""

    def __init__(self, pipeline: Pipeline, *, pipeline_id: int, metadata: MetadataStore,
                 artifacts: ArtifactStore, context: RunContext,
                 backend_of: Callable[[StepNode], str],
                 make_backend: Callable[[str], Backend],
                 pack_source: Callable[[], dict[str, object]],
                 max_parallel: int = 4,
                 on_step: Callable[[StepResult], None] | None = None,
                 resume_hint: str = "") -> None:
        self.pipeline = pipeline
        self.pipeline_id = pipeline_id
        self.metadata = metadata
        self.artifacts = artifacts
        self.context = context
        self.backend_of = backend_of
        self._make_backend = make_backend
        self._pack_source = pack_source
        self.max_parallel = max_parallel
        self.on_step = on_step
        self.resume_hint = resume_hint
        self.run_id = uuid.uuid4().hex
        self.backends: dict[str, Backend] = {}
        self._source: dict[str, object] | None = None
        self.launched: list[str] = []  # step names that went to a container or a job

    def _backend(self, name: str) -> Backend:
        if name not in self.backends:
            backend = self._make_backend(name)
            self.backends[name] = backend  # closed with the others, even if prepare fails
            backend.prepare()  # permissions and image, before anything is launched there
        return self.backends[name]

    def _source_json(self) -> dict[str, object]:
        if self._source is None:
            self._source = self._pack_source()
        return self._source

    def run(self) -> Run:
        env = self.context.environment
        if env is not None:
            self.metadata.ensure_environment(env.hash, env.python, env.platform, env.packages_json)
        git = self.context.git
        self.metadata.start_run(run_id=self.run_id, pipeline_id=self.pipeline_id,
                                pipeline_name=self.pipeline.name, git_sha=git.sha,
                                git_dirty=git.dirty, user=git.user,
                                hostname=self.context.hostname,
                                environment_hash=env.hash if env else None)
        try:
            results = self._drive()
        except BaseException as exc:
            self._close()
            for backend in self.backends.values():
                backend.cancel_all()
            message = str(exc) if isinstance(exc, CollabError) else f"{type(exc).__name__}: {exc}"
            if isinstance(exc, KeyboardInterrupt):
                message = "interrupted (Ctrl-C); running containers and jobs were cancelled"
            try:
                self.metadata.finish_run(self.run_id, FAILED, message[:2000])
            except CollabError as unrecorded:
                log.warning("could not mark run %s failed: %s", self.run_id[:8], unrecorded.message)
            raise
        self._close()
        self.metadata.finish_run(self.run_id, "completed")
        order = {n.name: i for i, n in enumerate(self.pipeline.steps)}
        results.sort(key=lambda r: order[r.name])
        return Run(id=self.run_id, pipeline_name=self.pipeline.name, status="completed",
                   steps=tuple(results), started_at=None, git_sha=git.sha, git_dirty=git.dirty,
                   user=git.user, _reader=functools.partial(_read, self.artifacts))

    def _close(self) -> None:
        for backend in self.backends.values():
            close = getattr(backend, "close", None)
            if close is not None:
                close()

    def _drive(self) -> list[StepResult]:
        nodes = self.pipeline.steps
        position = {n.name: i for i, n in enumerate(nodes)}
        pending = {n.name: n for n in nodes}
        outputs: dict[str, dict[str, ArtifactRef]] = {}
        results: list[StepResult] = []
        running: dict[Future[StepResult], str] = {}
        with ThreadPoolExecutor(max_workers=self.max_parallel,
                                thread_name_prefix="collab-launch") as pool:
            try:
                while pending or running:
                    ready = [n for n in pending.values()
                             if all(i.step in outputs for i in n.inputs)]
                    for node in ready:
                        if len(running) >= self.max_parallel:
                            break
                        del pending[node.name]
                        result = self._start(node, position[node.name], outputs, pool, running)
                        if result is not None:
                            self._done(result, outputs, results)
                    if not running:
                        if pending and not any(all(i.step in outputs for i in n.inputs)
                                               for n in pending.values()):
                            raise CollabError("internal error: no step can start",
                                              "report this bug")
                        continue
                    finished, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in finished:
                        running.pop(future)
                        self._done(future.result(), outputs, results)
            except BaseException:
                for backend in self.backends.values():
                    backend.cancel_all()
                for future in running:
                    future.cancel()
                raise
        return results

    def _done(self, result: StepResult, outputs: dict[str, dict[str, ArtifactRef]],
              results: list[StepResult]) -> None:
        outputs[result.name] = dict(result.outputs)
        results.append(result)
        if self.on_step is not None:
            self.on_step(result)

    def _start(self, node: StepNode, position: int, outputs: dict[str, dict[str, ArtifactRef]],
               pool: ThreadPoolExecutor, running: dict[Future[StepResult], str]
               ) -> StepResult | None:
        backend_name = self.backend_of(node)
        if backend_name == LOCAL:
            return _run_step(node, position, self.run_id, self.pipeline.name, outputs,
                             self.metadata, self.artifacts, self.resume_hint)
        resolved = resolve(node, self.pipeline.name, outputs, self.metadata, self.artifacts)
        if resolved.hit is not None:
            return self._record_cached(node, position, resolved)
        backend = self._backend(backend_name)
        task = StepTask(
            run_id=self.run_id, pipeline_name=self.pipeline.name, step_name=node.name,
            step_path=node.impl.import_path, position=position, cache_key=resolved.key,
            code_hash=node.impl.code_hash, params=node.params,
            inputs={arg: ref.to_json() for arg, ref in resolved.input_refs.items()},
            input_hashes=resolved.input_hashes, output_names=node.impl.output_names,
            reason=resolved.reason, backend=backend_name, source=self._source_json(),
            image=backend.image_digest())
        log.info("step %s: executing on %s (%s)", node.name, backend_name, resolved.reason)
        self.launched.append(node.name)
        running[pool.submit(self._remote, backend, task)] = node.name
        return None

    def _record_cached(self, node: StepNode, position: int, resolved: Resolved) -> StepResult:
        assert resolved.hit is not None
        self.metadata.record_step(StepRunRecord(
            run_id=self.run_id, pipeline_name=self.pipeline.name, step_name=node.name,
            step_path=node.impl.import_path, position=position, cache_key=resolved.key,
            code_hash=node.impl.code_hash, params=node.params, inputs=resolved.input_hashes,
            outputs={k: v.to_json() for k, v in resolved.hit.items()}, status=CACHED,
            reason=cache.CACHE_HIT, started_at=utcnow(), duration_ms=0.0))
        return StepResult(node.name, CACHED, cache.CACHE_HIT, resolved.key, node.impl.code_hash,
                          resolved.hit, 0.0)

    def _remote(self, backend: Backend, task: StepTask) -> StepResult:
        t0 = time.perf_counter()
        backend.execute(task)
        found = self.metadata.cached_outputs(task.cache_key)
        if found is None:
            raise StepFailedError(
                f"step {task.step_name!r} finished on {task.backend} but recorded no outputs",
                "check that the image runs the same zenml-collab version and the same stores")
        origin = f"step {task.step_name!r} executed on {task.backend}"
        refs = {name: ArtifactRef.from_json(data, origin=origin) for name, data in found.items()}
        return StepResult(task.step_name, "executed", f"{task.reason} (on {task.backend})",
                          task.cache_key, task.code_hash, refs,
                          (time.perf_counter() - t0) * 1000)
