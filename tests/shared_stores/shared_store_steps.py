"""Steps for the shared-store tests. Each body appends its name to $COLLAB_TEST_COUNTER."""

from __future__ import annotations

import os
from collections.abc import Callable

from zenml_collab import Pipeline, step

# Set by an in-process test to run something (a database restart) inside a step body.
HOOK: Callable[[], None] | None = None


def _count(name: str) -> None:
    path = os.environ.get("COLLAB_TEST_COUNTER")
    if path:
        with open(path, "a") as fh:
            fh.write(name + "\n")


@step
def numbers(n: int = 5) -> list:
    _count("numbers")
    return list(range(n))


@step
def shift(xs: list, offset: int = 0) -> list:
    _count("shift")
    return [x + offset for x in xs]


@step
def interrupt(xs: list) -> list:
    _count("interrupt")
    if HOOK is not None:
        HOOK()
    return [x * 10 for x in xs]


def chain(name: str, length: int) -> Pipeline:
    """numbers -> shift -> shift -> ... (``length`` steps)."""
    p = Pipeline(name)
    p.add(numbers, name="s0")
    for i in range(1, length):
        p.add(shift, name=f"s{i}", inputs={"xs": f"s{i - 1}"}, params={"offset": i})
    return p


def with_interruption(name: str) -> Pipeline:
    """numbers -> interrupt (runs HOOK) -> shift."""
    p = Pipeline(name)
    p.add(numbers, name="first")
    p.add(interrupt, name="middle", inputs={"xs": "first"})
    p.add(shift, name="last", inputs={"xs": "middle"}, params={"offset": 1})
    return p
