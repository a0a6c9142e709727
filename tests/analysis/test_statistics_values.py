"""compute_statistics: numbers checked against numpy/pandas computed independently."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from zenml_collab.core.analysis import (
    AnalysisError,
    Statistics,
    compute_statistics,
    infer_schema,
)
from zenml_collab.core.analysis.statistics import QUANTILES, TOP_K

NUMERIC = [
    "pregnancies",
    "glucose",
    "blood_pressure",
    "skin_thickness",
    "insulin",
    "bmi",
    "diabetes_pedigree",
    "age",
]


@pytest.fixture(scope="module")
def stats(clean_split: tuple[pd.DataFrame, pd.DataFrame]) -> Statistics:
    train, evaluation = clean_split
    return compute_statistics({"train": train, "eval": evaluation})


@pytest.mark.parametrize("split_index", [0, 1])
@pytest.mark.parametrize("feature", NUMERIC)
def test_numeric_summaries_match_numpy(
    stats: Statistics,
    clean_split: tuple[pd.DataFrame, pd.DataFrame],
    split_index: int,
    feature: str,
) -> None:
    values = clean_split[split_index][feature].to_numpy(dtype=float)
    got = stats[("train", "eval")[split_index]][feature]

    assert got.count == len(values) and got.missing == 0 and got.invalid == 0
    assert got.mean == pytest.approx(np.mean(values))
    assert got.std == pytest.approx(np.std(values, ddof=1))
    assert (got.min, got.max) == (values.min(), values.max())
    assert got.unique == len(set(values.tolist()))
    for q in QUANTILES:
        assert got.quantile(q) == pytest.approx(np.percentile(values, q * 100))


@pytest.mark.parametrize("feature", NUMERIC)
def test_histograms_share_edges_across_splits_and_count_every_value(
    stats: Statistics, clean_split: tuple[pd.DataFrame, pd.DataFrame], feature: str
) -> None:
    train_hist = stats["train"][feature].histogram
    eval_hist = stats["eval"][feature].histogram
    assert train_hist is not None and eval_hist is not None
    assert train_hist.edges == eval_hist.edges
    edges = np.asarray(train_hist.edges)
    both = pd.concat([s[feature] for s in clean_split])
    assert edges[0] <= both.min() and edges[-1] >= both.max()

    for frame, histogram in zip(clean_split, (train_hist, eval_hist), strict=True):
        # Independent count: pandas' binning, left-closed except the last bin.
        binned = pd.cut(frame[feature], bins=edges, right=False)
        expected = binned.value_counts(sort=False).to_numpy().copy()
        expected[-1] += int((frame[feature] == edges[-1]).sum())
        assert list(histogram.counts) == expected.tolist()
        assert sum(histogram.counts) == len(frame)


def test_integer_feature_with_few_values_gets_one_bin_per_value(
    stats: Statistics, clean_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    histogram = stats["train"]["has_diabetes"].histogram
    assert histogram is not None
    assert histogram.edges == (-0.5, 0.5, 1.5)
    counts = clean_split[0]["has_diabetes"].value_counts()
    assert histogram.counts == (counts[0], counts[1])


def test_categorical_top_values_match_value_counts(
    stats: Statistics, clean_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    for frame, split in zip(clean_split, ("train", "eval"), strict=True):
        got = stats[split]["clinic"]
        expected = frame["clinic"].value_counts()
        assert dict(got.top_values) == expected.to_dict()
        assert [c for _, c in got.top_values] == sorted(expected.to_list(), reverse=True)
        assert got.unique == frame["clinic"].nunique()
        assert got.mean is None and got.histogram is None


def test_top_values_are_capped() -> None:
    frame = pd.DataFrame({"id": [f"u{i}" for i in range(TOP_K + 30)]})
    got = compute_statistics({"train": frame})["train"]["id"]
    assert got.type == "string"
    assert len(got.top_values) == TOP_K and got.unique == TOP_K + 30


def test_schema_types_count_text_in_a_numeric_column_as_invalid(
    clean_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, evaluation = clean_split
    broken = evaluation.astype({"glucose": object})
    broken.loc[0, "glucose"] = "high"
    broken.loc[1, "glucose"] = None

    got = compute_statistics({"train": train, "eval": broken}, schema=infer_schema(train))["eval"][
        "glucose"
    ]

    assert (got.count, got.missing, got.invalid) == (len(broken) - 2, 1, 1)
    expected = pd.to_numeric(broken["glucose"], errors="coerce").dropna()
    assert got.mean == pytest.approx(expected.mean())


def test_statistics_survive_a_strict_json_round_trip(stats: Statistics) -> None:
    text = json.dumps(stats.to_dict(), allow_nan=False)
    assert Statistics.from_dict(json.loads(text)) == stats


def test_statistics_of_an_empty_column_are_json_safe() -> None:
    frame = pd.DataFrame({"x": pd.Series([np.nan, np.nan], dtype=float)})
    got = compute_statistics({"train": frame})
    assert got["train"]["x"].count == 0 and got["train"]["x"].missing == 2
    json.dumps(got.to_dict(), allow_nan=False)


def test_unknown_split_names_the_known_ones(stats: Statistics) -> None:
    with pytest.raises(AnalysisError) as info:
        stats["test"]
    assert "train" in (info.value.hint or "") and "eval" in (info.value.hint or "")
