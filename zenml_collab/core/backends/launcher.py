"""Drive a pipeline's DAG across backends: the cache is decided here, only misses travel.

The launcher walks the DAG as inputs become known. It decides each step's cache with the
in-process runner's own functions: the hits the cache plan confirms up front (a constant
number of round trips, :mod:`~zenml_collab.core.cache_plan`), then
:func:`~zenml_collab.core.runner.decide_step` for a step whose inputs just became known. A hit
is recorded as ``cached`` (batched like the runner's) and never starts a container or a job.
A miss on the ``local`` backend executes in this process (the in-process runner's own
code); a miss on ``docker`` or ``vertex`` becomes a :class:`StepTask` that the backend runs,
and the worker inside records the step. Steps whose inputs are ready run at once, up to
``max_parallel``. On Ctrl-C every running container or
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

from zenml_collab.core import cache_plan
from zenml_collab.core.artifacts.base import ArtifactRef, ArtifactStore
from zenml_collab.core.backends.base import Backend
from zenml_collab.core.backends.task import StepTask
from zenml_collab.core.metadata import runpath
from zenml_collab.core.metadata.records import StepExecution
from zenml_collab.core.metadata.store import MetadataStore
from zenml_collab.core.pipeline import Pipeline, StepNode
from zenml_collab.core.run import EXECUTED, FAILED, Run, StepResult
from zenml_collab.core.runner import (
    RunContext,
    _cached,
    _fingerprint,
    _read,
    _Recorder,
    _run_step,
    decide_step,
)
from zenml_collab.errors import CollabError, StepFailedError

log = logging.getLogger("zenml_collab.launcher")
LOCAL = "local"


class Launcher:
    """One run of one pipeline across backends (see the module docstring)."""

    def __init__(self, pipeline: Pipeline, *, pipeline_id: int, metadata: MetadataStore,
                 artifacts: ArtifactStore, context: RunContext,
                 backend_of: Callable[[StepNode], str],
                 make_backend: Callable[[str], Backend],
                 pack_source: Callable[[], dict[str, object]],
                 max_parallel: int = 4,
                 on_step: Callable[[StepResult], None] | None = None,
                 resume_hint: str = "", start: runpath.RunStart | None = None) -> None:
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
        self._start_view = start
        self._hits: dict[str, cache_plan.Hit] = {}
        self._recorder = _Recorder(metadata)
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
        start = self._start_view or self.metadata.run_start_view(
            self.pipeline.name, env.hash if env else None)
        # As the in-process runner: hits predicted along the DAG, their artifacts checked
        # while the run's start is written, so a cached run launches nothing and costs the same.
        candidates = cache_plan.candidates(self.pipeline.steps, start.prior, _fingerprint)
        checks = cache_plan.PresenceChecks(self.artifacts, candidates)
        if env is not None and not start.environment_known:
            self.metadata.ensure_environment(env.hash, env.python, env.platform, env.packages_json)
        git = self.context.git
        self.metadata.start_run(run_id=self.run_id, pipeline_id=self.pipeline_id,
                                pipeline_name=self.pipeline.name, git_sha=git.sha,
                                git_dirty=git.dirty, user=git.user,
                                hostname=self.context.hostname,
                                environment_hash=env.hash if env else None)
        try:
            self._hits = cache_plan.confirm(self.pipeline.steps, candidates, checks.result())
            results = self._drive()
            self._recorder.flush()
        except BaseException as exc:
            self._close()
            if self._recorder.pending:
                try:
                    self._recorder.flush()  # the steps before the failure stay on record
                except CollabError as unrecorded:
                    log.warning("could not record the finished steps of run %s: %s",
                                self.run_id[:8], unrecorded.message)
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
        hit = self._hits.get(node.name)
        if hit is not None:
            return _cached(node, position, self.run_id, self.pipeline.name, hit, self._recorder)
        if self._recorder.due():
            self._recorder.flush()
        backend_name = self.backend_of(node)
        if backend_name == LOCAL:
            return _run_step(node, position, self.run_id, self.pipeline.name, outputs,
                             self.metadata, self.artifacts, self.resume_hint, self._recorder)
        decision = decide_step(node, self.pipeline.name, outputs, self.metadata, self.artifacts,
                               self._recorder.fresh)
        if decision.hit is not None:
            return _cached(node, position, self.run_id, self.pipeline.name,
                           cache_plan.Hit(cache_plan.StepKey(decision.key, decision.input_hashes),
                                          decision.hit), self._recorder)
        backend = self._backend(backend_name)
        task = StepTask(
            run_id=self.run_id, pipeline_name=self.pipeline.name, step_name=node.name,
            step_path=node.impl.import_path, position=position, cache_key=decision.key,
            code_hash=node.impl.code_hash, params=node.params,
            inputs={arg: ref.to_json() for arg, ref in decision.input_refs.items()},
            input_hashes=decision.input_hashes, output_names=node.impl.output_names,
            reason=decision.reason, backend=backend_name, source=self._source_json(),
            image=backend.image_digest())
        log.info("step %s: executing on %s (%s)", node.name, backend_name, decision.reason)
        self.launched.append(node.name)
        running[pool.submit(self._remote, backend, task)] = node.name
        return None

    def _remote(self, backend: Backend, task: StepTask) -> StepResult:
        t0 = time.perf_counter()
        backend.execute(task)
        # One round trip: the worker's record of the step, with its outputs and where it ran.
        record = next((r for r in self.metadata.step_runs(task.run_id)
                       if r.step_name == task.step_name and r.status == EXECUTED), None)
        if record is None or record.outputs is None:
            raise StepFailedError(
                f"step {task.step_name!r} finished on {task.backend} but recorded no outputs",
                "check that the image runs the same zenml-collab version and the same stores")
        origin = f"step {task.step_name!r} executed on {task.backend}"
        refs = {name: ArtifactRef.from_json(data, origin=origin)
                for name, data in record.outputs.items()}
        return StepResult(task.step_name, EXECUTED, task.reason, task.cache_key,
                          task.code_hash, refs, (time.perf_counter() - t0) * 1000,
                          record.execution or StepExecution(task.backend, task.image))
