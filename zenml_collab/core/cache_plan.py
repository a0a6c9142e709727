"""Resolve a run's cache hits up front, in a constant number of round trips (DESIGN §12).

Resolving step by step costs, per step, a cache lookup and an existence check one after the
other: at 50 ms from the stores a cached 20-step run waits seconds for nothing. Instead:

1. one query fetches the previous completed run's steps of this pipeline with the cache entry
   each step's key has now (:func:`~zenml_collab.core.metadata.batch.run_start_view`);
2. walking the DAG locally, each step's key is computed from the outputs its upstream steps
   would have if they are hits; a key equal to the previous run's, with a cache entry, is a
   candidate, and so are its outputs for the steps downstream;
3. every candidate's artifacts are checked at once (concurrently, while the run's start is
   written: one round trip of wall time for both); a candidate is a confirmed hit when all
   its artifacts are present and all its upstream steps are confirmed hits.

The cache rule is unchanged: a hit is a key with a cache entry whose artifacts exist. Anything
not confirmed here (a new key, a missing or corrupt artifact, a pipeline never run before)
takes the per-step path, which explains the miss exactly as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from zenml_collab.core import cache
from zenml_collab.core.artifacts.base import ArtifactRef, ArtifactStore, Presence, presence_many
from zenml_collab.core.metadata.runpath import PriorStep
from zenml_collab.core.pipeline import StepNode
from zenml_collab.errors import CollabError

log = logging.getLogger("zenml_collab.cache_plan")

SOURCE_INPUT = "<source>"  # pseudo-input: the content a step reads from outside


@dataclass(frozen=True)
class StepKey:
    key: str
    input_hashes: dict[str, str]


@dataclass(frozen=True)
class Hit:
    """A confirmed cache hit: the step needs no further I/O."""

    key: StepKey
    outputs: dict[str, ArtifactRef]


def step_key(node: StepNode, upstream: Mapping[str, Mapping[str, ArtifactRef]],
             fingerprint: Callable[[StepNode], str | None]) -> StepKey:
    """The cache key of ``node`` given its upstream steps' outputs."""
    impl = node.impl
    input_hashes = {i.arg: upstream[i.step][i.output].hash for i in node.inputs}
    source = fingerprint(node)
    if source is not None:
        input_hashes[SOURCE_INPUT] = source
    key = cache.cache_key(step_path=impl.import_path, code_hash=impl.code_hash,
                          params=node.params, input_hashes=input_hashes,
                          output_names=impl.output_names)
    return StepKey(key, input_hashes)


def plan_hits(nodes: tuple[StepNode, ...], prior: Mapping[str, PriorStep],
              artifacts: ArtifactStore,
              fingerprint: Callable[[StepNode], str | None]) -> dict[str, Hit]:
    """The steps of ``nodes`` (topologically ordered) that are confirmed cache hits."""
    found = candidates(nodes, prior, fingerprint)
    return confirm(nodes, found, PresenceChecks(artifacts, found).result())


def candidates(nodes: tuple[StepNode, ...], prior: Mapping[str, PriorStep],
               fingerprint: Callable[[StepNode], str | None]) -> dict[str, Hit]:
    """The steps whose key, predicted along the DAG, has a cache entry (no I/O)."""
    if not prior:
        return {}
    found: dict[str, Hit] = {}
    for node in nodes:
        before = prior.get(node.name)
        if before is None or before.cached_outputs is None:
            continue
        if any(i.step not in found for i in node.inputs):
            continue  # an upstream step may execute: its outputs are not known yet
        expected = {i.step: found[i.step].outputs for i in node.inputs}
        try:
            key = step_key(node, expected, fingerprint)
        except Exception:  # the per-step path fingerprints again and reports the error
            continue
        if key.key != before.cache_key:
            continue
        try:
            outputs = {name: ArtifactRef.from_json(data)
                       for name, data in before.cached_outputs.items()}
        except (CollabError, KeyError, TypeError, ValueError):
            continue  # the per-step path reads it again and reports it
        if set(outputs) != set(node.impl.output_names):
            continue
        found[node.name] = Hit(key, outputs)
    return found


def confirm(nodes: tuple[StepNode, ...], found: Mapping[str, Hit],
            present: Mapping[str, bool]) -> dict[str, Hit]:
    """The candidates whose artifacts are all present and whose upstream steps are hits."""
    confirmed: dict[str, Hit] = {}
    for node in nodes:
        hit = found.get(node.name)
        if hit is None or not all(present.get(r.hash, False) for r in hit.outputs.values()):
            continue
        if all(i.step in confirmed for i in node.inputs):
            confirmed[node.name] = hit
    log.debug("cache plan: %d of %d steps confirmed hits", len(confirmed), len(nodes))
    return confirmed


class PresenceChecks:
    """The existence checks of the candidates' artifacts, in flight from construction.

    On a remote store they are one background call of :func:`presence_many` (GCS: one batch
    request per 100 artifacts), so the caller can send its own statements meanwhile (the
    run's start overlaps the checks: one round trip of wall time for both); :meth:`result`
    waits for it. A local store is asked when the result is wanted.
    """

    def __init__(self, artifacts: ArtifactStore, found: Mapping[str, Hit]) -> None:
        self._artifacts = artifacts
        refs = {ref.hash: ref for hit in found.values() for ref in hit.outputs.values()}
        self._refs = list(refs.values())
        self._future: Future[dict[str, Presence]] | None = None
        if self._refs and is_remote(artifacts):
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collab-presence")
            self._future = pool.submit(presence_many, artifacts, self._refs)
            pool.shutdown(wait=False)  # the worker finishes the call, then exits

    def result(self) -> dict[str, bool]:
        # A corrupt artifact is never a hit: the per-step path re-executes and says why.
        answers = (self._future.result() if self._future is not None
                   else presence_many(self._artifacts, self._refs))
        return {ref.hash: answers.get(ref.hash) is Presence.PRESENT for ref in self._refs}


def is_remote(artifacts: ArtifactStore) -> bool:
    """Whether ``artifacts`` answers over the network (each request a round trip)."""
    return getattr(artifacts, "client", None) is not None or str(
        getattr(artifacts, "uri", "")).startswith("gs://")
