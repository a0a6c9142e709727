"""Today's analysis gives the numbers, anomalies and printed tables of the snapshot taken before
the analysis was vectorised (issue 16): see ``golden_cases.py``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from golden_cases import GOLDEN, compute_all


def assert_close(got: Any, expected: Any, where: str = "") -> None:
    """Equal, floats to 1e-9 relative (summation order may move the last bits)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(expected), where
        for key in expected:
            assert_close(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for index, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_close(g, e, f"{where}[{index}]")
    elif isinstance(expected, float) and not isinstance(got, bool) and got is not None:
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {got} != {expected}"
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


@pytest.fixture(scope="module")
def current() -> dict[str, Any]:
    return json.loads(json.dumps(compute_all(), allow_nan=False))


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", ["guide", "messy"])
@pytest.mark.parametrize("view", ["schema", "statistics", "anomalies"])
def test_data_views_equal_the_snapshot_taken_before_vectorising(current, golden, case, view):
    assert_close(current[case][view], golden[case][view], f"{case}.{view}")
    assert current[case]["printed"][view] == golden[case]["printed"][view]


@pytest.mark.parametrize("case", ["binary", "multiclass", "regression"])
def test_evaluations_equal_the_snapshot_taken_before_vectorising(current, golden, case):
    assert_close(current["evaluation"][case]["value"], golden["evaluation"][case]["value"], case)
    assert current["evaluation"][case]["printed"] == golden["evaluation"][case]["printed"]
