"""The ZenML side of ``--vs zenml``: run by the ZenML virtualenv's Python, not ours.

Standalone (stdlib, zenml and numpy only): ``benchmarks/bench_zenml.py`` copies it into a
directory where ``zenml init`` was run and starts it there, so ZenML resolves the steps'
source from that root. It prints one JSON object: samples per figure, in seconds.

    python zenml_side.py measure '{"chain_length": 20, ...}'   # in-process figures
    python zenml_side.py cached-run 20                          # one cached chain run (process)
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

from zenml import pipeline, step


@step(enable_cache=True)
def inc(x: int = 0, k: int = 0, salt: int = 0) -> int:
    return x + 1


@step(enable_cache=True)
def big(seed: int = 0, mb: int = 100, salt: int = 0) -> Any:
    import numpy as np

    return np.full(mb * 131072, seed + 1000.0 * salt, dtype=np.float64)


@pipeline(enable_cache=True)
def chain(length: int = 20, salt: int = 0) -> None:
    x = inc(x=0, k=0, salt=salt)
    for i in range(1, length):
        x = inc(x=x, k=i, salt=salt)


@pipeline(enable_cache=True)
def bigs(count: int = 10, mb: int = 100, salt: int = 0) -> None:
    for i in range(count):
        big(seed=i, mb=mb, salt=salt)


def _statuses(run: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step_run in run.steps.values():
        status = str(getattr(step_run.status, "value", step_run.status))
        counts[status] = counts.get(status, 0) + 1
    return counts


def _timed(fn: Any, expect: str) -> float:
    t0 = time.perf_counter()
    run = fn()
    elapsed = time.perf_counter() - t0
    if run is not None:
        counts = _statuses(run)
        if set(counts) != {expect}:
            raise RuntimeError(f"expected every ZenML step {expect}, got {counts}")
    return elapsed


def measure(cfg: dict[str, Any]) -> dict[str, list[float]]:
    length, count, mb = cfg["chain_length"], cfg["big_count"], cfg["big_mb"]
    salt = iter(range(1, 100_000))
    out: dict[str, list[float]] = {}
    chain(length=length, salt=0)  # warm-up: first-run costs, and the cached baseline
    out["zenml_chain_cold"] = [_timed(lambda: chain(length=length, salt=next(salt)),
                                      "completed") for _ in range(cfg["repeat_cold"])]
    out["zenml_chain_cached"] = [_timed(lambda: chain(length=length, salt=0), "cached")
                                 for _ in range(cfg["repeat_cached"])]
    out["zenml_big_cold"] = [_timed(lambda: bigs(count=count, mb=mb, salt=next(salt)),
                                    "completed") for _ in range(cfg["repeat_big"])]
    bigs(count=count, mb=mb, salt=0)
    out["zenml_big_cached"] = [_timed(lambda: bigs(count=count, mb=mb, salt=0), "cached")
                               for _ in range(cfg["repeat_cached"])]
    return out


def main() -> int:
    mode = sys.argv[1]
    if mode == "measure":
        result = measure(json.loads(sys.argv[2]))
        print(json.dumps({"samples": result,
                          "medians": {k: statistics.median(v) for k, v in result.items()}}))
        return 0
    if mode == "cached-run":
        counts = _statuses(chain(length=int(sys.argv[2]), salt=0))
        print(json.dumps(counts))
        return 0 if set(counts) == {"cached"} else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
