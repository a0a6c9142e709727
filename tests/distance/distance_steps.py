"""Steps of the distance tests (importable by path, like a member's own steps)."""

from __future__ import annotations

from zenml_collab import step
from zenml_collab.core.pipeline import Pipeline

FAIL = False  # a test sets it to make every executed step fail


@step
def inc(x: int = 0, k: int = 0) -> int:
    if FAIL:
        raise RuntimeError("boom")
    return x + 1


def chain(name: str, length: int) -> Pipeline:
    """``length`` steps, each taking the previous one's output."""
    pipeline = Pipeline(name)
    prev: str | None = None
    for i in range(length):
        prev = pipeline.add(inc, name=f"s{i:02d}", params={"k": i},
                            inputs={"x": prev} if prev else None)
    return pipeline
