"""Steps of the distance tests (importable by path, like a member's own steps)."""

from __future__ import annotations

from collections.abc import Callable

from zenml_collab import step
from zenml_collab.core.pipeline import Pipeline

FAIL = False  # a test sets it to make every executed step fail
FAIL_AT: int | None = None  # ... or only the step with this ``k``
OBSERVE: Callable[[int], None] | None = None  # called with ``k`` by every executed step


@step
def inc(x: int = 0, k: int = 0) -> int:
    if FAIL or k == FAIL_AT:
        raise RuntimeError("boom")
    if OBSERVE is not None:
        OBSERVE(k)
    return x + 1


def chain(name: str, length: int, salt: int = 0) -> Pipeline:
    """``length`` steps, each taking the previous one's output; a new ``salt``, new keys."""
    pipeline = Pipeline(name)
    prev: str | None = None
    for i in range(length):
        prev = pipeline.add(inc, name=f"s{i:02d}", params={"k": i + 1000 * salt},
                            inputs={"x": prev} if prev else None)
    return pipeline
