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
from typing import Any

from zenml_collab.core import cache
from zenml_collab.core.artifacts.base import ArtifactRef, ArtifactStore
from zenml_collab.core.metadata.batch import PriorStep
from zenml_collab.core.pipeline import StepNode
from zenml_collab.errors import CollabError

log = logging.getLogger("zenml_collab.cache_plan")

SOURCE_INPUT = "<source>"  # pseudo-input: the content a step reads from outside
# Concurrent existence checks: enough that a pipeline's artifacts are checked in one round
# trip of wall time; the GCS store keeps a connection pool this large.
MAX_CHECKS_IN_FLIGHT = 64


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

    On a remote store they run concurrently on a thread pool, so the caller can send its own
    statements meanwhile (the run's start overlaps the checks: one round trip of wall time
    for both); :meth:`result` waits for them.
    """

    def __init__(self, artifacts: ArtifactStore, found: Mapping[str, Hit]) -> None:
        self._artifacts = artifacts
        refs = {ref.hash: ref for hit in found.values() for ref in hit.outputs.values()}
        self._refs = list(refs.values())
        self._futures: list[Future[bool]] | None = None
        if is_remote(artifacts) and len(self._refs) > 1:
            _widen_pool(artifacts, MAX_CHECKS_IN_FLIGHT)
            pool = ThreadPoolExecutor(max_workers=min(MAX_CHECKS_IN_FLIGHT, len(self._refs)),
                                      thread_name_prefix="collab-presence")
            self._futures = [pool.submit(_is_present, artifacts, ref) for ref in self._refs]
            pool.shutdown(wait=False)  # the workers finish what was submitted, then exit

    def result(self) -> dict[str, bool]:
        if self._futures is None:
            return {ref.hash: _is_present(self._artifacts, ref) for ref in self._refs}
        return {ref.hash: future.result()
                for ref, future in zip(self._refs, self._futures, strict=True)}


def _is_present(artifacts: ArtifactStore, ref: ArtifactRef) -> bool:
    # A store that tells corrupt from missing (``presence``) must say "present": a corrupt
    # artifact is never a hit, and the per-step path reports why.
    presence: Any = getattr(artifacts, "presence", None)
    if presence is not None:
        return str(getattr(presence(ref), "value", "")) == "present"
    return artifacts.exists(ref)


def is_remote(artifacts: ArtifactStore) -> bool:
    """Whether ``artifacts`` answers over the network (each request a round trip)."""
    return getattr(artifacts, "client", None) is not None or str(
        getattr(artifacts, "uri", "")).startswith("gs://")


def _widen_pool(artifacts: ArtifactStore, size: int) -> None:
    """Let ``size`` requests share the store's HTTP keep-alive pool (requests' default is 10).

    Beyond the pool, every concurrent check would open (and pay the handshake of) a new
    connection and urllib3 would warn about discarding it. A store may offer its own
    ``ensure_connection_pool``; otherwise the storage client's session is widened once.
    """
    own = getattr(artifacts, "ensure_connection_pool", None)
    if own is not None:
        own(size)
        return
    session = getattr(getattr(artifacts, "client", None), "_http", None)
    if session is None or not hasattr(session, "mount"):
        return
    if getattr(session, "_collab_pool_size", 0) >= size:
        return
    from requests.adapters import HTTPAdapter

    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session._collab_pool_size = size
