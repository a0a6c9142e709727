"""The cache key, and the explanation of a cache miss (DESIGN §3).

The key covers exactly what determines a step's outputs: the step's identity and normalised
code, its parameters, the content of its inputs, its output names and the materializer format.
Git SHA, dirty flag, user, host and environment are recorded with the run but are not in the
key: a commit elsewhere in the repo must not invalidate every cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zenml_collab.core.artifacts.materializers import MATERIALIZERS_VERSION
from zenml_collab.core.hashing import sha256_json
from zenml_collab.core.metadata.records import StepRunRecord

KEY_FORMAT = 1

NO_PREVIOUS_RUN = "no previous run"
PARAMS_CHANGED = "params changed"
CODE_CHANGED = "code changed"
INPUT_CHANGED = "input changed"
ARTIFACT_MISSING = "artifact missing"
ARTIFACT_CORRUPT = "artifact corrupt"
KEY_CHANGED = "cache key changed"
CACHE_HIT = "cache hit"


def cache_key(*, step_path: str, code_hash: str, params: Mapping[str, Any],
              input_hashes: Mapping[str, str], output_names: tuple[str, ...]) -> str:
    return sha256_json({
        "format": KEY_FORMAT,
        "step": step_path,
        "code": code_hash,
        "params": dict(params),
        "inputs": dict(input_hashes),
        "outputs": list(output_names),
        "materializers": MATERIALIZERS_VERSION,
    })


# Parameters that choose *what* runs (a model or estimator class), named before the ones that
# tune it: "model 'LogisticRegression' -> 'RandomForestClassifier'" is the change that matters.
_CHOOSERS = ("model", "estimator", "model_class", "estimator_class", "algorithm", "class",
             "kind", "type", "method")


def _significance(key: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[int, str]:
    if key in _CHOOSERS:
        return (0, key)
    old, new = before.get(key), after.get(key)
    if old is not None and new is not None and type(old) is not type(new):
        return (1, key)  # a different kind of value, e.g. a number became a name
    return (2, key)


def explain_miss(previous: StepRunRecord | None, *, step_path: str, code_hash: str,
                 params: Mapping[str, Any], input_hashes: Mapping[str, str]) -> str:
    """Why a step whose key is not in the cache must execute, in words."""
    if previous is None:
        return NO_PREVIOUS_RUN
    if previous.code_hash != code_hash or previous.step_path != step_path:
        return CODE_CHANGED
    if previous.params != dict(params):
        keys = sorted((k for k in set(previous.params) | set(params)
                       if previous.params.get(k) != params.get(k)),
                      key=lambda k: _significance(k, previous.params, params))
        diffs = [f"{k} {previous.params.get(k, '<unset>')!r} -> {params.get(k, '<unset>')!r}"
                 for k in keys]
        more = f" (+{len(diffs) - 2} more)" if len(diffs) > 2 else ""
        return f"{PARAMS_CHANGED}: {', '.join(diffs[:2])}{more}"
    if previous.inputs != dict(input_hashes):
        changed = sorted(k for k in set(previous.inputs) | set(input_hashes)
                         if previous.inputs.get(k) != input_hashes.get(k))
        return f"{INPUT_CHANGED}: {', '.join(changed)}"
    return KEY_CHANGED
