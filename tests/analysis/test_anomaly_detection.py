"""detect_anomalies: injected problems are found, clean random splits pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from zenml_collab.core.analysis import (
    AnalysisError,
    Anomalies,
    compute_statistics,
    detect_anomalies,
    infer_schema,
)
from zenml_collab.core.analysis.anomalies import jensen_shannon_distance, l_infinity_distance


def check(train: pd.DataFrame, evaluation: pd.DataFrame, **options: Any) -> Anomalies:
    """The pipeline's sequence: schema from train, statistics of both, then the checks."""
    schema = infer_schema(train)
    stats = compute_statistics({"train": train, "eval": evaluation}, schema=schema)
    return detect_anomalies(schema, stats, evaluation, **options)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("eval_fraction", [0.2, 0.3])
def test_clean_random_split_of_shipped_data_has_no_anomalies(
    diabetes: pd.DataFrame, split: Callable[..., Any], seed: int, eval_fraction: float
) -> None:
    found = check(*split(diabetes, seed=seed, eval_fraction=eval_fraction))

    assert found.ok, [a.description for a in found]
    assert {d.feature for d in found.drift} == set(diabetes.columns)
    assert not any(d.drifted for d in found.drift)


def test_text_in_a_numeric_column_is_a_type_mismatch(
    clean_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, evaluation = clean_split
    broken = evaluation.astype({"glucose": object})
    broken.loc[[3, 9], "glucose"] = ["n/a", "high"]

    found = check(train, broken)

    (mismatch,) = found.of_kind("type_mismatch")
    assert mismatch.feature == "glucose" and mismatch.severity == "error"
    assert mismatch.details["count"] == 2
    assert "'n/a'" in mismatch.description and "'high'" in mismatch.description
    assert found.errors == (mismatch,)


def test_fractional_values_in_an_int_column_are_a_type_mismatch(
    clean_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, evaluation = clean_split
    broken = evaluation.astype({"age": float})
    broken.loc[0, "age"] = 33.5

    found = check(train, broken)

    assert [(a.feature, a.details["count"]) for a in found.of_kind("type_mismatch")] == [("age", 1)]


def test_an_unseen_category_is_out_of_domain(
    clean_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, evaluation = clean_split
    broken = evaluation.copy()
    broken.loc[[0, 1, 2], "clinic"] = "mars"

    found = check(train, broken)

    (anomaly,) = found.of_kind("out_of_domain")
    assert anomaly.feature == "clinic" and anomaly.severity == "error"
    assert anomaly.details["count"] == 3
    assert anomaly.details["fraction"] == pytest.approx(3 / len(broken))
    assert "'mars'" in anomaly.description


def test_numeric_values_beyond_the_tolerance_are_out_of_range(
    clean_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, evaluation = clean_split
    low, high = train["bmi"].min(), train["bmi"].max()
    width = high - low
    broken = evaluation.copy()
    broken.loc[0, "bmi"] = high + 0.2 * width  # inside the 25% tolerance
    broken.loc[1, "bmi"] = high + 0.5 * width  # outside
    broken.loc[2, "bmi"] = low - 0.5 * width  # outside

    found = check(train, broken)

    (anomaly,) = found.of_kind("out_of_range")
    assert anomaly.feature == "bmi"
    assert anomaly.details["count"] == 2
    assert anomaly.details["allowed_max"] == pytest.approx(high + 0.25 * width)
    assert check(train, broken, range_tolerance=1.0).of_kind("out_of_range") == ()


def test_missing_values_where_training_had_none_are_reported(
    clean_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, evaluation = clean_split
    broken = evaluation.copy()
    broken.loc[[4, 5, 6], "insulin"] = np.nan

    found = check(train, broken)

    assert [(a.feature, a.kind, a.details["count"]) for a in found] == [
        ("insulin", "unexpected_missing", 3)
    ]


def test_a_shifted_numeric_feature_is_reported_as_drift(
    diabetes: pd.DataFrame, clean_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, evaluation = clean_split
    shifted = evaluation.copy()
    shifted["glucose"] = (shifted["glucose"] + diabetes["glucose"].std()).round().astype(int)

    found = check(train, shifted, range_tolerance=1.0)

    assert [(a.feature, a.kind, a.severity) for a in found] == [("glucose", "drift", "warning")]
    (score,) = [d for d in found.drift if d.feature == "glucose"]
    assert score.metric == "jensen_shannon" and score.drifted
    assert found.anomalies[0].details["distance"] == pytest.approx(score.value)


def test_a_category_taking_over_half_the_rows_is_reported_as_drift(
    clean_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, evaluation = clean_split
    shifted = evaluation.copy()
    shifted.loc[: len(shifted) // 2, "clinic"] = "campus"

    found = check(train, shifted)

    assert [(a.feature, a.kind) for a in found] == [("clinic", "drift")]
    (score,) = [d for d in found.drift if d.feature == "clinic"]
    train_share = (train["clinic"] == "campus").mean()
    eval_share = (shifted["clinic"] == "campus").mean()
    assert score.metric == "l_infinity"
    assert score.value == pytest.approx(eval_share - train_share)


def test_missing_and_unexpected_columns_are_reported(
    clean_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, evaluation = clean_split
    changed = evaluation.drop(columns=["bmi"]).assign(weight=70.0)

    found = check(train, changed)

    assert {(a.feature, a.kind, a.severity) for a in found} == {
        ("bmi", "missing_column", "error"),
        ("weight", "unexpected_column", "warning"),
    }


def test_statistics_computed_separately_cannot_be_compared(
    clean_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, evaluation = clean_split
    schema = infer_schema(train)
    stats = compute_statistics({"train": train})
    mixed = type(stats)(stats.splits + compute_statistics({"eval": evaluation}).splits)

    with pytest.raises(AnalysisError, match="different bins"):
        detect_anomalies(schema, mixed, evaluation)


def test_jensen_shannon_distance_agrees_with_scipy() -> None:
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(1)
    for _ in range(20):
        p, q = rng.integers(0, 50, 10), rng.integers(0, 50, 10)
        assert jensen_shannon_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2))
    assert jensen_shannon_distance([5, 5], [1, 1]) == 0.0
    assert jensen_shannon_distance([5, 0], [0, 5]) == pytest.approx(1.0)


def test_l_infinity_distance_is_the_largest_frequency_change() -> None:
    assert l_infinity_distance({"a": 50, "b": 50}, {"a": 80, "b": 20}) == pytest.approx(0.3)
    assert l_infinity_distance({"a": 1}, {"b": 1}) == pytest.approx(1.0)


def test_anomalies_survive_a_strict_json_round_trip(
    clean_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, evaluation = clean_split
    broken = evaluation.copy()
    broken.loc[0, "clinic"] = "mars"
    found = check(train, broken)

    restored = Anomalies.from_dict(json.loads(json.dumps(found.to_dict(), allow_nan=False)))

    assert restored.to_dict() == found.to_dict()
    assert restored.anomalies[0].details == found.anomalies[0].details
