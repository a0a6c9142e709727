"""ZenML's side of the distance section: run by the ZenML virtualenv's Python, not ours.

Standalone (stdlib and zenml only). ``ZENML_STORE_URL`` points ZenML's SQL store at MariaDB
through the latency relay. Protocol on stdin/stdout, one JSON object per line, so the parent
can set the relay's delay and reset its counts between runs:

    -> {"ready": true, "zenml": "0.98.0"}          after the cached baseline is recorded
    <- {"run": "cached"} | {"run": "cold"}         one run
    -> {"wall": 1.23, "statements": 1700, "statuses": {...}}
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from typing import Any

import sqlalchemy as sa
import zenml
from zenml import pipeline, step

STATEMENTS = [0]


@sa.event.listens_for(sa.engine.Engine, "before_cursor_execute")
def _count(*_: Any) -> None:
    STATEMENTS[0] += 1


@step(enable_cache=True)
def inc(x: int = 0, k: int = 0, salt: int = 0) -> int:
    return x + 1


@pipeline(enable_cache=True)
def chain(length: int = 20, salt: int = 0) -> None:
    x = inc(x=0, k=0, salt=salt)
    for i in range(1, length):
        x = inc(x=x, k=i, salt=salt)


def _statuses(run: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step_run in run.steps.values():
        status = str(getattr(step_run.status, "value", step_run.status))
        counts[status] = counts.get(status, 0) + 1
    return counts


def main() -> int:
    length = int(sys.argv[1])
    chain(length=length, salt=0)
    print(json.dumps({"ready": True, "zenml": zenml.__version__}), flush=True)
    salts = itertools.count(1)
    for line in sys.stdin:
        request = json.loads(line)
        salt = 0 if request["run"] == "cached" else next(salts)
        STATEMENTS[0] = 0
        t0 = time.perf_counter()
        run = chain(length=length, salt=salt)
        wall = time.perf_counter() - t0
        print(json.dumps({"wall": wall, "statements": STATEMENTS[0],
                          "statuses": _statuses(run) if run is not None else {}}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
