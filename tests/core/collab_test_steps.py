"""Steps used by the core tests. Each body appends its name to $COLLAB_TEST_COUNTER."""

from __future__ import annotations

import os

from zenml_collab import BaseStep, step


def _count(name: str) -> None:
    with open(os.environ["COLLAB_TEST_COUNTER"], "a") as fh:
        fh.write(name + "\n")


@step
def source(n: int = 5) -> list:
    _count("source")
    return list(range(n))


@step
def scale(xs: list, factor: int = 2) -> list:
    _count("scale")
    return [x * factor for x in xs]


@step
def shift(xs: list, offset: int = 0) -> list:
    _count("shift")
    return [x + offset for x in xs]


@step
def combine(a: list, b: list) -> dict:
    _count("combine")
    return {"total": sum(a) + sum(b)}


@step
def explode(xs: list) -> list:
    _count("explode")
    raise RuntimeError("boom in the middle of the step")


@step(outputs=("low", "high"))
def partition(xs: list, cut: int = 3) -> tuple:
    _count("partition")
    return [x for x in xs if x < cut], [x for x in xs if x >= cut]


@step
def not_storable(xs: list) -> object:
    _count("not_storable")
    return object()


@step(allow_pickle=True)
def pickled(xs: list) -> object:
    _count("pickled")
    return {1, 2, 3}


class Power(BaseStep):
    def __init__(self, exponent: int = 2) -> None:
        super().__init__(exponent=exponent)

    def run(self, xs: list) -> list:
        _count("power")
        return [x ** self.params["exponent"] for x in xs]


def diamond(name: str = "diamond", factor: int = 2, offset: int = 1):
    """source -> (scale, shift) -> combine"""
    from zenml_collab import Pipeline

    p = Pipeline(name)
    p.add(source, params={"n": 5})
    p.add(scale, inputs={"xs": "source"}, params={"factor": factor})
    p.add(shift, inputs={"xs": "source"}, params={"offset": offset})
    p.add(combine, inputs={"a": "scale", "b": "shift"})
    return p


class BrokenSource(BaseStep):
    """A step whose external source cannot be fingerprinted."""

    def __init__(self, path: str = "nowhere") -> None:
        super().__init__(path=path)

    def fingerprint(self) -> str:
        raise OSError(f"cannot stat {self.params['path']}")

    def run(self) -> list:
        _count("broken_source")
        return []


@step
def ramp(n: int = 4096) -> object:
    import numpy as np

    _count("ramp")
    return np.arange(n, dtype=np.float64) + 1.0


@step
def total(arr: object) -> float:
    _count("total")
    return float(arr.sum())  # type: ignore[attr-defined]


def array_chain(name: str = "arrays"):
    """ramp -> total: a numpy artifact feeding a JSON one."""
    from zenml_collab import Pipeline

    p = Pipeline(name)
    p.add(ramp)
    p.add(total, inputs={"arr": "ramp"})
    return p
