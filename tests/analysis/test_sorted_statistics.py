"""Numeric statistics read off one sort are numpy's and pandas' own numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zenml_collab.core.analysis._columns import ReadColumn
from zenml_collab.core.analysis.statistics import QUANTILES, _numeric_stats, _shared_edges


def direct(values: np.ndarray, edges: np.ndarray) -> dict[str, object]:
    counts, _ = np.histogram(values, bins=edges)
    return {"counts": tuple(int(c) for c in counts), "unique": len(pd.unique(values)),
            "quantiles": tuple(float(v) for v in np.quantile(values, QUANTILES)),
            "min": float(values.min()), "max": float(values.max())}


@pytest.mark.parametrize("make", [
    lambda rng: rng.normal(0, 1, 10_001),
    lambda rng: rng.normal(0, 1, 5_000).round(1),                 # many repeats
    lambda rng: rng.integers(18, 90, 7_000).astype(float),        # one bin per integer
    lambda rng: np.concatenate([np.zeros(50), -np.zeros(50), np.ones(3)]),  # -0.0 is 0.0
    lambda rng: np.array([4.25]),
], ids=["normal", "rounded", "integers", "signed-zero", "one-value"])
def test_histogram_quantiles_and_distinct_count_match_the_direct_computations(make):
    rng = np.random.default_rng(5)
    values = make(rng)
    kind = "int" if np.all(values == np.round(values)) else "float"
    edges = _shared_edges([values, values[: len(values) // 2]], kind, 10)
    assert edges is not None
    stats = _numeric_stats("x", kind, ReadColumn(values, 0, 0, ()), edges)
    want = direct(values, edges)
    assert stats.histogram is not None and stats.histogram.counts == want["counts"]
    assert stats.unique == want["unique"]
    assert tuple(v for _, v in stats.quantiles) == want["quantiles"]
    assert (stats.min, stats.max) == (want["min"], want["max"])
    assert stats.mean == float(values.mean())


def test_values_outside_the_shared_edges_are_not_counted():
    values = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    edges = np.linspace(0.0, 3.0, 4)
    stats = _numeric_stats("x", "float", ReadColumn(values, 0, 0, ()), edges)
    assert stats.histogram is not None
    assert stats.histogram.counts == tuple(int(c) for c in np.histogram(values, bins=edges)[0])
